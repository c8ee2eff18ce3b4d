"""Does bf16-mixed pick what fp32 picks? The default strategy on the oracle benchmark, both precisions,
beside a control that changes only float32's rounding.

    python benchmarks/precision_quality.py                       # seeds 0-4, 15 epochs, all three runs
    python benchmarks/precision_quality.py --runs control        # add the control to the saved rows
    python benchmarks/precision_quality.py --seed-list 5,6,7,8,9 # more seeds beside the saved ones

For each seed, `fit_supernet(oracle_space(), train, val, epochs=15, seed=s, precision=p)` (the
default strategy, defaults otherwise: oracle_strategies.py's search) at "32" and "bf16-mixed", and
the control: "32" again on 2 threads instead of 1 (the same arithmetic, summed in another order by
the kernels: the probabilities differ by about 1e-8 after one epoch). Every pick is ranked in the
oracle table (oracle_table.py: % of the 125 architectures above the pick by mean test accuracy). A
seed agrees when a run picks the same architecture as fp32 on 1 thread, or one of equal rank. The
control says how often rounding alone changes the pick: bf16 cannot be asked to agree more often
than float32 agrees with itself. Rows merge into benchmarks/results/precision_quality.json (keyed by
seed and run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_space import oracle_data, oracle_space  # noqa: E402
from oracle_strategies import SEARCH_EPOCHS, ranked  # noqa: E402
from oracle_table import TABLE_PATH, load_table  # noqa: E402

from search import fit_supernet  # noqa: E402
from search.strategies import DEFAULT_STRATEGY  # noqa: E402

#: run name -> (precision, torch threads)
RUNS = {"32": ("32", 1), "bf16-mixed": ("bf16-mixed", 1), "control": ("32", 2)}
RESULTS = Path(__file__).resolve().parent / "results" / "precision_quality.json"


def search(seed: int, epochs: int, run: str, data: tuple, table: dict) -> dict:
    """One search of the oracle space by the default strategy as `run` says; its ranked pick."""
    precision, threads = RUNS[run]
    train, val, _ = data
    torch.set_num_threads(threads)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undecided warnings: the ranks say what they are worth
        result = fit_supernet(oracle_space(), train, val, epochs=epochs, seed=seed, precision=precision, progress=False)
    row = {
        "seed": seed,
        "run": run,
        "precision": precision,
        "threads": threads,
        "architecture": {sid: int(v) for sid, v in sorted(result.architecture.items())},
        "top_probability": {sid: round(max(p), 4) for sid, p in sorted(result.probabilities.items())},
        "decided": {sid: bool(entry["decided"]) for sid, entry in sorted(result.confidence.items())},
        "search_time_s": round(time.perf_counter() - start, 1),
    }
    return ranked(row, table)


def summary(rows: list[dict], seeds: list[int]) -> dict:
    """Per run: seeds agreeing with fp32 on 1 thread (same pick or equal rank) and the mean rank."""
    by = {(r["seed"], r.get("run", r["precision"])): r for r in rows}
    out: dict = {"seeds": len(seeds)}
    for run in RUNS:
        mine = [by[(s, run)] for s in seeds if (s, run) in by]
        if not mine:
            continue
        entry = {"mean_rank": round(statistics.mean(r["rank_percentile"] for r in mine), 2), "seeds_run": len(mine)}
        if run != "32":
            agree = [
                (s, run) in by
                and (s, "32") in by
                and (
                    by[(s, run)]["architecture"] == by[(s, "32")]["architecture"]
                    or by[(s, run)]["rank_percentile"] == by[(s, "32")]["rank_percentile"]
                )
                for s in seeds
            ]
            entry["agreeing_seeds"] = sum(agree)
        out[run] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="search seeds 0 .. n-1")
    parser.add_argument("--seed-list", default=None, help="comma-separated search seeds (overrides --seeds)")
    parser.add_argument("--epochs", type=int, default=SEARCH_EPOCHS)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {list(RUNS)}")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = [r for r in args.runs.split(",") if r]
    unknown = [r for r in runs if r not in RUNS]
    if unknown:
        raise SystemExit(f"unknown runs {unknown}; runs: {list(RUNS)}")
    table = load_table(TABLE_PATH)
    data = oracle_data(0)
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    setup = {
        "search": f"fit_supernet(oracle_space(), train, val, epochs={args.epochs}, seed=s, precision=p), "
        f"strategy {DEFAULT_STRATEGY!r}",
        "runs": {name: {"precision": p, "threads": t} for name, (p, t) in RUNS.items()},
        "torch": torch.__version__,
    }
    print("setup:", json.dumps(setup), flush=True)
    previous = json.loads(args.out.read_text())["runs"] if args.out.is_file() else []
    for row in previous:  # rows written before the control existed name their run by precision
        row.setdefault("run", row["precision"])
        row.setdefault("threads", 1)
        row.pop("agrees", None)
    rows = [r for r in previous if not (r["seed"] in seeds and r["run"] in runs)]
    for seed in seeds:
        for run in runs:
            row = search(seed, args.epochs, run, data, table)
            rows.append(row)
            print(
                f"seed {seed} {run:10s} {row['search_time_s']:6.1f}s rank {row['rank_percentile']:5.1f}% {row['label']}"
            )
            rows.sort(key=lambda r: (r["seed"], list(RUNS).index(r["run"])))
            out = {"setup": setup, "summary": summary(rows, _seeds(rows)), "runs": rows}
            args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary(rows, _seeds(rows))), flush=True)


def _seeds(rows: list[dict]) -> list[int]:
    """Every seed with a fp32 (1 thread) row: the summary covers the whole file, not just this call's seeds."""
    return sorted({r["seed"] for r in rows if r["run"] == "32"})


if __name__ == "__main__":
    main()
