"""A/B of each bf16 route of the search step, in one process: every route on, and each one off in turn.

    PYTHONPATH=$PWD python benchmarks/precision_ab.py              # NB201 and the DARTS space
    PYTHONPATH=$PWD python benchmarks/precision_ab.py --quick      # tiny shapes, a smoke run

A route is a place where the step does not compute in bfloat16 under CPU autocast, or does it
another way, because the bfloat16 (or strided) kernel measured slower (docs/precision.md):

- `depthwise_fp32`: a depthwise `Conv2d` computes in float32 (its `float32_under_cpu_autocast`);
- `dot_fp32`: the mixing weights' gradients `<grad, y>` (supernet.combination) cast 16-bit
  operands to float32 before `torch.dot`.

A route is kept only where this measures it faster (a 2-D average pooling in float32, 1.15-1.6x
faster alone, made the NB201 step 3-8% slower in two of three runs here: not kept).
Switching a route off here restores the behaviour before it (the trait returning False, the old
dot) for the steps of that variant only: each step sets the switches
before it runs, the variants taking turns (`interleaved`, benchmarks/step.py), one thread.
Results: benchmarks/results/precision_step_ab.json (seconds per DARTS step; ratio to the
all-routes bf16 step and to fp32).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from precision import step_of  # noqa: E402
from step import batches, interleaved  # noqa: E402

from ops import Conv2d  # noqa: E402
from search.spaces import darts_space, nb201_space  # noqa: E402
from search.strategies import get_strategy  # noqa: E402
from supernet import SupernetExecutor, Tensor, combination  # noqa: E402

ROUTES = ("depthwise_fp32", "dot_fp32")


def _dot_in_16_bits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The mixing-weight dot product before `dot_fp32`: torch.dot in the operands' own dtype."""
    dense = a.shape == b.shape and a.stride() == b.stride() and a.dtype == b.dtype
    for layout in (torch.contiguous_format, torch.channels_last):
        if dense and a.dim() == 4 and a.is_contiguous(memory_format=layout):
            flat = (
                (lambda t: t.view(-1))
                if layout == torch.contiguous_format
                else lambda t: t.permute(0, 2, 3, 1).reshape(-1)
            )
            return torch.dot(flat(a), flat(b))
    if dense and a.is_contiguous():
        return torch.dot(a.view(-1), b.view(-1))
    return (a * b).sum()


class Switches:
    """Turns routes off (and on again) by restoring what each replaced, process-wide."""

    def __init__(self) -> None:
        self.originals = {
            "depthwise_fp32": (Conv2d, "float32_under_cpu_autocast", Conv2d.float32_under_cpu_autocast),
            "dot_fp32": (combination, "_dot", combination._dot),
        }

        self.replacements = {
            "depthwise_fp32": lambda self, channels, groups=None: False,
            "dot_fp32": _dot_in_16_bits,
        }

    def set(self, off: frozenset[str]) -> None:
        for route, (owner, name, original) in self.originals.items():
            setattr(owner, name, self.replacements[route] if route in off else original)


def variants(space_fn: Callable[[], Any], shape: tuple, batch: int, switches: Switches) -> dict[str, Callable]:
    """The DARTS steps to compare: bf16 with all routes, with each off, with none; fp32."""
    train, val = batches(shape, batch)
    plan = {"bf16 all routes": ("bf16-mixed", frozenset())}
    plan.update({f"bf16 without {r}": ("bf16-mixed", frozenset({r})) for r in ROUTES})
    plan["bf16 no route"] = ("bf16-mixed", frozenset(ROUTES))
    plan["fp32"] = ("32", frozenset())
    steps = {}
    for name, (precision, off) in plan.items():
        torch.manual_seed(0)
        model = SupernetExecutor(space_fn(), mixture=get_strategy("darts").mixture(), seed=0)
        step = step_of(model, "darts", precision, False, train, val)

        def switched(step=step, off=off) -> None:
            switches.set(off)
            step()

        steps[name] = switched
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--spaces", default="nb201,darts")
    parser.add_argument("--load", default="", help="what else ran on the machine meanwhile (recorded in setup)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "precision_step_ab.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    size = 16 if args.quick else 32
    spaces = {
        "nb201": (
            lambda: nb201_space(
                Tensor("x", (1, 3, size, size), ("N", "C", "H", "W")),
                channels=4 if args.quick else 16,
                cells_per_stage=1 if args.quick else 5,
            ),
            8 if args.quick else 64,
            "nb201_space(channels=16, cells_per_stage=5), batch 64 of 3x32x32",
        ),
        "darts": (
            lambda: darts_space(
                Tensor("x", (1, 3, size, size), ("N", "C", "H", "W")),
                channels=4 if args.quick else 8,
                layers=3 if args.quick else 5,
            ),
            4 if args.quick else 32,
            "darts_space(channels=8, layers=5), batch 32 of 3x32x32",
        ),
    }
    setup = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "quick": args.quick,
        "step": "DARTS architecture step (val batch) + weight step (train batch), search.BilevelOptimizer",
        "load": args.load,
    }
    print("setup:", json.dumps(setup, indent=1), flush=True)
    switches = Switches()
    results: dict[str, Any] = {"setup": setup}
    try:
        for key in args.spaces.split(","):
            space_fn, batch, described = spaces[key]
            seconds = interleaved(variants(space_fn, (3, size, size), batch, switches), args.repeats)
            base, fp32 = seconds["bf16 all routes"], seconds["fp32"]
            results[key] = {
                "space": described if not args.quick else "quick",
                "seconds": seconds,
                "vs_all_routes": {k: round(v / base, 3) for k, v in seconds.items()},
                "fp32_over": {k: round(fp32 / v, 3) for k, v in seconds.items()},
            }
            print(key, json.dumps(results[key], indent=1), flush=True)
    finally:
        switches.set(frozenset())
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
