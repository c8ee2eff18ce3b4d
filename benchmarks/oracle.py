"""The project's own exhaustive benchmark: every architecture of a small space trained from scratch
(the oracle table), then each search strategy's pick ranked in it.

    python benchmarks/oracle.py table                      # 125 architectures x 3 seeds (resumable)
    python benchmarks/oracle.py strategies --seeds 5       # all ten strategies + random search
    python benchmarks/oracle.py strategies --strategies gdas,fairdarts --seeds 3

Space and data: see oracle_space.py (125 architectures; MNIST-1D 3000 train / 1000 val / 1000
test). Table recipe (`train_architecture`): the fixed architecture (`discretize` +
`BasicExecutor`) trained from scratch with `search.retrain.train_classifier` (AdamW lr 0.01,
one-cycle, batch 64) for `TABLE_EPOCHS` epochs on train; accuracy on test (and val). Rank:
`rank_percentile` (oracle_table.py), by mean test accuracy over the table's seeds.
Strategies pass: see oracle_strategies.py.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

sys.path.insert(
    0, str(Path(__file__).resolve().parent)
)  # the oracle_* helpers, also when imported as benchmarks.oracle

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from oracle_space import (  # noqa: E402
    TEST_SIZE,
    TRAIN_SIZE,
    VAL_SIZE,
    all_architectures,
    architecture_key,
    architecture_label,
    oracle_data,
    oracle_space,
    switch_options,
)
from oracle_benchmark import OracleBenchmark  # noqa: E402
from oracle_table import RESULTS, TABLE_PATH, load_table, rank_percentile, save_table, summarise, table_stats  # noqa: E402
from search.retrain import evaluate_accuracy, train_classifier  # noqa: E402
from supernet import BasicExecutor, Node, discretize  # noqa: E402

TABLE_EPOCHS = 6
TABLE_SEEDS = (0, 1, 2)
BATCH_SIZE = 64

Split = tuple[torch.Tensor, torch.Tensor]

__all__ = [
    "all_architectures",
    "architecture_key",
    "architecture_label",
    "load_table",
    "oracle_data",
    "oracle_space",
    "rank_percentile",
    "table_stats",
    "train_architecture",
    "write_table",
]


def check_architecture(architecture: Mapping[str, Any], space: Callable[[], Node] = oracle_space) -> dict[str, int]:
    """The architecture as switch id -> int, or a ValueError naming the switch at fault."""
    options = switch_options(space())
    unknown = sorted(set(architecture) - set(options))
    missing = sorted(set(options) - set(architecture))
    if unknown or missing:
        raise ValueError(f"architecture does not fit the oracle space: unknown switches {unknown}, missing {missing}")
    for sid, value in architecture.items():
        if isinstance(value, bool) or int(value) != value or int(value) not in options[sid]:
            raise ValueError(f"architecture[{sid!r}] = {value!r} is not one of the options {options[sid]}")
    return {sid: int(value) for sid, value in sorted(architecture.items())}


def train_architecture(
    architecture: Mapping[str, Any],
    seed: int,
    *,
    epochs: int = TABLE_EPOCHS,
    data: Optional[tuple[Split, Split, Split]] = None,
    progress: bool = False,
    space: Callable[[], Node] = oracle_space,
) -> dict[str, Any]:
    """Train the fixed `architecture` of `space()` (default `oracle_space()`) from scratch (weights and
    batch order from `seed`) for `epochs` on `data`'s train split (default `oracle_data(0)`); returns
    test and val accuracy, parameter count and seconds. Same seed, same numbers."""
    architecture = check_architecture(architecture, space)
    train, val, test = data if data is not None else oracle_data(0)
    start = time.perf_counter()
    model = BasicExecutor(discretize(space(), architecture), seed=seed)
    result = train_classifier(model, train, test, epochs=epochs, batch_size=BATCH_SIZE, seed=seed, progress=progress)
    return {
        "seed": seed,
        "test_accuracy": result["test_accuracy"],
        "val_accuracy": evaluate_accuracy(model, val),
        "final_train_loss": result["train_loss"][-1],
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.perf_counter() - start, 3),
    }


def table_setup(epochs: int, seeds: Sequence[int]) -> dict[str, Any]:
    """The recipe a table was trained with; a partial table is resumed only under the same one."""
    return {
        "space": "oracle_space(): stem Conv3(16)+BN, 2 tied 3-edge cells (avg-pool 2 between), NB201 head; 5 NB201 ops per edge",
        "architectures": len(all_architectures()),
        "data": f"MNIST-1D (load_mnist1d seed 42): train {TRAIN_SIZE} / val {VAL_SIZE} (oracle_data(0)) / test {TEST_SIZE}",
        "recipe": f"train_classifier: AdamW lr 0.01, wd 5e-4, one-cycle, batch {BATCH_SIZE}, {epochs} epochs from scratch",
        "epochs": epochs,
        "seeds": list(seeds),
        "rank": "by mean test accuracy over the seeds (rank_percentile)",
    }


ORACLE = OracleBenchmark(
    name="oracle",
    space=oracle_space,
    data=lambda: oracle_data(0),
    train_architecture=train_architecture,
    table_epochs=TABLE_EPOCHS,
    setup=table_setup,
    table_path=TABLE_PATH,
    strategies_path=RESULTS / "oracle_strategies.json",
    command="python benchmarks/oracle.py table",
)


def write_table(
    path: Path = TABLE_PATH,
    epochs: int = TABLE_EPOCHS,
    seeds: Sequence[int] = TABLE_SEEDS,
    progress: bool = True,
    bench: OracleBenchmark = ORACLE,
) -> dict[str, Any]:
    """Train every architecture of `bench` (default the 1-D oracle) for every seed and write the table,
    saving after each architecture; an existing table at `path` with the same setup is resumed (its
    finished runs are kept)."""
    setup = bench.setup(epochs, seeds)
    entries: dict[str, dict[str, Any]] = {}
    if path.is_file():
        previous = load_table(path)
        if {k: v for k, v in previous["setup"].items() if k in setup} == setup:
            entries = {entry["key"]: entry for entry in previous["architectures"]}
        else:
            raise ValueError(f"{path} holds a table of another setup ({previous['setup']}); move it away or pass --out")
    data = bench.data()
    jobs = [
        (a, s)
        for a in all_architectures(bench.space())
        for s in seeds
        if s not in {run["seed"] for run in entries.get(architecture_key(a), {}).get("runs", [])}
    ]
    setup.update(
        {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "machine": platform.platform(),
        }
    )
    table = {"setup": setup, "architectures": [], "stats": {}}
    start = time.perf_counter()
    for architecture, seed in tqdm(jobs, desc=f"{bench.name} table", disable=not progress):
        key = architecture_key(architecture)
        entry = entries.setdefault(
            key, {"key": key, "architecture": architecture, "label": architecture_label(architecture), "runs": []}
        )
        entry["runs"].append(bench.train_architecture(architecture, seed, epochs=epochs, data=data))
        entry["runs"].sort(key=lambda run: run["seed"])
        summarise(entry)
        if seed == seeds[-1]:
            _store(table, entries, path)
    table["setup"]["seconds_this_run"] = round(time.perf_counter() - start, 1)
    _store(table, entries, path)
    return table


def _store(table: dict[str, Any], entries: dict[str, dict[str, Any]], path: Path) -> None:
    table["architectures"] = sorted(entries.values(), key=lambda entry: entry["key"])
    table["stats"] = table_stats(table)
    save_table(table, path)


def print_stats(table: Mapping[str, Any]) -> None:
    stats = table["stats"]
    print(
        f"{stats['architectures']} architectures: best {stats['best']:.4f} ({stats['best_label']}), median {stats['median']:.4f}, "
        f"worst {stats['worst']:.4f}; top-5% threshold {stats['top5_threshold']:.4f}; "
        f"std across seeds: mean {stats['std_mean']:.4f}, max {stats['std_max']:.4f}"
    )


def main(
    argv: Optional[Sequence[str]] = None,
    bench: OracleBenchmark = ORACLE,
    seeds: Sequence[int] = TABLE_SEEDS,
    description: Optional[str] = None,
) -> None:
    """`table` or `strategies` (see the module docstring) of `bench` (default the 1-D oracle)."""
    parser = argparse.ArgumentParser(
        description=description or __doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    table = commands.add_parser("table", help="train every architecture (resumes a partial table)")
    table.add_argument("--epochs", type=int, default=bench.table_epochs)
    table.add_argument("--seeds", default=",".join(map(str, seeds)), help="comma-separated training seeds")
    table.add_argument("--out", type=Path, default=bench.table_path)
    table.add_argument("--no-progress", action="store_true")
    from oracle_strategies import add_arguments, run_strategies

    add_arguments(
        commands.add_parser("strategies", help="rank each strategy's pick (and random search's) in the table"), bench
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "table":
        written = write_table(
            args.out, args.epochs, [int(s) for s in args.seeds.split(",")], progress=not args.no_progress, bench=bench
        )
        print_stats(written)
        print(f"wrote {args.out}")
    else:
        run_strategies(args, bench)


if __name__ == "__main__":
    main()
