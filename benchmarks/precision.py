"""Precision and compile benchmark: search steps in fp32 / bf16-mixed, eager / compiled, side by side.

    python benchmarks/precision.py            # the issue's workloads (about 10 minutes on 1 thread)
    python benchmarks/precision.py --quick    # tiny shapes, a smoke run

One step = an architecture step on a validation batch + a weight step on a training batch through
`search.BilevelOptimizer`, with its `precision` (search.precision) and, compiled, its `forward` the
supernet through `torch.compile` (search.compiled_step). Our supernet runs DARTS, GDAS and
Proxyless steps; the hand-written plain-PyTorch supernets (benchmarks/plain_nb201.py,
plain_darts.py) run the DARTS step through the same optimizer code, in the same modes. Times are
medians over `--repeats` steps after a warm-up step, all steps of a table taking turns
(`interleaved`, from benchmarks/step.py), one process, one thread. Peak memory (`PeakMemory` of
benchmarks/step.py: the tensors one step allocates and holds at once) is measured for the eager
DARTS steps only (a dispatch mode does not see inside inductor's kernels; the others to save time). GDAS and Proxyless are not compiled:
`compile=True` refuses strategies that sample a path per step (search.compiled_step). Compiling
the 15-cell NB201 network and the DARTS network takes minutes per graph on this CPU, so the
compiled table runs `--compile-cells` cells per stage (default 1), `--compile-channels` and
`--compile-batch`, with its own eager rows; `--compile-only` runs it alone (the small
configuration that compiles in minutes here: `--compile-only --compile-channels 8 --compile-batch 32
--out benchmarks/results/precision_step_compiled.json`). Its `compile_seconds` are the first
compiled step's time less the median step. `--load` records what else ran on the machine.
Results: benchmarks/results/precision_step.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_darts import PlainDartsNetwork  # noqa: E402
from plain_nb201 import PlainNB201Supernet  # noqa: E402
from step import batches, interleaved, peak_bytes  # noqa: E402

from search import BilevelConfig, BilevelOptimizer  # noqa: E402
from search.compiled_step import compile_supernet  # noqa: E402
from search.precision import MixedPrecision  # noqa: E402
from search.spaces import darts_space, nb201_space  # noqa: E402
from search.strategies import get_strategy  # noqa: E402
from supernet import SupernetExecutor, Tensor  # noqa: E402

MODES = {"fp32 eager": ("32", False), "bf16 eager": ("bf16-mixed", False)}
COMPILED = {"fp32 compiled": ("32", True), "bf16 compiled": ("bf16-mixed", True)}


def step_of(model: nn.Module, strategy_name: str, precision: str, compiled: bool, train, val) -> Callable[[], Any]:
    """One search step of `model` (ours or a plain supernet) in the given mode."""
    strategy = get_strategy(strategy_name)
    forward = torch.compile(model) if compiled and not isinstance(model, SupernetExecutor) else None
    if compiled and isinstance(model, SupernetExecutor):
        forward = compile_supernet(model)
    bilevel = BilevelOptimizer(
        model, F.cross_entropy, BilevelConfig(), total_epochs=1, precision=MixedPrecision(precision), forward=forward
    )

    def step():
        strategy.architecture_step(bilevel, train, val)
        bilevel.weight_step(*train)

    return step


def table(
    space_fn: Callable[[], Any],
    plain_fn: Callable[[], nn.Module],
    shape: tuple,
    batch: int,
    strategies: list[str],
    modes: dict[str, tuple[str, bool]],
    repeats: int,
    memory: bool,
    plain: bool = True,
) -> dict[str, Any]:
    """Seconds (and peak MB, eager) of each (model, strategy, mode), interleaved; the ratios to our fp32 eager step."""
    train, val = batches(shape, batch)
    steps: dict[str, Callable[[], Any]] = {}
    compile_seconds: dict[str, float] = {}
    for mode, (precision, compiled) in modes.items():
        for strategy in strategies:
            torch.manual_seed(0)
            model = SupernetExecutor(space_fn(), mixture=get_strategy(strategy).mixture(), seed=0)
            steps[f"ours {strategy} {mode}"] = step_of(model, strategy, precision, compiled, train, val)
        if plain:
            torch.manual_seed(0)
            steps[f"plain darts {mode}"] = step_of(plain_fn(), "darts", precision, compiled, train, val)
    for name, step in steps.items():  # first calls (compilation) outside the timing
        start = time.perf_counter()
        step()
        compile_seconds[name] = round(time.perf_counter() - start, 1)
        print(f"  first step {name}: {compile_seconds[name]} s", flush=True)
    seconds = interleaved(steps, repeats)
    out: dict[str, Any] = {"seconds": seconds, "first_step_seconds": compile_seconds}
    if any("compiled" in name for name in steps):
        out["compile_seconds"] = {
            name: round(compile_seconds[name] - seconds[name], 1) for name in steps if "compiled" in name
        }
    if memory:
        out["peak_mb"] = {
            name: round(peak_bytes(step) / 2**20, 1)
            for name, step in steps.items()
            if "compiled" not in name and " darts " in name  # the DARTS steps: the memory target's
        }
    base_mode = next(iter(modes))
    out["speedup_vs_our_fp32"] = {}
    for strategy in [*strategies, *(["plain darts"] if plain else [])]:
        prefix = strategy if strategy == "plain darts" else f"ours {strategy}"
        base = seconds[f"{prefix} {base_mode}"]
        out["speedup_vs_our_fp32"][prefix] = {
            mode: round(base / seconds[f"{prefix} {mode}"], 2) for mode in modes if f"{prefix} {mode}" in seconds
        }
    print(json.dumps({k: v for k, v in out.items() if k != "first_step_seconds"}, indent=1), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compile-cells", type=int, default=1, help="NB201 cells per stage of the compiled table")
    parser.add_argument("--compile-channels", type=int, default=16, help="NB201 channels of the compiled table")
    parser.add_argument("--compile-batch", type=int, default=64, help="batch of the compiled table")
    parser.add_argument("--compile-plain", action="store_true", help="the plain supernet in the compiled table too")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--compile-only", action="store_true", help="the compiled table alone (no eager tables)")
    parser.add_argument("--load", default="", help="what else ran on the machine meanwhile (recorded in setup)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "precision_step.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.quick:
        nb = dict(channels=4, cells=1, batch=8, size=16)
        da = dict(channels=4, layers=3, batch=4, size=16)
    else:
        nb = dict(channels=16, cells=5, batch=64, size=32)
        da = dict(channels=8, layers=5, batch=32, size=32)
    strategies = ["darts", "gdas", "proxyless"]
    setup = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "cpu_bf16": torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported(),
        "repeats": args.repeats,
        "quick": args.quick,
        "nb201": f"nb201_space(channels={nb['channels']}, cells_per_stage={nb['cells']}), batch {nb['batch']} "
        f"of 3x{nb['size']}x{nb['size']}",
        "darts": f"darts_space(channels={da['channels']}, layers={da['layers']}), batch {da['batch']} "
        f"of 3x{da['size']}x{da['size']}",
        "compiled": f"nb201_space(channels={args.compile_channels}, cells_per_stage={args.compile_cells}), batch "
        f"{args.compile_batch} of 3x{nb['size']}x{nb['size']}; DARTS step only (sampling strategies are refused "
        "by compile=True); compile_seconds: first compiled step minus the median step (both graphs traced, "
        "inductor's C++ built)",
        "load": args.load,
        "step": "architecture step (val batch) + weight step (train batch) through search.BilevelOptimizer",
        "memory": "peak MB of the tensors one eager DARTS step allocates, alive together (step.py PeakMemory)",
    }
    print("setup:", json.dumps(setup, indent=1), flush=True)

    def nb201_fn(cells: int, channels: int = nb["channels"]) -> Callable[[], Any]:
        return lambda: nb201_space(
            Tensor("x", (1, 3, nb["size"], nb["size"]), ("N", "C", "H", "W")),
            channels=channels,
            cells_per_stage=cells,
        )

    def darts_fn():
        return darts_space(
            Tensor("x", (1, 3, da["size"], da["size"]), ("N", "C", "H", "W")),
            channels=da["channels"],
            layers=da["layers"],
        )

    image = (3, nb["size"], nb["size"])
    results: dict[str, Any] = {"setup": setup}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every table: a long compile that is stopped keeps the tables before it
        out.write_text(json.dumps(results, indent=1))

    tables = [] if args.compile_only else ["nb201", "darts"]
    if "nb201" in tables:
        print("[nb201 eager]", flush=True)
        results["nb201"] = table(
            nb201_fn(nb["cells"]),
            lambda: PlainNB201Supernet(nb["channels"], nb["cells"]),
            image,
            nb["batch"],
            strategies,
            MODES,
            args.repeats,
            memory=True,
        )
        save()
    if "darts" in tables:
        print("[darts eager]", flush=True)
        results["darts"] = table(
            darts_fn,
            lambda: PlainDartsNetwork(da["channels"], 10, da["layers"]),
            (3, da["size"], da["size"]),
            da["batch"],
            strategies,
            MODES,
            args.repeats,
            memory=True,
        )
        save()
    if not args.no_compile:
        print("[nb201 compiled]", flush=True)
        results["nb201_compiled"] = table(
            nb201_fn(args.compile_cells, args.compile_channels),
            lambda: PlainNB201Supernet(args.compile_channels, args.compile_cells),
            image,
            args.compile_batch,
            ["darts"],
            {**MODES, **COMPILED},
            args.repeats,
            memory=False,
            plain=args.compile_plain,
        )
    save()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
