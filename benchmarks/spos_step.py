"""Single-path training steps (SPOS, FairNAS) against GDAS's, side by side in one process.

    python benchmarks/spos_step.py            # NB201 2-D and 1-D workloads (a few minutes, 1 thread)
    python benchmarks/spos_step.py --quick    # tiny shapes, a smoke run

Per workload, SPOS and GDAS run the same paths (step i: the path SPOS draws after
`torch.manual_seed(i)`, GDAS's logits peaked on it), a new one each step:
- `spos`: one SPOS weight step (one sampled path, forward + backward + SGD);
- `gdas_weight`: one GDAS weight step (one sampled path: the like-for-like comparison);
- `gdas_search`: one GDAS search step (architecture step + weight step: what a GDAS search pays
  per step, and SPOS does not);
- `fairnas`: one FairNAS step (the batch through one path per option, gradients summed, one update).
Times are medians over `--repeats` steps taken in turns, so that the shared machine's load weighs
on all alike. Memory is the peak of the tensors a step allocates and holds at once
(`step.PeakMemory`), the mean over the first `--memory-steps` paths.
Results: benchmarks/results/spos_step.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step import PeakMemory, batches  # noqa: E402

from search import BilevelConfig, BilevelOptimizer  # noqa: E402
from search.spaces import nb201_1d_space, nb201_space  # noqa: E402
from search.strategies import get_strategy  # noqa: E402
from supernet import SupernetExecutor, Tensor  # noqa: E402


class Step:
    """One step of strategy `name` on its own supernet: the weight step, after an architecture step if `search`."""

    def __init__(self, space_fn: Callable[[], Any], name: str, train: tuple, val: tuple, search: bool) -> None:
        self.strategy = get_strategy(name)
        self.model = SupernetExecutor(space_fn(), mixture=self.strategy.mixture(), seed=0)
        self.strategy.on_epoch_start(0, 1, self.model)
        self.bilevel = BilevelOptimizer(self.model, F.cross_entropy, BilevelConfig(), total_epochs=1)
        self.train, self.val, self.search = train, val, search

    def on_path(self, path: dict[str, int], seed: int) -> None:
        """Draw `path` in the next step: GDAS's logits peaked on it, SPOS's generator reseeded to draw it."""
        if self.strategy.name == "gdas":
            self.model.set_alphas(
                {sid: [30.0 if j == path[sid] else 0.0 for j in range(len(a))] for sid, a in self.model.alphas.items()}
            )
        torch.manual_seed(seed)

    def __call__(self) -> None:
        if self.search:
            self.strategy.architecture_step(self.bilevel, self.train, self.val)
        self.strategy.weight_step(self.bilevel, self.train)


def spos_path(model: SupernetExecutor, seed: int) -> dict[str, int]:
    """The path SPOS's mixture draws after `torch.manual_seed(seed)` (one draw per logit vector, in order)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return {sid: int(torch.randint(len(alpha), ())) for sid, alpha in model.alphas.items()}


def workload(
    name: str, space_fn: Callable[[], Any], shape: tuple, batch: int, repeats: int, memory_steps: int
) -> dict[str, Any]:
    """SPOS and GDAS on the same paths (seeds 0, 1, ...), FairNAS on its own schedule; times in turns."""
    train, val = batches(shape, batch)
    steps = {
        "spos": Step(space_fn, "spos", train, val, search=False),
        "gdas_weight": Step(space_fn, "gdas", train, val, search=False),
        "gdas_search": Step(space_fn, "gdas", train, val, search=True),
        "fairnas": Step(space_fn, "fairnas", train, val, search=False),
    }
    paths = [spos_path(steps["spos"].model, seed) for seed in range(max(repeats, memory_steps) + 1)]
    for step in steps.values():  # warm-up
        step.on_path(paths[-1], len(paths) - 1)
        step()
    times: dict[str, list[float]] = {key: [] for key in steps}
    for seed in range(repeats):
        for key, step in steps.items():
            step.on_path(paths[seed], seed)
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    seconds = {key: round(statistics.median(t), 4) for key, t in times.items()}
    peaks = {}
    for key, step in steps.items():
        measured = []
        for seed in range(memory_steps):
            step.on_path(paths[seed], seed)
            with PeakMemory() as tracker:
                step()
            measured.append(tracker.peak)
        peaks[key] = round(statistics.mean(measured) / 2**20, 2)
    ratio = lambda a, b: {"time": round(seconds[a] / seconds[b], 3), "memory": round(peaks[a] / peaks[b], 3)}  # noqa: E731
    out = {
        "seconds": seconds,
        "peak_mb": peaks,
        "spos_over_gdas_weight": ratio("spos", "gdas_weight"),
        "spos_over_gdas_search": ratio("spos", "gdas_search"),
        "fairnas_over_spos": ratio("fairnas", "spos"),
    }
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
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "repeats": args.repeats,
        "memory_steps": args.memory_steps,
        "quick": args.quick,
        "nb201": f"nb201_space(channels={nb['channels']}, cells_per_stage={nb['cells']}), batch {nb['batch']} of 3x{nb['size']}x{nb['size']}",
        "nb201_1d": f"nb201_1d_space(channels={one_d['channels']}), batch {one_d['batch']} of 1x40 (MNIST-1D shapes)",
        "paths": "SPOS and GDAS on the same paths: step i after torch.manual_seed(i) for SPOS, GDAS's logits peaked (30) on the path SPOS draws",
    }
    print("setup:", json.dumps(setup, indent=1), flush=True)
    results: dict[str, Any] = {"setup": setup}
    results["nb201"] = workload(
        "nb201",
        lambda: nb201_space(
            Tensor("x", (1, 3, nb["size"], nb["size"]), ("N", "C", "H", "W")),
            channels=nb["channels"],
            cells_per_stage=nb["cells"],
        ),
        (3, nb["size"], nb["size"]),
        nb["batch"],
        args.repeats,
        args.memory_steps,
    )
    results["nb201_1d"] = workload(
        "nb201_1d",
        lambda: nb201_1d_space(channels=one_d["channels"]),
        (1, 40),
        one_d["batch"],
        args.repeats,
        args.memory_steps,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not args.quick:
        args.out.write_text(json.dumps(results, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
