"""Ranking correlation of weight-sharing supernets: does a supernet order architectures the way
training each one from scratch does?

    python benchmarks/ranking.py                       # SPOS, FairNAS, DARTS; 3 seeds each
    python benchmarks/ranking.py --quick               # 1 seed, 2 epochs: a smoke run
    ORACLE_DIR=/path/to/benchmarks python benchmarks/ranking.py   # where oracle.py lives, if not here

On the project's exhaustive benchmark (`benchmarks/oracle.py`: 125 architectures of a small
MNIST-1D cell space, each trained from scratch for 3 seeds), each strategy trains a supernet with
`fit_supernet(oracle_space(), train, val, strategy=..., epochs=--epochs, seed=s)` on
`oracle_data(0)`; then every architecture is scored with the weights it inherits
(`SearchResult.evaluate` on the 1000 val signals, BatchNorm statistics re-estimated on
`--recalibration-batches` training batches of 64). Kendall's tau (tau-b, scipy) against the table's
mean test accuracy is reported over all 125 architectures and over the connected ones (those the
table puts above chance: `none` on both paths gives a dead network that any scorer ranks last,
which flatters tau), with Spearman's rho, the rank percentile of the supernet's best architecture,
and the top-10 overlap. One thread, one process. Results: benchmarks/results/ranking.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from scipy.stats import kendalltau, spearmanr

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "ranking.json"
CHANCE = 0.15  # MNIST-1D has 10 classes: a dead network scores about 0.1


def oracle_module(directory: Optional[str]) -> Any:
    """`oracle.py` from `directory` (or $ORACLE_DIR, else this directory)."""
    where = directory or os.environ.get("ORACLE_DIR") or str(HERE)
    if not (Path(where) / "oracle.py").is_file():
        raise FileNotFoundError(
            f"no oracle.py in {where}: pass --oracle-dir or set ORACLE_DIR to the directory holding it"
        )
    sys.path.insert(0, where)
    import oracle  # noqa: PLC0415  (located at run time)

    return oracle


def correlations(scores: Sequence[float], truth: Sequence[float]) -> dict[str, float]:
    tau = kendalltau(scores, truth).statistic
    rho = spearmanr(scores, truth).statistic
    return {"kendall_tau": round(float(tau), 4), "spearman_rho": round(float(rho), 4)}


def score_supernet(oracle: Any, strategy: str, seed: int, epochs: int, batches: int, data: tuple) -> dict[str, Any]:
    """Train one supernet and score every architecture of the oracle space with inherited weights."""
    from search import fit_supernet
    from search.evaluate import PathEvaluator

    train, val, _ = data
    start = time.perf_counter()
    result = fit_supernet(
        oracle.oracle_space(), train, val, strategy=strategy, epochs=epochs, seed=seed, progress=False
    )
    train_seconds = time.perf_counter() - start
    evaluator = PathEvaluator(result)
    start = time.perf_counter()
    scores = {
        oracle.architecture_key(a): round(
            evaluator.evaluate(val, a, batches=batches, train=train, batch_size=64, seed=seed)["accuracy"], 4
        )
        for a in oracle.all_architectures()
    }
    return {
        "strategy": strategy,
        "seed": seed,
        "epochs": epochs,
        "recalibration_batches": batches,
        "scores": scores,
        "train_seconds": round(train_seconds, 1),
        "score_seconds": round(time.perf_counter() - start, 1),
    }


def correlate(oracle: Any, table: dict, run: dict[str, Any]) -> dict[str, Any]:
    """The run's inherited-weight scores against the table's trained accuracies."""
    entries = [e for e in table["architectures"] if e["key"] in run["scores"]]
    scores = [run["scores"][e["key"]] for e in entries]
    truth = [e["mean"] for e in entries]
    connected = [i for i, t in enumerate(truth) if t > CHANCE]
    best = max(range(len(entries)), key=lambda i: scores[i])
    top = lambda values: set(sorted(range(len(values)), key=lambda i: -values[i])[:10])  # noqa: E731
    return {
        "architectures": len(entries),
        "all": correlations(scores, truth),
        "connected": correlations([scores[i] for i in connected], [truth[i] for i in connected]),
        "connected_architectures": len(connected),
        "supernet_best": entries[best]["label"],
        "supernet_best_rank_percentile": round(oracle.rank_percentile(entries[best]["architecture"], table), 2),
        "top10_overlap": len(top(scores) & top(truth)),
        "supernet_accuracy_mean": round(statistics.mean(scores), 4),
    }


def others(saved: list[dict[str, Any]], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The saved runs this invocation did not run again (other strategies, seeds or settings)."""
    ran = {(r["strategy"], r["seed"], r["epochs"], r["recalibration_batches"]) for r in runs}
    return [r for r in saved if (r["strategy"], r["seed"], r["epochs"], r["recalibration_batches"]) not in ran]


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for label in dict.fromkeys(f"{r['strategy']}, {r['epochs']} epochs" for r in rows):
        mine = [r for r in rows if f"{r['strategy']}, {r['epochs']} epochs" == label]
        stat = lambda f: [f(r) for r in mine]  # noqa: E731
        taus, connected = (
            stat(lambda r: r["correlation"]["all"]["kendall_tau"]),
            stat(lambda r: r["correlation"]["connected"]["kendall_tau"]),
        )
        out[label] = {
            "seeds": len(mine),
            "kendall_tau_mean": round(statistics.mean(taus), 4),
            "kendall_tau_std": round(statistics.stdev(taus), 4) if len(taus) > 1 else 0.0,
            "kendall_tau_connected_mean": round(statistics.mean(connected), 4),
            "kendall_tau_connected_std": round(statistics.stdev(connected), 4) if len(connected) > 1 else 0.0,
            "spearman_rho_mean": round(statistics.mean(stat(lambda r: r["correlation"]["all"]["spearman_rho"])), 4),
            "best_rank_percentile_mean": round(
                statistics.mean(stat(lambda r: r["correlation"]["supernet_best_rank_percentile"])), 2
            ),
            "top10_overlap_mean": round(statistics.mean(stat(lambda r: r["correlation"]["top10_overlap"])), 2),
            "train_seconds_mean": round(statistics.mean(stat(lambda r: r["train_seconds"])), 1),
        }
    return out


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--strategies",
        default="spos,spos:150,fairnas,darts",
        help="comma-separated NAME or NAME:EPOCHS (spos:150: as many path passes as FairNAS in 30 epochs)",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. n-1")
    parser.add_argument("--seed-list", default=None, help="comma-separated seeds (overrides --seeds)")
    parser.add_argument("--epochs", type=int, default=30, help="supernet training epochs (47 steps of 64 each)")

    parser.add_argument("--recalibration-batches", type=int, default=10)
    parser.add_argument(
        "--oracle-dir", default=None, help="the directory holding oracle.py (default: $ORACLE_DIR, else here)"
    )
    parser.add_argument("--table", type=Path, default=None, help="the oracle table JSON (default: oracle.py's)")
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        args.seeds, args.epochs, args.seed_list = 1, 2, None
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    oracle = oracle_module(args.oracle_dir)
    table = oracle.load_table(args.table) if args.table is not None else oracle.load_table()
    if len(table["architectures"]) != len(oracle.all_architectures()):
        print(
            f"warning: the oracle table holds {len(table['architectures'])} of {len(oracle.all_architectures())} architectures "
            "so far: correlations over those only; rerun once it is complete (scores are kept)",
            flush=True,
        )
    data = oracle.oracle_data(0)
    saved = json.loads(args.out.read_text()).get("runs", []) if args.out.is_file() and not args.quick else []
    runs = []
    for spec in args.strategies.split(","):
        strategy, _, own = spec.partition(":")
        epochs = int(own) if own and not args.quick else args.epochs
        for seed in seeds:
            same = [
                r
                for r in saved
                if (r["strategy"], r["seed"], r["epochs"], r["recalibration_batches"])
                == (strategy, seed, epochs, args.recalibration_batches)
            ]
            run = same[0] if same else score_supernet(oracle, strategy, seed, epochs, args.recalibration_batches, data)
            run = {k: v for k, v in run.items() if k not in ("correlation",)}
            run["correlation"] = correlate(oracle, table, run)
            c = run["correlation"]
            print(
                f"{strategy:<8} seed {seed}: tau {c['all']['kendall_tau']:.3f} (connected {c['connected']['kendall_tau']:.3f}) "
                f"over {c['architectures']}, best {c['supernet_best']} at {c['supernet_best_rank_percentile']}%, "
                f"train {run['train_seconds']:.0f} s",
                flush=True,
            )
            runs.append(run)
            if not args.quick:  # scores are kept: a rerun (e.g. once the table is complete) only correlates again
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({"runs": runs + others(saved, runs)}, indent=1))
    rows = runs + [{**r, "correlation": correlate(oracle, table, r)} for r in others(saved, runs)]
    report = {
        "setup": {
            "epochs": args.epochs,
            "strategies": args.strategies,
            "seeds": seeds,
            "recalibration_batches": args.recalibration_batches,
            "truth": "oracle table mean test accuracy (3 seeds)",
            "score": "inherited-weight val accuracy (1000 signals)",
            "chance_threshold": CHANCE,
            "table_setup": table["setup"],
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "machine": platform.platform(),
        },
        "complete": len(table["architectures"]) == len(oracle.all_architectures()),
        "summary": summary(rows),
        "runs": rows,
    }
    for strategy, s in report["summary"].items():
        print(
            f"{strategy:<20} tau {s['kendall_tau_mean']:.3f} ± {s['kendall_tau_std']:.3f}, connected "
            f"{s['kendall_tau_connected_mean']:.3f} ± {s['kendall_tau_connected_std']:.3f}, best at {s['best_rank_percentile_mean']}%"
        )
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
