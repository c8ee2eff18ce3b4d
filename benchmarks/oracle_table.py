"""The oracle table: every architecture of the oracle space trained from scratch, per seed, and
the rank of an architecture in it.

Table JSON (`benchmarks/results/oracle_table.json`): `setup` (the recipe), `architectures`: one
entry per architecture with `key` (option indices in switch-id order, e.g. "3-0-4"),
`architecture` (switch id -> option index), `label`, `runs` (per seed: test and val accuracy,
seconds) and `mean` / `std` of the test accuracy over the seeds; `stats` summarises the table.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any, Mapping, Union

from oracle_space import architecture_key

RESULTS = Path(__file__).resolve().parent / "results"
TABLE_PATH = RESULTS / "oracle_table.json"


def load_table(path: Union[str, Path] = TABLE_PATH) -> dict[str, Any]:
    """The table JSON at `path` (as written by `python benchmarks/oracle.py table`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"oracle table {path} not found; write it with `python benchmarks/oracle.py table`")
    table = json.loads(path.read_text())
    if "architectures" not in table:
        raise ValueError(f"{path} is not an oracle table (no 'architectures' list)")
    return table


def save_table(table: Mapping[str, Any], path: Union[str, Path]) -> None:
    """Write atomically, so that an interrupted run leaves the previous (partial) table readable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table, indent=1))
    tmp.replace(path)


def summarise(entry: dict[str, Any]) -> None:
    """Set the entry's `mean` / `std` (sample std; 0 for one seed) of the test accuracy over its runs."""
    accuracies = [run["test_accuracy"] for run in entry["runs"]]
    entry["mean"] = statistics.mean(accuracies)
    entry["std"] = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0


def rank_percentile(architecture: Mapping[str, Any], table: Mapping[str, Any]) -> float:
    """Percent of the table's architectures ranked above `architecture` by mean test accuracy:
    0 = the best, 100 = the worst. Ties take the mid-rank of their group: with `better`
    architectures strictly above and `tied` (itself included) of equal mean accuracy, the
    percentile is 100 * (better + (tied - 1) / 2) / (N - 1). So a tie for the top of k
    architectures is 50 * (k - 1) / (N - 1), and picking one of several equally dead networks
    ranks near the bottom, not at its top."""
    entries = table["architectures"]
    means = {entry["key"]: round(float(entry["mean"]), 9) for entry in entries}
    key = architecture_key(architecture)
    if key not in means:
        raise KeyError(
            f"architecture {dict(architecture)} (key {key}) is not in the oracle table of {len(means)} architectures"
        )
    if len(means) == 1:
        return 0.0
    mine = means[key]
    better = sum(mean > mine for mean in means.values())
    tied = sum(mean == mine for mean in means.values())
    return 100.0 * (better + (tied - 1) / 2) / (len(means) - 1)


def table_stats(table: Mapping[str, Any]) -> dict[str, Any]:
    """Best / median / worst mean test accuracy, and the spread across seeds (mean and max std)."""
    entries = table["architectures"]
    means = sorted(entry["mean"] for entry in entries)
    stds = [entry["std"] for entry in entries]
    best = max(entries, key=lambda entry: entry["mean"])
    return {
        "architectures": len(entries),
        "best": means[-1],
        "best_label": best["label"],
        "median": statistics.median(means),
        "worst": means[0],
        "top5_threshold": means[-max(1, round(0.05 * len(means)))],
        "std_mean": statistics.mean(stds),
        "std_max": max(stds),
    }
