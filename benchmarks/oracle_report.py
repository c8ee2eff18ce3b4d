"""Both oracle benchmarks' strategy tables side by side, as the Markdown table the README quotes.

    python benchmarks/oracle_report.py [--one results/oracle_strategies.json] [--two results/oracle2d_strategies.json]

Per strategy, from the strategies passes' JSON (`oracle.py strategies`, `oracle2d.py strategies`; argmax
selection rows only): mean and worst rank percentile and the top-10% count on the 1-D (MNIST-1D) and the
2-D (Fashion-MNIST) benchmark, the decided share of its choices and its mean search time on each.
Random search (same wall time as the default strategy's search of the seed) is the last row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle_strategies import DEFAULT_STRATEGY, summary  # noqa: E402
from oracle_table import RESULTS  # noqa: E402


def load_summary(path: Path) -> dict[str, dict[str, Any]]:
    """Summary of the argmax-selection rows of one strategies JSON (strategy -> stats)."""
    rows = [r for r in json.loads(path.read_text())["runs"] if r.get("selection", "argmax") == "argmax"]
    return summary(rows)


def cell(stats: dict[str, Any] | None) -> str:
    """`mean / worst (top-10 count)` of one benchmark, or '-' when the strategy was not run on it."""
    if stats is None:
        return "-"
    return (
        f"{stats['mean_rank_percentile']:.1f}% / {stats['worst_rank_percentile']:.1f}% "
        f"({stats['top10']}/{stats['seeds']})"
    )


def share(stats: dict[str, Any] | None) -> str:
    return "-" if stats is None or "decided_share" not in stats else f"{100 * stats['decided_share']:.0f}%"


def table(one: dict[str, dict[str, Any]], two: dict[str, dict[str, Any]]) -> str:
    """The Markdown table: strategies by their worse mean rank over the two benchmarks, random search last."""
    names = [n for n in dict.fromkeys([*one, *two]) if n != "random"]
    names.sort(key=lambda n: max(s[n]["mean_rank_percentile"] if n in s else 100.0 for s in (one, two)))
    lines = [
        "| strategy | 1-D: mean / worst rank (top 10%) | 2-D: mean / worst rank (top 10%) | decided 1-D / 2-D "
        "| search time 1-D / 2-D |",
        "|---|---|---|---|---|",
    ]
    for name in [*names, "random"]:
        a, b = one.get(name), two.get(name)
        label = f"{name} (default)" if name == DEFAULT_STRATEGY else name
        if name == "random":
            label = f"random search, same wall time as {DEFAULT_STRATEGY}"
        times = " / ".join("-" if s is None else f"{s['search_time_s']:.0f} s" for s in (a, b))
        lines.append(f"| {label} | {cell(a)} | {cell(b)} | {share(a)} / {share(b)} | {times} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", type=Path, default=RESULTS / "oracle_strategies.json")
    parser.add_argument("--two", type=Path, default=RESULTS / "oracle2d_strategies.json")
    args = parser.parse_args()
    print(table(load_summary(args.one), load_summary(args.two)))


if __name__ == "__main__":
    main()
