"""Does bf16-mixed pick what fp32 picks? The default strategy on the oracle benchmark, both precisions.

    python benchmarks/precision_quality.py             # seeds 0-4, 15 epochs (about 6 minutes, 1 thread)

For each seed, `fit_supernet(oracle_space(), train, val, epochs=15, seed=s, precision=p)` (the
default strategy, defaults otherwise: oracle_strategies.py's search) at "32" and "bf16-mixed"; both
picks ranked in the oracle table (oracle_table.py: % of the 125 architectures above the pick by
mean test accuracy). A seed agrees when bf16 picks the same architecture as fp32, or one of equal
rank. Results: benchmarks/results/precision_quality.json.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=SEARCH_EPOCHS)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "precision_quality.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    table = load_table(TABLE_PATH)
    train, val, _ = oracle_data(0)
    setup = {
        "search": f"fit_supernet(oracle_space(), train, val, epochs={args.epochs}, seed=s, precision=p), "
        f"strategy {DEFAULT_STRATEGY!r}",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print("setup:", json.dumps(setup), flush=True)
    rows = []
    for seed in range(args.seeds):
        picks = {}
        for precision in ("32", "bf16-mixed"):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # undecided warnings: the ranks say what they are worth
                result = fit_supernet(
                    oracle_space(), train, val, epochs=args.epochs, seed=seed, precision=precision, progress=False
                )
            row = ranked(
                {
                    "seed": seed,
                    "precision": precision,
                    "architecture": {sid: int(v) for sid, v in sorted(result.architecture.items())},
                    "search_time_s": round(time.perf_counter() - start, 1),
                },
                table,
            )
            picks[precision] = row
            rows.append(row)
            print(
                f"seed {seed} {precision:10s} {row['search_time_s']:6.1f}s rank {row['rank_percentile']:5.1f}% "
                f"{row['label']}",
                flush=True,
            )
        full, low = picks["32"], picks["bf16-mixed"]
        low["agrees"] = full["architecture"] == low["architecture"] or full["rank_percentile"] == low["rank_percentile"]
    agree = sum(r.get("agrees", False) for r in rows)
    summary = {
        "seeds": args.seeds,
        "agreeing_seeds": agree,
        "mean_rank_fp32": round(sum(r["rank_percentile"] for r in rows if r["precision"] == "32") / args.seeds, 2),
        "mean_rank_bf16": round(
            sum(r["rank_percentile"] for r in rows if r["precision"] == "bf16-mixed") / args.seeds, 2
        ),
    }
    print(json.dumps(summary), flush=True)
    Path(args.out).write_text(json.dumps({"setup": setup, "summary": summary, "runs": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
