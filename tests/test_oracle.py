"""The oracle benchmark's API: enumeration of its space, ranks in a table, deterministic training."""

import itertools

import pytest
import torch


from oracle import (
    TABLE_SEEDS,
    all_architectures,
    architecture_key,
    load_table,
    oracle_data,
    oracle_space,
    rank_percentile,
    train_architecture,
)
from oracle_table import TABLE_PATH, table_stats
from search.spaces import NB201_OPS
from supernet import BasicExecutor, ChoiceOp, discretize, get_nodes


def _table(means):
    return {
        "architectures": [
            {"key": architecture_key({"a": i}), "architecture": {"a": i}, "label": str(i), "mean": m, "std": 0.0}
            for i, m in enumerate(means)
        ]
    }


def test_rank_percentile_best_worst_and_ties():
    table = _table([0.5, 0.9, 0.8, 0.8, 0.1])
    assert rank_percentile({"a": 1}, table) == 0.0
    assert rank_percentile({"a": 4}, table) == 100.0
    assert rank_percentile({"a": 2}, table) == rank_percentile({"a": 3}, table) == pytest.approx(100 * 1.5 / 4)
    assert rank_percentile({"a": 0}, table) == 75.0
    # a tie for the top is not ranked as the best, a tie at the bottom not as the worst
    assert rank_percentile({"a": 0}, _table([0.9, 0.9, 0.1])) == 25.0
    assert rank_percentile({"a": 1}, _table([0.9, 0.1, 0.1])) == 75.0


def test_rank_percentile_rejects_unknown_architecture():
    with pytest.raises(KeyError, match="not in the oracle table"):
        rank_percentile({"a": 7}, _table([0.5, 0.9]))


def test_all_architectures_enumerates_the_space_exactly():
    space = oracle_space()
    choices = [n for n in get_nodes(space) if isinstance(n, ChoiceOp)]
    switches = {n.switch.id for n in choices}
    assert len(choices) == 6 and len(switches) == 3  # two cells tied to one genotype
    assert all(n.option_names() == list(NB201_OPS) for n in choices)
    architectures = all_architectures()
    assert len(architectures) == len(NB201_OPS) ** 3 == 125
    assert {tuple(sorted(a.items())) for a in architectures} == {
        tuple(zip(sorted(switches), combo)) for combo in itertools.product(range(len(NB201_OPS)), repeat=3)
    }
    fixed = discretize(oracle_space(), architectures[-1])
    assert not any(isinstance(n, ChoiceOp) for n in get_nodes(fixed))
    assert BasicExecutor(fixed, seed=0)(torch.zeros(2, 1, 40)).shape == (2, 10)


def test_oracle_data_sizes_and_split_by_seed():
    (x, y), (xv, yv), (xt, yt) = oracle_data(0)
    assert x.shape == (3000, 1, 40) and xv.shape == (1000, 1, 40) and xt.shape == (1000, 1, 40)
    assert y.dtype == torch.int64 and int(y.max()) == 9
    assert torch.equal(oracle_data(0)[1][0], xv) and not torch.equal(oracle_data(1)[1][0], xv)


def test_train_architecture_is_deterministic_per_seed():
    (x, y), (xv, yv), (xt, yt) = oracle_data(0)
    tiny = ((x[:128], y[:128]), (xv[:64], yv[:64]), (xt[:64], yt[:64]))
    architecture = dict(all_architectures()[-1])  # avg-pool on every edge: cheap
    first = train_architecture(architecture, seed=3, epochs=1, data=tiny)
    again = train_architecture(architecture, seed=3, epochs=1, data=tiny)
    other = train_architecture(architecture, seed=4, epochs=1, data=tiny)
    keys = ("test_accuracy", "val_accuracy", "final_train_loss")
    assert [first[k] for k in keys] == [again[k] for k in keys]
    assert first["final_train_loss"] != other["final_train_loss"]


def test_train_architecture_names_the_bad_switch():
    architecture = dict(all_architectures()[0])
    sid = sorted(architecture)[0]
    with pytest.raises(ValueError, match="is not one of the options"):
        train_architecture({**architecture, sid: 5}, seed=0)
    with pytest.raises(ValueError, match="missing"):
        train_architecture({k: v for k, v in architecture.items() if k != sid}, seed=0)


def test_load_table_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="oracle.py table"):
        load_table(tmp_path / "absent.json")


@pytest.mark.skipif(not TABLE_PATH.is_file(), reason="the oracle table is not written yet")
def test_committed_table_covers_every_architecture_and_seed():
    table = load_table()
    assert sorted(e["key"] for e in table["architectures"]) == sorted(architecture_key(a) for a in all_architectures())
    assert [e["architecture"] for e in table["architectures"]] == all_architectures()  # the space's switch ids
    assert all([r["seed"] for r in e["runs"]] == list(TABLE_SEEDS) for e in table["architectures"])
    stats = table_stats(table)
    assert stats["median"] < stats["best"] - 0.05  # the architecture matters


def _tiny_data():
    (x, y), (xv, yv), (xt, yt) = oracle_data(0)
    return (x[:128], y[:128]), (xv[:64], yv[:64]), (xt[:64], yt[:64])


def test_search_pick_returns_an_architecture_of_the_space():
    from oracle_strategies import search_pick

    pick = search_pick("proxyless", seed=0, epochs=1, data=_tiny_data())
    assert pick["architecture"] in all_architectures()
    assert pick["epochs_run"] == 1 and pick["search_time_s"] > 0


@pytest.mark.skipif(not TABLE_PATH.is_file(), reason="the oracle table is not written yet")
def test_strategies_pass_ranks_picks_and_merges_reruns(tmp_path, monkeypatch, capsys):
    import argparse

    import oracle_strategies

    kept, dead = all_architectures()[-1], all_architectures()[0]  # avg-pool everywhere; none everywhere
    picks = {"darts": kept, "gdas": dead}
    monkeypatch.setattr(
        oracle_strategies,
        "search_pick",
        lambda name, seed, epochs, data, selection, fine_tune_steps, space: {
            "architecture": picks[name],
            "search_time_s": 1.0 + seed,
            "selection": selection,
        },
    )
    out = tmp_path / "strategies.json"
    args = argparse.Namespace(
        strategies="darts,gdas",
        seeds=2,
        seed_list=None,
        epochs=1,
        no_random=True,
        random_budget_s=None,
        table=TABLE_PATH,
        out=out,
        selection="argmax",
        fine_tune_steps=0,
    )
    oracle_strategies.run_strategies(args)
    table = load_table()
    picks["gdas"] = kept
    rerun = oracle_strategies.run_strategies(
        argparse.Namespace(**{**vars(args), "strategies": "gdas", "seed_list": "1"})
    )
    rows = {(r["strategy"], r["seed"]): r for r in rerun["runs"]}
    assert sorted(rows) == [("darts", 0), ("darts", 1), ("gdas", 0), ("gdas", 1)]  # the rerun replaced one row
    assert rows[("gdas", 0)]["rank_percentile"] == round(rank_percentile(dead, table), 2)
    assert (
        rows[("gdas", 1)]["rank_percentile"]
        == rows[("darts", 0)]["rank_percentile"]
        == round(rank_percentile(kept, table), 2)
    )
    assert rerun["summary"]["gdas"]["worst_rank_percentile"] == round(rank_percentile(dead, table), 2)
    assert rerun["summary"]["darts"]["search_time_s"] == 1.5
    assert "mean rank %" in capsys.readouterr().out
    # rows of another selection sit beside the argmax ones, summarised apart
    other = oracle_strategies.run_strategies(
        argparse.Namespace(**{**vars(args), "strategies": "darts", "seed_list": "0", "selection": "perturbation"})
    )
    keys = sorted((r["strategy"], r["seed"], r["selection"]) for r in other["runs"])
    assert keys == [
        ("darts", 0, "argmax"),
        ("darts", 0, "perturbation"),
        ("darts", 1, "argmax"),
        ("gdas", 0, "argmax"),
        ("gdas", 1, "argmax"),
    ]
    assert other["summary"]["darts+perturbation"]["seeds"] == 1 and other["summary"]["darts"]["seeds"] == 2


def test_report_puts_both_benchmarks_side_by_side_with_random_search_last():
    from oracle_report import table

    def stats(mean, worst, top10, seeds=5, decided=None):
        row = {
            "mean_rank_percentile": mean,
            "worst_rank_percentile": worst,
            "top10": top10,
            "seeds": seeds,
            "search_time_s": 12.0,
        }
        return row if decided is None else {**row, "decided_share": decided}

    one = {"gdas": stats(0.0, 0.0, 5, decided=0.8), "darts": stats(2.0, 2.0, 5), "random": stats(4.5, 13.7, 4)}
    two = {"darts": stats(8.6, 40.3, 4), "random": stats(3.0, 11.7, 4)}
    lines = table(one, two).splitlines()
    # sorted by the worse of the two means; a benchmark a strategy did not run counts as 100%
    assert lines[2].startswith("| darts | 2.0% / 2.0% (5/5) | 8.6% / 40.3% (4/5) | - / - | 12 s / 12 s |")
    assert lines[3].startswith("| gdas | 0.0% / 0.0% (5/5) | - | 80% / - |")
    assert lines[-1].startswith("| random search, same wall time as drnas | 4.5% / 13.7% (4/5) | 3.0% / 11.7% (4/5)")
