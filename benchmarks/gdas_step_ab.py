"""GDAS's step with and without the relative architecture gradient (issue 21), side by side in one process.

    python benchmarks/gdas_step_ab.py [--repeats 15] [--quick]

One GDAS step (architecture step on a validation batch + weight step on a training batch through
`search.BilevelOptimizer`, as in benchmarks/step.py) on NB201 (C=16, N=5, batch 64, 3x32x32) and the
DARTS space (C=8, 5 layers, batch 32): `GDAS()` (`compared=2`) and `GDAS(compared=None)` (the sampled
option and one other, or every option, get their own output's gradient in architecture steps, the
unsampled ones run in the backward pass only) against `GDAS(relative_gradient=False)` (only the
sampled option's gate: GDAS before issue 21), taking turns (`step.interleaved`), one thread; peak memory of each. Results: benchmarks/results/gdas_step_ab.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step import batches, interleaved, measure_peak, supernet  # noqa: E402

from search import BilevelConfig, BilevelOptimizer  # noqa: E402
from search.spaces import darts_space, nb201_space  # noqa: E402
from search.strategies import GDAS  # noqa: E402
from supernet import Tensor  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "gdas_step_ab.json"
BEFORE = "sampled only (before)"
VARIANTS = {
    "pairs compared (GDAS(), compared=2)": GDAS(),
    "every option compared (compared=None)": GDAS(compared=None),
    BEFORE: GDAS(relative_gradient=False),
}


def gdas_step(space, strategy: GDAS, train: tuple, val: tuple, seed: int = 0):
    """A closure running one step of `strategy` on a fresh supernet of `space()`."""
    torch.manual_seed(seed)
    model = supernet(space(), strategy.mixture())
    bilevel = BilevelOptimizer(model, F.cross_entropy, BilevelConfig(), total_epochs=1)

    def step():
        strategy.architecture_step(bilevel, train, val)
        bilevel.weight_step(*train)

    return step


def main() -> None:
    """Measure both GDAS steps on both spaces; print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    size, nb_c, nb_n, nb_b, d_c, d_l, d_b = (8, 4, 1, 4, 4, 3, 4) if args.quick else (32, 16, 5, 64, 8, 5, 32)
    spaces = {
        "nb201": (
            lambda: nb201_space(
                Tensor("x", (1, 3, size, size), ("N", "C", "H", "W")), channels=nb_c, cells_per_stage=nb_n
            ),
            nb_b,
        ),
        "darts": (
            lambda: darts_space(Tensor("x", (1, 3, size, size), ("N", "C", "H", "W")), channels=d_c, layers=d_l),
            d_b,
        ),
    }
    setup = {
        "step": "GDAS architecture step (val batch) + weight step (train batch) through search.BilevelOptimizer",
        "nb201": f"nb201_space(channels={nb_c}, cells_per_stage={nb_n}), batch {nb_b} of 3x{size}x{size}",
        "darts": f"darts_space(channels={d_c}, layers={d_l}), batch {d_b} of 3x{size}x{size}",
        "repeats": args.repeats,
        "threads": 1,
        "torch": torch.__version__,
        "machine": platform.platform(),
    }
    print("setup:", json.dumps(setup))
    rows = {}
    for name, (space, batch) in spaces.items():
        train, val = batches((3, size, size), batch)
        steps = {label: gdas_step(space, strategy, train, val) for label, strategy in VARIANTS.items()}
        seconds = interleaved(steps, args.repeats)
        peak = {label: round(measure_peak(step), 1) for label, step in steps.items()}
        ratios = {label: round(seconds[label] / seconds[BEFORE], 3) for label in steps}
        rows[name] = {"seconds": seconds, "peak_mb": peak, "time_over_before": ratios}
        print(f"{name}: {seconds} peak MB {peak} -> time / before {ratios}", flush=True)
    args.out.write_text(json.dumps({"setup": setup, "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
