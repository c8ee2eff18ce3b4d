"""The engine before and after a change, side by side in one process: the step benchmark's headline rows.

    python benchmarks/engine_ab.py --old-ref 4bfc1c3     # NB201 and DARTS at the step benchmark's sizes
    python benchmarks/engine_ab.py --quick               # tiny shapes, a smoke run

The old engine's own files (plan, fusion, combination, supernet_executor at `--old-ref`) are loaded
as a package `supernet_before` whose other imports resolve to today's `supernet` (graph, ops and
mixtures are shared), so both engines run the very same graph and weights. Per space, the DARTS
step of `benchmarks/step.py` (architecture step + weight step through `BilevelOptimizer`) is timed
for plain PyTorch, the old engine, the new engine, the new engine without the guard against the
oneDNN strided-1x1 fault (`Conv2d.accepts_channels_last`; safe on AVX-512, see
docs/channels_last_conv_bug.md) and the reference plan, taking turns (`interleaved`), one thread,
plus the peak memory of each. Results: benchmarks/results/engine_ab.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import platform
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Iterator

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from step import (
    PlainDartsNetwork,
    PlainNB201Supernet,
    batches,
    interleaved,
    load_supernet_state,
    measure_peak,
    plain_step,
    search_step,
)  # noqa: E402

import ops  # noqa: E402
from search.spaces import darts_space, nb201_space  # noqa: E402
from search.strategies import get_strategy  # noqa: E402
from supernet import SupernetExecutor, Tensor  # noqa: E402

ENGINE_FILES = ("combination", "fusion", "plan", "supernet_executor")


def load_old_engine(ref: str, directory: Path) -> Any:
    """`SupernetExecutor` of the engine at git `ref`, its own files in `supernet_before`."""
    package = directory / "supernet_before"
    package.mkdir()
    for name in ENGINE_FILES:
        source = subprocess.run(
            ["git", "show", f"{ref}:supernet/{name}.py"], cwd=HERE.parent, check=True, capture_output=True, text=True
        ).stdout
        for other in ("choice", "executor", "expression", "mixture", "node", "parameters", "value_choice"):
            source = source.replace(f"from .{other} import", f"from supernet.{other} import")
        (package / f"{name}.py").write_text(source)
    module = types.ModuleType("supernet_before")
    module.__path__ = [str(package)]
    sys.modules["supernet_before"] = module
    spec = importlib.util.spec_from_file_location("supernet_before.supernet_executor", package / "supernet_executor.py")
    executor = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = executor
    spec.loader.exec_module(executor)
    return executor.SupernetExecutor


@contextlib.contextmanager
def unguarded() -> Iterator[None]:
    """Strided 1x1 convolutions run channels-last too (the guard off)."""
    original = ops.Conv2d.accepts_channels_last
    ops.Conv2d.accepts_channels_last = lambda self: True
    try:
        yield
    finally:
        ops.Conv2d.accepts_channels_last = original


def guard_off(step: Any) -> Any:
    def run() -> Any:
        with unguarded():
            return step()

    return run


def row(
    name: str, space: Any, plain: torch.nn.Module, shape: tuple, batch: int, old_executor: Any, repeats: int
) -> dict:
    train, val = batches(shape, batch)
    darts = get_strategy("darts")
    models = {
        "old": old_executor(space, mixture=darts.mixture(), seed=0),
        "new": SupernetExecutor(space, mixture=darts.mixture(), seed=0),
        "new_reference_plan": SupernetExecutor(space, mixture=darts.mixture(), seed=0, optimize=False),
    }
    with unguarded():
        models["new_without_guard"] = SupernetExecutor(space, mixture=darts.mixture(), seed=0)
    steps = {"plain": plain_step(plain, train, val)}
    steps.update({key: search_step(model, "darts", train, val) for key, model in models.items()})
    steps["new_without_guard"] = guard_off(steps["new_without_guard"])
    seconds = interleaved(steps, repeats)
    out: dict[str, Any] = {
        "input": [batch, *shape],
        "seconds": seconds,
        "peak_mb": {key: measure_peak(step) for key, step in steps.items()},
    }
    plain_s, plain_mb = seconds["plain"], out["peak_mb"]["plain"]
    out["ratios"] = {
        "plain_over_old_time": round(plain_s / seconds["old"], 3),
        "plain_over_new_time": round(plain_s / seconds["new"], 3),
        "old_over_plain_memory": round(out["peak_mb"]["old"] / plain_mb, 3),
        "new_over_plain_memory": round(out["peak_mb"]["new"] / plain_mb, 3),
        "new_over_old_time": round(seconds["new"] / seconds["old"], 3),
        "guard_cost_time": round(seconds["new"] / seconds["new_without_guard"], 3),
        "reference_plan_over_plain_time": round(seconds["new_reference_plan"] / plain_s, 3),
    }
    print(f"[{name}] {json.dumps(out)}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-ref", default="main")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spaces", default="nb201,darts")
    parser.add_argument("--out", default=str(HERE / "results" / "engine_ab.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    nb = dict(channels=4, cells=1, batch=8, size=16) if args.quick else dict(channels=16, cells=5, batch=64, size=32)
    da = dict(channels=4, layers=3, batch=4, size=16) if args.quick else dict(channels=8, layers=5, batch=32, size=32)
    with tempfile.TemporaryDirectory() as directory:
        old_executor = load_old_engine(args.old_ref, Path(directory))
        results: dict[str, Any] = {
            "setup": {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "threads": torch.get_num_threads(),
                "machine": platform.machine(),
                "old_ref": args.old_ref,
                "repeats": args.repeats,
                "quick": args.quick,
                "nb201": nb,
                "darts": da,
                "step": "DARTS: architecture step + weight step through search.BilevelOptimizer",
            }
        }
        print("setup:", json.dumps(results["setup"]), flush=True)
        image = lambda size: Tensor("x", (1, 3, size, size), ("N", "C", "H", "W"))  # noqa: E731
        if "nb201" in args.spaces:
            space = nb201_space(image(nb["size"]), channels=nb["channels"], cells_per_stage=nb["cells"])
            plain = PlainNB201Supernet(nb["channels"], nb["cells"])
            load_supernet_state(plain, SupernetExecutor(space, seed=0, optimize=False).state_dict(), nb["cells"])
            results["nb201"] = row(
                "nb201", space, plain, (3, nb["size"], nb["size"]), nb["batch"], old_executor, args.repeats
            )
        if "darts" in args.spaces:
            space = darts_space(image(da["size"]), channels=da["channels"], layers=da["layers"])
            plain = PlainDartsNetwork(da["channels"], 10, da["layers"])
            results["darts"] = row(
                "darts", space, plain, (3, da["size"], da["size"]), da["batch"], old_executor, args.repeats
            )
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
