"""Single-path training steps (SPOS, FairNAS) against GDAS's, side by side in one process.

    python benchmarks/spos_step.py            # NB201 2-D and 1-D workloads (a few minutes, 1 thread)
    python benchmarks/spos_step.py --quick    # tiny shapes, a smoke run

Per workload, with logits at zero (so that GDAS's Gumbel argmax, like SPOS, draws uniform paths):
- `spos`: one SPOS weight step (one sampled path, forward + backward + SGD);
- `gdas_weight`: one GDAS weight step (one sampled path: the like-for-like comparison);
- `gdas_search`: one GDAS search step (architecture step + weight step: what a GDAS search pays
  per step, and SPOS does not);
- `fairnas`: one FairNAS step (the batch through one path per option, gradients summed, one update).
Times are medians over `--repeats` steps taken in turns (`step.interleaved`), so that the shared
machine's load weighs on all alike; each step draws a new path. Memory is the peak of the tensors
a step allocates and holds at once (`step.PeakMemory`), the mean over `--memory-steps` steps.
Results: benchmarks/results/spos_step.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step import batches, interleaved, peak_bytes  # noqa: E402

from search import BilevelConfig, BilevelOptimizer  # noqa: E402
from search.spaces import nb201_1d_space, nb201_space  # noqa: E402
from search.strategies import get_strategy  # noqa: E402
from supernet import SupernetExecutor, Tensor  # noqa: E402


def strategy_step(space_fn: Callable[[], Any], name: str, train: tuple, val: tuple, search: bool) -> Callable[[], Any]:
    """One step of strategy `name` on its own supernet: the weight step, after an architecture step if `search`."""
    strategy = get_strategy(name)
    model = SupernetExecutor(space_fn(), mixture=strategy.mixture(), seed=0)
    strategy.on_epoch_start(0, 1, model)
    bilevel = BilevelOptimizer(model, F.cross_entropy, BilevelConfig(), total_epochs=1)

    def step() -> None:
        if search:
            strategy.architecture_step(bilevel, train, val)
        strategy.weight_step(bilevel, train)

    return step


def mean_peak_mb(step: Callable[[], Any], steps: int) -> float:
    return round(statistics.mean(peak_bytes(step) for _ in range(steps)) / 2**20, 2)


def workload(name: str, space_fn: Callable[[], Any], shape: tuple, batch: int, repeats: int, memory_steps: int) -> dict[str, Any]:
    train, val = batches(shape, batch)
    torch.manual_seed(0)
    steps = {
        "spos": strategy_step(space_fn, "spos", train, val, search=False),
        "gdas_weight": strategy_step(space_fn, "gdas", train, val, search=False),
        "gdas_search": strategy_step(space_fn, "gdas", train, val, search=True),
        "fairnas": strategy_step(space_fn, "fairnas", train, val, search=False),
    }
    seconds = interleaved(steps, repeats)
    peaks = {key: mean_peak_mb(step, memory_steps) for key, step in steps.items()}
    out = {"seconds": seconds, "peak_mb": peaks,
           "spos_over_gdas_weight": {"time": round(seconds["spos"] / seconds["gdas_weight"], 3),
                                     "memory": round(peaks["spos"] / peaks["gdas_weight"], 3)},
           "spos_over_gdas_search": {"time": round(seconds["spos"] / seconds["gdas_search"], 3),
                                     "memory": round(peaks["spos"] / peaks["gdas_search"], 3)},
           "fairnas_over_spos": {"time": round(seconds["fairnas"] / seconds["spos"], 3),
                                 "memory": round(peaks["fairnas"] / peaks["spos"], 3)}}
    print(name, json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--memory-steps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "spos_step.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    nb = dict(channels=4, cells=1, batch=8, size=16) if args.quick else dict(channels=16, cells=2, batch=32, size=32)
    one_d = dict(channels=4, batch=16) if args.quick else dict(channels=16, batch=64)
    setup = {
        "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "machine": platform.machine(), "repeats": args.repeats, "memory_steps": args.memory_steps, "quick": args.quick,
        "nb201": f"nb201_space(channels={nb['channels']}, cells_per_stage={nb['cells']}), batch {nb['batch']} of 3x{nb['size']}x{nb['size']}",
        "nb201_1d": f"nb201_1d_space(channels={one_d['channels']}), batch {one_d['batch']} of 1x40 (MNIST-1D shapes)",
        "paths": "logits at zero: SPOS and GDAS both draw uniform paths, a new one each step",
    }
    print("setup:", json.dumps(setup, indent=1), flush=True)
    results: dict[str, Any] = {"setup": setup}
    results["nb201"] = workload(
        "nb201", lambda: nb201_space(Tensor("x", (1, 3, nb["size"], nb["size"]), ("N", "C", "H", "W")), channels=nb["channels"],
                                     cells_per_stage=nb["cells"]),
        (3, nb["size"], nb["size"]), nb["batch"], args.repeats, args.memory_steps)
    results["nb201_1d"] = workload("nb201_1d", lambda: nb201_1d_space(channels=one_d["channels"]), (1, 40), one_d["batch"],
                                   args.repeats, args.memory_steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.quick:
        args.out.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
