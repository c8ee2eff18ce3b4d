"""The strategies pass of the oracle benchmark: each strategy of `search.strategies` searches the
oracle space, its pick is ranked in the oracle table; random search gets the same compute.

Search: `fit_supernet(oracle_space(), train, val, strategy=name, epochs=--epochs, seed=s)` on
`oracle_data(0)` (weights on the 3000 train signals, architecture on the 1000 val signals), with
every other setting at its default; timed (wall clock, one thread).

Random search, same compute in wall time: random architectures (distinct, drawn with `seed`),
each trained with the table's recipe (`train_architecture`, seed `seed`) and scored on val, until
the search of the default strategy (`DEFAULT_STRATEGY`, drnas) of the same seed has been matched in
seconds (at least one architecture); the best val accuracy is its pick. Budget when that strategy is
not run: its time for that seed in the JSON
already written, else the mean search time of the strategies run for that seed; `--random-budget-s`
overrides it.

`--selection perturbation` selects by each option's measured effect (`fit_supernet(selection=
"perturbation")`, `--fine-tune-steps` between decisions); its rows also rank the argmax of the same
search (`argmax_architecture`, made connected as fit_supernet does) and time the selection
(`selection_time_s`: from the end of the last epoch to the result). Rows keep their `selection`.

Results merge into `benchmarks/results/oracle_strategies.json`: rows of (strategy, seed, selection)
run now replace the old ones, the others are kept, so single strategies can be re-run after a fix.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch

from oracle import ORACLE
from oracle_benchmark import OracleBenchmark
from oracle_space import architecture_key, oracle_space, switch_options
from oracle_table import load_table, rank_percentile, save_table
from search import fit_supernet
from search.connectivity import connected_architecture
from search.perturbation import SELECTIONS
from search.strategies import DEFAULT_STRATEGY, STRATEGIES, Strategy
from supernet import Node

STRATEGIES_PATH = ORACLE.strategies_path
SEARCH_EPOCHS = 15


def add_arguments(parser: argparse.ArgumentParser, bench: OracleBenchmark = ORACLE) -> None:
    """The `strategies` command's options (default files: `bench`'s)."""
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated names (default: all ten)")
    parser.add_argument("--seeds", type=int, default=5, help="search seeds 0 .. n-1")
    parser.add_argument("--seed-list", default=None, help="comma-separated search seeds (overrides --seeds)")
    parser.add_argument("--epochs", type=int, default=SEARCH_EPOCHS, help="search epochs (47 steps each)")
    parser.add_argument("--no-random", action="store_true", help="skip random search")
    parser.add_argument("--random-budget-s", type=float, default=None, help="random search's wall-time budget per seed")
    parser.add_argument("--selection", default="argmax", choices=SELECTIONS, help="fit_supernet(selection=...)")
    parser.add_argument(
        "--fine-tune-steps", type=int, default=0, help="with --selection perturbation: weight steps between decisions"
    )
    parser.add_argument("--table", type=Path, default=bench.table_path)
    parser.add_argument("--out", type=Path, default=bench.strategies_path)


def search_pick(
    name: Union[str, Strategy],
    seed: int,
    epochs: int,
    data: tuple,
    selection: str = "argmax",
    fine_tune_steps: int = 0,
    space: Callable[[], Node] = oracle_space,
) -> dict[str, Any]:
    """One search of `space()` (a strategy's name or a configured `Strategy`); its pick (switch id ->
    option index), seconds and per-switch top probability
    (with selection="perturbation" also the argmax pick of the same search, the drops measured and
    the seconds the selection took)."""
    train, val, _ = data
    ends: list[float] = []
    options: dict[str, Any] = {}
    if selection != "argmax":
        options = {
            "selection": selection,
            "perturbation": {"fine_tune_steps": fine_tune_steps},
            "callbacks": [lambda state: ends.append(time.perf_counter())],
        }
    space = space()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_supernet(space, train, val, strategy=name, epochs=epochs, seed=seed, progress=False, **options)
    finished = time.perf_counter()
    row = {
        "selection": selection,
        "architecture": {sid: int(v) for sid, v in sorted(result.architecture.items())},
        "search_time_s": round(finished - start, 2),
        "top_probability": {sid: round(max(p), 4) for sid, p in sorted(result.probabilities.items())},
        "decided": {sid: bool(entry["decided"]) for sid, entry in sorted(result.confidence.items())},
        "supernet_val_accuracy": result.metrics[-1].get("val_accuracy"),
        "epochs_run": len(result.metrics),
        "strategy_config": result.config["strategy"],
        "warnings": sorted({str(w.message)[:200] for w in caught}),
    }
    if selection != "argmax":
        argmax = {
            sid: result.option_values[sid][max(range(len(p)), key=p.__getitem__)]
            for sid, p in result.probabilities.items()
        }
        argmax, _ = connected_architecture(space, argmax, result.probabilities)
        row.update(
            {
                "argmax_architecture": {sid: int(v) for sid, v in sorted(argmax.items())},
                "selection_time_s": round(finished - ends[-1], 2),
                "selection_config": result.config["selection"],
                "drops": {sid: [round(d, 4) for d in e["drops"]] for sid, e in sorted(result.perturbation.items())},
            }
        )
    return row


def random_search(seed: int, budget_s: float, data: tuple, bench: OracleBenchmark = ORACLE) -> dict[str, Any]:
    """Distinct random architectures of `bench` trained with its table's recipe, best val accuracy wins."""
    options = switch_options(bench.space())
    rng = random.Random(seed)
    seen: set[str] = set()
    start, best, tried = time.perf_counter(), None, 0
    while tried == 0 or (time.perf_counter() - start < budget_s and len(seen) < _count(options)):
        architecture = {sid: rng.choice(values) for sid, values in options.items()}
        if architecture_key(architecture) in seen:
            continue
        seen.add(architecture_key(architecture))
        run = bench.train_architecture(architecture, seed, epochs=bench.table_epochs, data=data)
        tried += 1
        if best is None or run["val_accuracy"] > best[0]:
            best = (run["val_accuracy"], architecture)
    return {
        "architecture": best[1],
        "search_time_s": round(time.perf_counter() - start, 2),
        "candidates": tried,
        "candidate_val_accuracy": best[0],
        "budget_s": round(budget_s, 2),
        "strategy_config": {"name": "random", "candidate_epochs": bench.table_epochs},
    }


def _count(options: dict[str, list[int]]) -> int:
    total = 1
    for values in options.values():
        total *= len(values)
    return total


def ranked(row: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    """The row with its pick's label, table accuracy and rank percentile (and its argmax pick's)."""
    entries = {e["key"]: e for e in table["architectures"]}
    entry = entries[architecture_key(row["architecture"])]
    out = {
        **row,
        "label": entry["label"],
        "table_test_accuracy": round(entry["mean"], 4),
        "rank_percentile": round(rank_percentile(row["architecture"], table), 2),
    }
    if "argmax_architecture" in row:
        out.update(
            {
                "argmax_label": entries[architecture_key(row["argmax_architecture"])]["label"],
                "argmax_rank_percentile": round(rank_percentile(row["argmax_architecture"], table), 2),
            }
        )
    return out


def _name(row: dict[str, Any]) -> str:
    """The row's strategy, with its selection when that is not the argmax."""
    selection = row.get("selection", "argmax")
    return row["strategy"] if selection == "argmax" else f"{row['strategy']}+{selection}"


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per strategy: mean and worst rank percentile, picks in the top 5% / 10%, mean search time."""
    out = {}
    for name in dict.fromkeys(_name(r) for r in rows):
        mine = [r for r in rows if _name(r) == name]
        ranks = [r["rank_percentile"] for r in mine]
        out[name] = {
            "seeds": len(mine),
            "mean_rank_percentile": round(statistics.mean(ranks), 2),
            "worst_rank_percentile": max(ranks),
            "top5": sum(r <= 5 for r in ranks),
            "top10": sum(r <= 10 for r in ranks),
            "search_time_s": round(statistics.mean(r["search_time_s"] for r in mine), 1),
        }
        if all(r.get("top_probability") for r in mine):  # searches (random search reports none)
            out[name]["min_top_probability"] = min(min(r["top_probability"].values()) for r in mine)
            out[name]["seeds_all_p_at_least_half"] = sum(min(r["top_probability"].values()) >= 0.5 for r in mine)
        if all(r.get("decided") for r in mine):
            out[name]["decided_share"] = round(statistics.mean(statistics.mean(r["decided"].values()) for r in mine), 3)
        if all("argmax_rank_percentile" in r for r in mine):
            argmax = [r["argmax_rank_percentile"] for r in mine]
            out[name].update(
                {
                    "argmax_mean_rank_percentile": round(statistics.mean(argmax), 2),
                    "argmax_worst_rank_percentile": max(argmax),
                    "selection_time_s": round(statistics.mean(r["selection_time_s"] for r in mine), 1),
                }
            )
    return out


def print_summary(stats: dict[str, dict[str, Any]]) -> None:
    print(
        f"\n{'strategy':12s} {'seeds':>5s} {'mean rank %':>11s} {'worst rank %':>12s} {'top 5%':>6s} {'top 10%':>7s} {'search s':>9s}"
        f" {'min p':>6s} {'decided':>7s}"
    )
    for name, s in sorted(stats.items(), key=lambda item: item[1]["mean_rank_percentile"]):
        print(
            f"{name:12s} {s['seeds']:5d} {s['mean_rank_percentile']:11.1f} {s['worst_rank_percentile']:12.1f} "
            f"{s['top5']:6d} {s['top10']:7d} {s['search_time_s']:9.1f} {s.get('min_top_probability', float('nan')):6.3f}"
            f" {s.get('decided_share', float('nan')):7.2f}"
        )


def run_strategies(args: argparse.Namespace, bench: OracleBenchmark = ORACLE) -> dict[str, Any]:
    """The `strategies` command on `bench` (default the 1-D oracle): search, rank, merge into the JSON, print the table."""
    names = [n.strip().lower() for n in args.strategies.split(",") if n.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise SystemExit(f"--strategies: unknown {unknown}; known: {sorted(STRATEGIES)}")
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    table = load_table(args.table)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
    if previous.get("setup", {}).get("epochs", args.epochs) != args.epochs:
        raise SystemExit(
            f"{args.out} holds runs of {previous['setup']['epochs']} search epochs, not {args.epochs}; pass --out"
        )
    replaced = {(n, s, args.selection) for n in names for s in seeds} | (
        {("random", s, "argmax") for s in seeds} if not args.no_random else set()
    )
    rows = [r for r in previous["runs"] if (r["strategy"], r["seed"], r.get("selection", "argmax")) not in replaced]
    data = bench.data()
    setup = {
        "search": f"fit_supernet({bench.space.__name__}(), train, val, strategy=..., epochs={args.epochs}, seed=s), defaults otherwise"
        + (
            f"; rows with selection={args.selection!r}: selection={args.selection!r}, fine_tune_steps={args.fine_tune_steps}"
            if args.selection != "argmax"
            else ""
        ),
        "epochs": args.epochs,
        "steps_per_epoch": -(-len(data[0][0]) // 64),
        "table": str(args.table.name),
        "random": f"same wall time as the {DEFAULT_STRATEGY} (default) search of the seed; candidates trained with the table recipe, best val accuracy",
        "rank": "rank_percentile: % of the table above the pick by mean test accuracy, 0 = best, ties mid-rank",
        "threads": torch.get_num_threads(),
        "commit": _commit(),
    }
    print("setup:", json.dumps(setup))
    for seed in seeds:
        times = {}
        for name in names:
            picked = search_pick(name, seed, args.epochs, data, args.selection, args.fine_tune_steps, space=bench.space)
            row = ranked({"strategy": name, "seed": seed, **picked}, table)
            times[name] = row["search_time_s"]
            rows.append(row)
            extra = (
                f"  (argmax rank {row['argmax_rank_percentile']:.1f}% {row['argmax_label']}; selection {row['selection_time_s']:.1f}s)"
                if "argmax_rank_percentile" in row
                else ""
            )
            print(
                f"seed {seed} {name:11s} {row['search_time_s']:6.1f}s rank {row['rank_percentile']:5.1f}%  "
                f"acc {row['table_test_accuracy']:.4f}  {row['label']}{extra}",
                flush=True,
            )
            _write(args.out, setup, rows)
        if not args.no_random:
            budget = (
                args.random_budget_s
                or times.get(DEFAULT_STRATEGY)
                or _default_time(previous["runs"], seed)
                or statistics.mean(times.values())
            )
            row = ranked({"strategy": "random", "seed": seed, **random_search(seed, budget, data, bench)}, table)
            rows.append(row)
            print(
                f"seed {seed} {'random':11s} {row['search_time_s']:6.1f}s rank {row['rank_percentile']:5.1f}%  "
                f"acc {row['table_test_accuracy']:.4f}  {row['label']} ({row['candidates']} candidates)",
                flush=True,
            )
            _write(args.out, setup, rows)
    payload = _write(args.out, setup, rows)
    print_summary(payload["summary"])
    print(f"wrote {args.out}")
    return payload


def _default_time(runs: list[dict[str, Any]], seed: int) -> Optional[float]:
    return next(
        (
            r["search_time_s"]
            for r in runs
            if r["strategy"] == DEFAULT_STRATEGY and r["seed"] == seed and r.get("selection", "argmax") == "argmax"
        ),
        None,
    )


def _write(path: Path, setup: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: (r["strategy"], r.get("selection", "argmax"), r["seed"]))
    payload = {"setup": setup, "summary": summary(rows), "runs": rows}
    save_table(payload, path)
    return payload


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
