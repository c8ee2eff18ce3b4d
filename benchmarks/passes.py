"""What each rewrite pass buys: the DARTS step with every pass on, and with each pass off alone.

    python benchmarks/passes.py              # NB201, C=8, 2 cells per stage, batch 32 of 3x32x32
    python benchmarks/passes.py --quick

One thread; the variants take turns (`interleaved`, median of `--repeats`), peak memory per variant
(`PeakMemory`). GDAS runs too (the one-path passes: detaching, deferral and recompute act on
sampled gates). Results: benchmarks/results/passes.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from step import batches, interleaved, measure_peak, search_step  # noqa: E402

from search.spaces import nb201_space  # noqa: E402
from search.strategies import get_strategy  # noqa: E402
from supernet import SupernetExecutor, Tensor  # noqa: E402
from supernet.plan_options import PlanOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "passes.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    channels, cells, batch, size = (4, 1, 8, 16) if args.quick else (8, 2, 32, 32)
    space = nb201_space(Tensor("x", (1, 3, size, size), ("N", "C", "H", "W")), channels=channels, cells_per_stage=cells)
    train, val = batches((3, size, size), batch)
    variants = {
        "all passes": PlanOptions(),
        **{f"without {n}": PlanOptions().without(n) for n in PlanOptions.passes()},
        "reference (none)": PlanOptions.none(),
    }
    results = {
        "setup": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": 1,
            "repeats": args.repeats,
            "space": f"nb201_space(channels={channels}, cells_per_stage={cells}), batch {batch} of 3x{size}x{size}",
        }
    }
    for strategy in ("darts", "gdas"):
        steps = {
            name: search_step(
                SupernetExecutor(space, mixture=get_strategy(strategy).mixture(), seed=0, optimize=v),
                strategy,
                train,
                val,
            )
            for name, v in variants.items()
        }
        seconds = interleaved(steps, args.repeats)
        peaks = {name: measure_peak(step) for name, step in steps.items()}
        base_s, base_mb = seconds["all passes"], peaks["all passes"]
        results[strategy] = {
            name: {
                "seconds": seconds[name],
                "peak_mb": peaks[name],
                "time_over_all": round(seconds[name] / base_s, 3),
                "memory_over_all": round(peaks[name] / base_mb, 3),
            }
            for name in variants
        }
        for name, r in results[strategy].items():
            print(f"[{strategy}] {name:<32} {r}", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
