"""Benchmark of the search strategies on MNIST-1D with the NB201-style 1-D cell space.

For every strategy and seed: `fit_supernet` on the MNIST-1D training set (split in halves: weights
on one, architecture on the other), timed; the peak memory of its search steps; the exported
architecture retrained from scratch with `train_classifier` on the whole training set, and its test
accuracy. Baseline: random search with the compute of one DARTS search of the same seed (random
architectures trained briefly on one half, ranked on the other; the best is retrained likewise).

Peak memory is the peak of the autograd-saved activations alive at once (distinct storages,
counted with `torch.autograd.graph.saved_tensors_hooks`), measured on a few separate search steps
so that the timed searches run without hooks: on CPU it is what differs between strategies
(process RSS is dominated by libraries and data). For random search it is the training of its
final architecture.

    python benchmarks/strategies.py            # full: 3 seeds, ~30-40 min on one CPU thread
    python benchmarks/strategies.py --quick    # 1 seed, small data: a couple of minutes

Results: benchmarks/results/strategies.json (--quick: strategies_quick.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import statistics
import sys
import time
import weakref
from pathlib import Path
from typing import Any, Optional

import torch

from search import fit_supernet
from search.datasets import load_mnist1d
from search.loaders import split_in_halves
from search.retrain import train_classifier
from search.spaces import NB201_EDGES, nb201_1d_space
from search.strategies import STRATEGIES
from supernet import BasicExecutor, ChoiceOp, discretize, get_nodes
from supernet.choice import switch_values

RESULTS = Path(__file__).resolve().parent / "results"


class SavedActivationMeter:
    """Context manager: peak bytes of the tensors autograd saves for backward, alive at once."""

    class _Box:
        __slots__ = ("tensor", "__weakref__")

        def __init__(self, tensor: torch.Tensor) -> None:
            self.tensor = tensor

    def __init__(self) -> None:
        self.live: dict[tuple, list[int]] = {}
        self.current = self.peak = 0

    def _pack(self, tensor: torch.Tensor) -> Any:
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), str(tensor.device))
        entry = self.live.get(key)
        if entry is None:
            self.live[key] = [storage.nbytes(), 1]
            self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)
        else:
            entry[1] += 1
        box = self._Box(tensor.detach())  # detached: a saved output must not reference its own grad_fn (cycle)
        weakref.finalize(box, self._release, key)
        return box

    def _release(self, key: tuple) -> None:
        entry = self.live[key]
        entry[1] -= 1
        if entry[1] == 0:
            del self.live[key]
            self.current -= entry[0]

    def __enter__(self) -> "SavedActivationMeter":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda box: box.tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)


def genotype(chosen: dict[str, str]) -> str:
    """The NB201 string of the (tied) cell, e.g. |nor_conv_3x3~0|+|skip_connect~0|none~1|+|..."""
    ops = {}
    for sid, op in chosen.items():
        match = re.search(r"edge_(\d)to(\d)", sid)
        if match:
            ops.setdefault((int(match[1]), int(match[2])), op)
    if set(ops) != set(NB201_EDGES):
        return ""
    return "+".join("|" + "|".join(f"{ops[(i, j)]}~{i}" for i in range(j)) + "|" for j in range(1, 4))


def step_memory_mb(space_fn, train, strategy: str, batch_size: int, seed: int, steps: int = 4) -> float:
    """Peak saved-activation MB over `steps` search steps (architecture + weight step each)."""
    x, y = train
    n = min(len(x), 2 * steps * batch_size)
    with SavedActivationMeter() as meter:
        fit_supernet(
            space_fn(),
            (x[:n], y[:n]),
            strategy=strategy,
            epochs=1,
            batch_size=batch_size,
            seed=seed,
            device="cpu",
            progress=False,
        )
    return meter.peak / 2**20


def training_memory_mb(model: torch.nn.Module, train, batch_size: int, steps: int = 3) -> float:
    x, y = train
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    model.train()
    with SavedActivationMeter() as meter:
        for i in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(
                model(x[i * batch_size : (i + 1) * batch_size]), y[i * batch_size : (i + 1) * batch_size]
            ).backward()
    return meter.peak / 2**20


def random_search(space, train, budget_s: float, seed: int, candidate_epochs: int, batch_size: int) -> dict[str, Any]:
    """Random architectures, each trained `candidate_epochs` on one half of `train` and ranked by
    accuracy on the other, until `budget_s` seconds are spent (at least one)."""
    rng = random.Random(seed)
    switches: dict[str, list[int]] = {}
    for node in get_nodes(space):
        if isinstance(node, ChoiceOp):
            switches.setdefault(node.switch.id, switch_values(node.switch))
    fit, held_out = split_in_halves(train, seed)
    start, tried, best = time.perf_counter(), 0, None
    while tried == 0 or time.perf_counter() - start < budget_s:
        architecture = {sid: rng.choice(values) for sid, values in sorted(switches.items())}
        model = BasicExecutor(discretize(space, architecture), seed=seed + tried)
        accuracy = train_classifier(
            model, fit, held_out, epochs=candidate_epochs, batch_size=batch_size, seed=seed + tried, progress=False
        )["test_accuracy"]
        tried += 1
        if best is None or accuracy > best[0]:
            best = (accuracy, architecture)
    return {
        "architecture": best[1],
        "val_accuracy": best[0],
        "candidates": tried,
        "search_time_s": time.perf_counter() - start,
    }


def option_labels(space) -> dict[str, list[str]]:
    labels = {}
    for node in get_nodes(space):
        if isinstance(node, ChoiceOp):
            names = node.option_names()
            labels.setdefault(node.switch.id, names)
    return labels


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, small data, 1 search epoch: a couple of minutes")
    parser.add_argument("--strategies", default=",".join(sorted(STRATEGIES)), help="comma-separated strategy names")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default 0,1,2; --quick: 0)")
    parser.add_argument("--search-epochs", type=int, default=None, help="default 5 (--quick: 1)")
    parser.add_argument("--retrain-epochs", type=int, default=None, help="default 10 (--quick: 2)")
    parser.add_argument(
        "--channels", type=int, default=None, help="stem width C of the space (C, 2C, 4C; default 16, --quick: 8)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-random", action="store_true", help="skip the random-search baseline")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/strategies[_quick].json)")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    quick = args.quick
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else ([0] if quick else [0, 1, 2])
    search_epochs = args.search_epochs or (1 if quick else 5)
    retrain_epochs = args.retrain_epochs or (2 if quick else 10)
    channels = args.channels or (8 if quick else 16)
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; known: {sorted(STRATEGIES)}")
    out = Path(args.out) if args.out else RESULTS / ("strategies_quick.json" if quick else "strategies.json")

    (x, y), (x_test, y_test) = load_mnist1d()
    if quick:
        x, y = x[:1024], y[:1024]
    train, test = (x, y), (x_test, y_test)

    def space_fn():
        return nb201_1d_space(channels=channels, cells_per_stage=1, num_classes=10)

    setup = {
        "mode": "quick" if quick else "full",
        "space": f"nb201_1d_space(channels={channels}, cells_per_stage=1, tied=True): 3 cells, 6 edges x 5 ops, 15625 architectures",
        "data": f"MNIST-1D (load_mnist1d, seed 42): search on {len(x)} train samples split in halves, retrain on {len(x)}, test on {len(x_test)}",
        "strategies": names,
        "seeds": seeds,
        "search_epochs": search_epochs,
        "retrain_epochs": retrain_epochs,
        "batch_size": args.batch_size,
        "search_optim": "BilevelConfig defaults (DARTS paper)",
        "retrain": "train_classifier: AdamW lr 0.01, wd 5e-4, one-cycle schedule",
        "random_search": "budget = wall time of the DARTS search of the same seed; candidates trained 1 epoch on one half, ranked on the other",
        "memory": "peak autograd-saved activation MB over 4 search steps (separate run, hooks off while timing)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    print("setup:")
    for key, value in setup.items():
        print(f"  {key}: {value}")
    sys.stdout.flush()

    labels = option_labels(space_fn())
    runs: list[dict[str, Any]] = []
    darts_time: dict[int, float] = {}
    total_start = time.perf_counter()
    for seed in seeds:
        for name in names:
            start = time.perf_counter()
            result = fit_supernet(
                space_fn(),
                train,
                strategy=name,
                epochs=search_epochs,
                batch_size=args.batch_size,
                seed=seed,
                device="cpu",
                progress=False,
            )
            search_time = time.perf_counter() - start
            if name == "darts":
                darts_time[seed] = search_time
            memory = step_memory_mb(space_fn, train, name, args.batch_size, seed)
            start = time.perf_counter()
            retrained = train_classifier(
                result.export(seed=seed),
                train,
                test,
                epochs=retrain_epochs,
                batch_size=args.batch_size,
                seed=seed,
                progress=False,
            )
            row = {
                "strategy": name,
                "seed": seed,
                "search_time_s": round(search_time, 2),
                "peak_memory_mb": round(memory, 2),
                "supernet_val_accuracy": round(result.metrics[-1].get("val_accuracy", float("nan")), 4),
                "epochs_run": len(result.metrics),
                "genotype": genotype(result.chosen_options),
                "test_accuracy": round(retrained["test_accuracy"], 4),
                "retrain_time_s": round(time.perf_counter() - start, 2),
                "strategy_config": result.config["strategy"],
            }
            runs.append(row)
            print(
                f"seed {seed} {name:10s} search {search_time:7.1f}s  mem {memory:6.2f}MB  test acc {row['test_accuracy']:.4f}  {row['genotype']}"
            )
            sys.stdout.flush()
        if not args.no_random:
            budget = darts_time.get(seed) or statistics.mean(r["search_time_s"] for r in runs if r["seed"] == seed)
            space = space_fn()
            found = random_search(space, train, budget, seed, candidate_epochs=1, batch_size=args.batch_size)
            model = BasicExecutor(discretize(space, found["architecture"]), seed=seed)
            memory = training_memory_mb(
                BasicExecutor(discretize(space, found["architecture"]), seed=seed), train, args.batch_size
            )
            start = time.perf_counter()
            retrained = train_classifier(
                model, train, test, epochs=retrain_epochs, batch_size=args.batch_size, seed=seed, progress=False
            )
            chosen = {sid: labels[sid][i] for sid, i in found["architecture"].items()}
            row = {
                "strategy": "random",
                "seed": seed,
                "search_time_s": round(found["search_time_s"], 2),
                "peak_memory_mb": round(memory, 2),
                "supernet_val_accuracy": None,
                "candidates": found["candidates"],
                "candidate_val_accuracy": round(found["val_accuracy"], 4),
                "genotype": genotype(chosen),
                "test_accuracy": round(retrained["test_accuracy"], 4),
                "retrain_time_s": round(time.perf_counter() - start, 2),
                "strategy_config": {"name": "random", "budget_s": round(budget, 2)},
            }
            runs.append(row)
            print(
                f"seed {seed} {'random':10s} search {found['search_time_s']:7.1f}s  mem {memory:6.2f}MB  test acc {row['test_accuracy']:.4f}  "
                f"{row['genotype']} ({found['candidates']} candidates)"
            )
            sys.stdout.flush()

    summary = {}
    for name in [*names, *([] if args.no_random else ["random"])]:
        rows = [r for r in runs if r["strategy"] == name]
        summary[name] = {
            key: _mean_std([r[key] for r in rows]) for key in ("test_accuracy", "search_time_s", "peak_memory_mb")
        }
    print(f"\nsummary over seeds {seeds} (mean ± std):")
    print(f"  {'strategy':10s} {'test accuracy':>16s} {'search time s':>16s} {'peak mem MB':>14s}")
    for name, stats in summary.items():
        acc, t, mem = stats["test_accuracy"], stats["search_time_s"], stats["peak_memory_mb"]
        print(
            f"  {name:10s} {acc['mean']:9.4f} ± {acc['std']:.4f} {t['mean']:9.1f} ± {t['std']:5.1f} {mem['mean']:8.2f} ± {mem['std']:.2f}"
        )
    total = time.perf_counter() - total_start
    print(f"total {total:.0f}s")
    payload = {"setup": setup, "runs": runs, "summary": summary, "total_time_s": round(total, 1)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1))
    print(f"wrote {out}")
    return payload


def _mean_std(values: list[float]) -> dict[str, float]:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": float("nan"), "std": float("nan")}
    return {
        "mean": round(statistics.mean(values), 4),
        "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
    }


if __name__ == "__main__":
    main()
