"""Supernet step benchmark: our executor against hand-written plain-PyTorch supernets, side by side.

    python benchmarks/step.py            # the issue's workloads (several minutes on 1 thread)
    python benchmarks/step.py --quick    # tiny shapes, a smoke run

One "DARTS step" = an architecture step on a validation batch + a weight step on a training batch,
both through `search.BilevelOptimizer` (the plain supernets run through the same optimizer code).
Times are medians over `--repeats` steps after one warm-up step, in one process, one thread; the
steps a ratio compares take turns (`interleaved`), so that the machine's load weighs on both alike.
Memory is the peak of the tensors one step allocates and holds at once (`PeakMemory`, sampled
after every aten op of the forward, backward and optimizer passes; weights and optimizer state that
exist before the step are not counted, their gradients are). A "fixed architecture" step is the same
two passes (training on both batches) through one architecture alone: hand-written plain PyTorch
(NCHW and channels-last) and our BasicExecutor and SupernetExecutor on the discretized space; the
one-path strategies (GDAS, proxyless, logits peaked on that architecture) are compared with the best
of them, per metric. Results: benchmarks/results/step.json.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_darts import PlainDartsFixedNetwork, PlainDartsNetwork, darts_genotype  # noqa: E402
from plain_nb201 import PlainNB201Network, PlainNB201Supernet, load_supernet_state, nb201_genotype  # noqa: E402

from ops import conv2d  # noqa: E402
from search import BilevelConfig, BilevelOptimizer  # noqa: E402
from search.spaces import darts_space, nb201_space  # noqa: E402
from search.strategies import STRATEGIES, get_strategy  # noqa: E402
from supernet import BasicExecutor, ChoiceOp, SupernetExecutor, Tensor, discretize, search_space  # noqa: E402

HAS_OPTIMIZE_FLAG = "optimize" in inspect.signature(SupernetExecutor).parameters


def supernet(space, mixture=None, optimize: bool = True) -> SupernetExecutor:
    kwargs = {"optimize": optimize} if HAS_OPTIMIZE_FLAG else {}
    return SupernetExecutor(space, mixture=mixture, seed=0, **kwargs)


def batches(shape: tuple, batch: int, classes: int = 10) -> tuple[tuple, tuple]:
    g = torch.Generator().manual_seed(0)
    make = lambda: (torch.randn(batch, *shape, generator=g), torch.randint(0, classes, (batch,), generator=g))  # noqa: E731
    return make(), make()


class PeakMemory(TorchDispatchMode):
    """Peak bytes of the tensor storages allocated inside the context and alive together, sampled
    after every aten op (forward, backward and optimizer). Storages that existed before (weights,
    optimizer state) count only if an op allocates them anew; views and in-place results, which
    share an input's storage, never count. Temporaries an op frees before it returns are not seen."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {
            t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)
        }
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor) or t.device.type != "cpu":
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in inputs or not storage.nbytes():
                continue
            known = self.live.get(key)
            if known is not None and not known[0].expired():
                continue
            if known is not None:  # a freed storage's address, reused
                self.current -= known[1]
            self.live[key] = (StorageWeakRef(storage), storage.nbytes())
            self.current += storage.nbytes()
            if self.current > self.peak:  # a new peak only if it holds once the freed storages are dropped
                for stale in [k for k, (ref, _) in self.live.items() if ref.expired()]:
                    self.current -= self.live.pop(stale)[1]
                self.peak = max(self.peak, self.current)
        return out


def peak_bytes(step: Callable[[], Any]) -> int:
    """Peak memory one call of `step` allocates (after a warm-up call, so that optimizer state exists)."""
    step()
    with PeakMemory() as tracker:
        step()
    return tracker.peak


def timed(step: Callable[[], Any], repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(steps: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds of each step, the steps taking turns (one warm-up each), so that the load
    on a shared machine weighs on all of them alike: the numbers to take ratios of."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: round(statistics.median(t), 4) for name, t in times.items()}


def search_step(model: nn.Module, strategy_name: str, train: tuple, val: tuple) -> Callable[[], Any]:
    strategy = get_strategy(strategy_name)
    bilevel = BilevelOptimizer(model, F.cross_entropy, BilevelConfig(), total_epochs=1)

    def step():
        strategy.architecture_step(bilevel, train, val)
        bilevel.weight_step(*train)

    return step


def plain_step(model: nn.Module, train: tuple, val: tuple) -> Callable[[], Any]:
    bilevel = BilevelOptimizer(model, F.cross_entropy, BilevelConfig(), total_epochs=1)

    def step():
        bilevel.architecture_step(*val)
        bilevel.weight_step(*train)

    return step


def fixed_step(model: nn.Module, train: tuple, val: tuple) -> Callable[[], Any]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.025, momentum=0.9)

    def step():
        for x, y in (val, train):
            model.train()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

    return step


def same_architecture(
    space, architecture: dict, fixed: dict, train: tuple, val: tuple, repeats: int, strategies: list[str]
) -> dict:
    """One-path strategies with their logits peaked on the fixed architecture, so that the paths
    they sample are that architecture's: the like-for-like ratios to the best single-path baseline
    (`fixed`: its smallest peak, and its fastest variant, timed again in turns with the strategy)."""
    out = {}
    for strategy in strategies:
        model = supernet(space, mixture=get_strategy(strategy).mixture())
        model.set_alphas(
            {sid: [30.0 if v == architecture[sid] else 0.0 for v in model.option_values()[sid]] for sid in model.alphas}
        )
        step = search_step(model, strategy, train, val)
        seconds = interleaved({"fixed": fixed["fastest_step"], strategy: step}, repeats)
        result = {"seconds": seconds[strategy], "fixed_seconds": seconds["fixed"], "peak_mb": measure_peak(step)}
        result["time_over_fixed"] = round(seconds[strategy] / seconds["fixed"], 3)
        result["memory_over_fixed"] = round(result["peak_mb"] / max(fixed["peak_mb"], 1e-9), 3)
        out[strategy] = result
        print(f"  same architecture, {strategy:<10} {result}", flush=True)
    return out


def typical_architecture(model: SupernetExecutor, seed: int = 0) -> dict[str, int]:
    """A seeded random architecture that never picks `none` (a zero-op network would flatter the
    supernet): what a one-path strategy samples on average."""
    g = torch.Generator().manual_seed(seed)
    choice = {}
    for sid, names in model.option_names().items():
        allowed = [i for i, name in enumerate(names) if name != "none"]
        choice[sid] = model.option_values()[sid][allowed[int(torch.randint(len(allowed), (1,), generator=g))]]
    return choice


def measure_peak(step: Callable[[], Any]) -> float:
    """The larger peak memory (MB) of two steps (sampling strategies draw different paths each step)."""
    return round(max(peak_bytes(step), peak_bytes(step)) / 2**20, 2)


def measure(step: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Median seconds per step and peak memory."""
    return {"seconds": round(timed(step, repeats), 4), "peak_mb": measure_peak(step)}


def channels_last(batch: tuple) -> tuple:
    return (batch[0].contiguous(memory_format=torch.channels_last), *batch[1:])


def fixed_baselines(
    space, architecture: dict, fixed_fn: Callable[[dict], nn.Module], train: tuple, val: tuple, repeats: int, name: str
) -> dict:
    """One architecture trained alone, the same two passes per step: hand-written plain PyTorch
    (NCHW, and channels-last), and our executors on the discretized space. `best` takes, per
    metric, the best of them: the baseline the one-path ratios are taken against."""
    fixed_space = discretize(space, architecture)
    torch.manual_seed(0)
    runs = {
        "plain": (fixed_fn(architecture), train, val),
        "plain_channels_last": (
            fixed_fn(architecture).to(memory_format=torch.channels_last),
            channels_last(train),
            channels_last(val),
        ),
        "basic_executor": (BasicExecutor(fixed_space, seed=0), train, val),
        "supernet_executor": (supernet(fixed_space), train, val),
    }
    out: dict[str, Any] = {}
    steps = {key: fixed_step(model, t, v) for key, (model, t, v) in runs.items()}
    seconds = interleaved(steps, repeats)
    for key, step in steps.items():
        out[key] = {"seconds": seconds[key], "peak_mb": measure_peak(step)}
        print(f"[{name}] fixed architecture, {key:<20} {out[key]}", flush=True)
    fastest = min(steps, key=seconds.get)
    out["best"] = {
        "seconds": seconds[fastest],
        "fastest": fastest,
        "fastest_step": steps[fastest],
        "peak_mb": min(r["peak_mb"] for r in out.values()),
    }
    return out


def cell_space_benchmark(
    name: str, space_fn, plain_fn, fixed_fn, shape: tuple, batch: int, strategies: list[str], repeats: int
) -> dict:
    train, val = batches(shape, batch)
    space = space_fn()
    out: dict[str, Any] = {"space": name, "input": [batch, *shape]}
    plain = plain_fn()
    if name == "nb201":  # the same weights on both sides
        load_supernet_state(plain, supernet(space, optimize=False).state_dict(), space_fn.cells)
    # the ratios' three steps, timed in turns
    head = {"plain": plain_step(plain, train, val)}
    if HAS_OPTIMIZE_FLAG:
        head["ours_no_optimizations"] = search_step(supernet(space, optimize=False), "darts", train, val)
    if "darts" in strategies:
        head["darts"] = search_step(supernet(space, mixture=get_strategy("darts").mixture()), "darts", train, val)
    seconds = interleaved(head, repeats)
    out["strategies"] = {}
    for key, step in head.items():
        result = {"seconds": seconds[key], "peak_mb": measure_peak(step)}
        if key == "darts":
            out["strategies"]["darts"] = result
        else:
            out[key] = result
        print(f"[{name}] {key:<24} {result}", flush=True)
    for strategy in strategies:
        if strategy == "darts":
            continue
        model = supernet(space, mixture=get_strategy(strategy).mixture())
        out["strategies"][strategy] = measure(search_step(model, strategy, train, val), repeats)
        print(f"[{name}] ours, {strategy:<16} {out['strategies'][strategy]}", flush=True)
    architecture = typical_architecture(supernet(space))
    out["fixed_architecture"] = fixed_baselines(space, architecture, fixed_fn, train, val, repeats, name)
    out["fixed_architecture"]["options"] = sorted(
        set(supernet(space).option_names()[k][v] for k, v in architecture.items())
    )
    best = out["fixed_architecture"]["best"]
    out["same_architecture"] = same_architecture(
        space, architecture, best, train, val, repeats, [s for s in ("gdas", "proxyless") if s in strategies]
    )
    del best["fastest_step"]
    darts = out["strategies"].get("darts")
    ratios = {}
    if darts:
        ratios["plain_over_ours_darts_time"] = round(out["plain"]["seconds"] / darts["seconds"], 3)
        ratios["ours_darts_over_plain_memory"] = round(darts["peak_mb"] / max(out["plain"]["peak_mb"], 1e-9), 3)
    if "ours_no_optimizations" in out:
        ratios["ours_unoptimized_over_plain_time"] = round(
            out["ours_no_optimizations"]["seconds"] / out["plain"]["seconds"], 3
        )
    for strategy in ("gdas", "proxyless"):
        if strategy in out["same_architecture"]:
            ratios[f"{strategy}_over_fixed_time"] = out["same_architecture"][strategy]["time_over_fixed"]
            ratios[f"{strategy}_over_fixed_memory"] = out["same_architecture"][strategy]["memory_over_fixed"]
    out["ratios"] = ratios
    print(f"[{name}] ratios {ratios}", flush=True)
    return out


class PlainChain(nn.Module):
    """`edges` mixed ops in sequence, each over `options` 3x3/1x1 convolutions (DARTS-style ModuleList)."""

    def __init__(self, channels: int, edges: int, options: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(
            nn.ModuleList(
                nn.Conv2d(channels, channels, 3 if k % 2 else 1, padding=1 if k % 2 else 0, bias=False)
                for k in range(options)
            )
            for _ in range(edges)
        )
        self.alphas = nn.Parameter(torch.zeros(edges, options))
        self.head = nn.Linear(channels, 10)

    def arch_parameters(self):
        return [self.alphas]

    def weight_parameters(self):
        return [p for p in self.parameters() if p is not self.alphas]

    def forward(self, x):
        w = F.softmax(self.alphas, dim=-1)
        for e, ops in enumerate(self.edges):
            x = sum(w[e, k] * op(x) for k, op in enumerate(ops))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


def chain_space(channels: int, edges: int, options: int, size: int):
    x = Tensor("x", (1, channels, size, size), ("N", "C", "H", "W"))

    @search_space
    def chain(x):
        from ops import AdaptiveAvgPooling, Flatten, linear

        h = x
        for _ in range(edges):
            h = ChoiceOp(
                *[
                    functools.partial(conv2d, out_channels=channels, kernel_size=3 if k % 2 else 1)
                    for k in range(options)
                ]
            )(h)
        return linear(Flatten()(AdaptiveAvgPooling(1)(h)), 10)

    return chain(x)


def scaling_benchmark(channels: int, size: int, batch: int, repeats: int, grid: list[tuple[int, int]]) -> list[dict]:
    rows = []
    for edges, options in grid:
        train, val = batches((channels, size, size), batch)
        steps = {
            "ours": search_step(supernet(chain_space(channels, edges, options, size)), "darts", train, val),
            "plain": plain_step(PlainChain(channels, edges, options), train, val),
        }
        seconds = interleaved(steps, repeats)
        ours, plain = ({"seconds": seconds[k], "peak_mb": measure_peak(steps[k])} for k in ("ours", "plain"))
        rows.append(
            {
                "edges": edges,
                "options": options,
                "ours": ours,
                "plain": plain,
                "plain_over_ours_time": round(plain["seconds"] / ours["seconds"], 3),
            }
        )
        print(f"[scaling] edges {edges} options {options}: ours {ours} plain {plain}", flush=True)
    return rows


def compile_benchmark(space_fn, shape: tuple, batch: int, repeats: int) -> dict:
    """torch.compile of the DARTS supernet: graph breaks (dynamo explain) and the step speed-up."""
    train, val = batches(shape, batch)
    eager = supernet(space_fn())
    out: dict[str, Any] = {}
    try:
        explanation = torch._dynamo.explain(eager)(train[0])
        out["graph_breaks"] = explanation.graph_break_count
        out["break_reasons"] = [str(r.reason)[:200] for r in explanation.break_reasons][:5]
        torch._dynamo.reset()
        compiled_model = supernet(space_fn())
        compiled = torch.compile(compiled_model)
        start = time.perf_counter()
        F.cross_entropy(compiled(train[0]), train[1]).backward()
        out["compile_seconds"] = round(time.perf_counter() - start, 1)

        def fwd_bwd(model):
            def step():
                F.cross_entropy(model(train[0]), train[1]).backward()

            return step

        out["eager_fwd_bwd_seconds"] = round(timed(fwd_bwd(eager), repeats), 4)
        out["compiled_fwd_bwd_seconds"] = round(timed(fwd_bwd(compiled), repeats), 4)
        out["speedup"] = round(out["eager_fwd_bwd_seconds"] / out["compiled_fwd_bwd_seconds"], 3)
    except Exception as err:  # report, do not hide: the JSON says why compilation failed
        out["error"] = f"{type(err).__name__}: {str(err)[:300]}"
    print(f"[compile] {out}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny shapes: a smoke run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--strategies", default=",".join(sorted(STRATEGIES)))
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "step.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    strategies = [s for s in args.strategies.split(",") if s]
    if args.quick:
        nb = dict(channels=4, cells=1, batch=8, size=16)
        da = dict(channels=4, layers=3, batch=4, size=16)
        scaling = dict(channels=8, size=8, batch=8, grid=[(2, 2), (2, 4), (4, 2)])
    else:
        nb = dict(channels=16, cells=5, batch=64, size=32)
        da = dict(channels=8, layers=5, batch=32, size=32)
        scaling = dict(channels=16, size=16, batch=32, grid=[(4, 2), (4, 4), (4, 8), (2, 4), (8, 4)])
    setup = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "repeats": args.repeats,
        "quick": args.quick,
        "optimize_flag": HAS_OPTIMIZE_FLAG,
        "nb201": f"nb201_space(channels={nb['channels']}, cells_per_stage={nb['cells']}), 5 ops, batch {nb['batch']} of 3x{nb['size']}x{nb['size']}",
        "darts": f"darts_space(channels={da['channels']}, layers={da['layers']}), 8 ops, batch {da['batch']} of 3x{da['size']}x{da['size']}",
        "step": "architecture step (val batch) + weight step (train batch) through search.BilevelOptimizer",
        "memory": "peak MB of the tensors one step allocates, alive together (PeakMemory: every aten op, forward, backward, optimizer)",
        "fixed": "the same architecture alone, two training passes per step: plain PyTorch (NCHW, channels-last), BasicExecutor, SupernetExecutor; ratios against the best of them per metric",
    }
    print("setup:", json.dumps(setup, indent=1), flush=True)

    def nb201_fn():
        return nb201_space(
            Tensor("x", (1, 3, nb["size"], nb["size"]), ("N", "C", "H", "W")),
            channels=nb["channels"],
            cells_per_stage=nb["cells"],
        )

    nb201_fn.cells = nb["cells"]

    def darts_fn():
        return darts_space(
            Tensor("x", (1, 3, da["size"], da["size"]), ("N", "C", "H", "W")),
            channels=da["channels"],
            layers=da["layers"],
        )

    results = {"setup": setup}
    results["nb201"] = cell_space_benchmark(
        "nb201",
        nb201_fn,
        lambda: PlainNB201Supernet(nb["channels"], nb["cells"]),
        lambda arch: PlainNB201Network(nb201_genotype(arch), nb["channels"], nb["cells"]),
        (3, nb["size"], nb["size"]),
        nb["batch"],
        strategies,
        args.repeats,
    )
    results["darts"] = cell_space_benchmark(
        "darts",
        darts_fn,
        lambda: PlainDartsNetwork(da["channels"], 10, da["layers"]),
        lambda arch: PlainDartsFixedNetwork(darts_genotype(arch), da["channels"], 10, da["layers"]),
        (3, da["size"], da["size"]),
        da["batch"],
        [s for s in strategies if s in ("darts", "gdas", "proxyless")],
        args.repeats,
    )
    results["scaling"] = scaling_benchmark(
        scaling["channels"], scaling["size"], scaling["batch"], args.repeats, scaling["grid"]
    )
    if not args.no_compile:
        # one cell per stage: compiling the whole 15-cell graph takes far longer than the rest of the run here
        def compile_fn():
            return nb201_space(
                Tensor("x", (1, 3, nb["size"], nb["size"]), ("N", "C", "H", "W")),
                channels=nb["channels"],
                cells_per_stage=1,
            )

        setup["compile"] = (
            f"nb201_space(channels={nb['channels']}, cells_per_stage=1), batch {nb['batch']}: forward+backward"
        )
        results["compile"] = compile_benchmark(compile_fn, (3, nb["size"], nb["size"]), nb["batch"], args.repeats)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
