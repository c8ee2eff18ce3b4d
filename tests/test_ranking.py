"""benchmarks/ranking.py: inherited-weight scores correlated with the oracle table, and its results file."""

import json
from pathlib import Path

import oracle
import pytest
import ranking

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_correlate_follows_the_table():
    table = oracle.load_table()
    truth = {entry["key"]: entry["mean"] for entry in table["architectures"]}
    same = ranking.correlate(oracle, table, {"scores": dict(truth)})
    assert same["all"]["kendall_tau"] == pytest.approx(1.0) and same["supernet_best_rank_percentile"] == 0.0
    assert same["top10_overlap"] == 10 and same["architectures"] == len(oracle.all_architectures())
    reversed_ = ranking.correlate(oracle, table, {"scores": {k: -v for k, v in truth.items()}})
    assert (
        reversed_["all"]["kendall_tau"] == pytest.approx(-1.0) and reversed_["supernet_best_rank_percentile"] > 90
    )  # dead networks tie at the bottom
    assert same["connected_architectures"] == sum(v > ranking.CHANCE for v in truth.values())


def test_saved_results_cover_every_architecture_and_match_their_scores():
    report = json.loads((BENCHMARKS / "results" / "ranking.json").read_text())
    table = oracle.load_table()
    assert report["complete"] and {r["strategy"] for r in report["runs"]} == {"spos", "fairnas", "darts"}
    for run in report["runs"]:
        assert len(run["scores"]) == len(oracle.all_architectures())
        assert ranking.correlate(oracle, table, run) == run["correlation"]
