"""fit_supernet's setting groups: each group alone, every keyword from before the groups mapped onto
its group's field (each one passed here and seen to take effect), and conflicts refused."""

import functools
import math
import warnings

import pytest
import torch

from ops import Flatten, Identity, MaxPooling, conv1d, linear
from search import (
    CostSettings,
    ExecutionSettings,
    LoggingSettings,
    ResilienceSettings,
    SelectionSettings,
    UndecidedError,
    fit_supernet,
)
from search.checkpoint import Checkpointer
from search.confidence import UndecidedWarning
from search.loggers import CSVLogger, Logger
from search.settings import LEGACY_KEYWORDS, resolve_settings
from supernet import ChoiceOp, SupernetExecutor, Tensor, search_space
from supernet.latency import LatencyTable, MeasureSettings

from helpers import threshold_data


def tiny_space():
    x = Tensor("x", (1, 2, 8), ("N", "C", "L"))

    @search_space
    def space(x):
        h = ChoiceOp(functools.partial(conv1d, out_channels=2, kernel_size=3), MaxPooling(3, 1, 1), Identity())(x)
        return linear(Flatten()(h), 3)

    return space(x)


def fit(**settings):
    run = dict(strategy="darts", epochs=1, batch_size=16, seed=0)
    if "logging" not in settings:  # with the group, these would be keywords conflicting with it
        run.update(progress=False, on_undecided="ignore")
    run.update(settings)
    return fit_supernet(tiny_space(), threshold_data(48, length=8, seed=3, window=3), **run)


def test_every_legacy_keyword_maps_onto_its_group_field():
    values = {
        "cost": "params",
        "cost_weight": 0.5,
        "cost_target": 7.0,
        "latency_table": None,
        "checkpoint_dir": "somewhere",
        "resume": True,
        "max_bad_steps": None,
        "perturbation": {"batches": 2},
        "progress": False,
        "record_every": 3,
        "on_undecided": "raise",
        "loggers": (Logger(),),
        "distributed": False,
        "initial_state": {"a": torch.zeros(1)},
        "precision": "bf16-mixed",
        "compile": True,
    }
    assert set(values) == set(LEGACY_KEYWORDS)
    settings = resolve_settings(None, {"selection": "perturbation"}, values)
    for keyword, (group, name) in LEGACY_KEYWORDS.items():
        got = getattr(getattr(settings, group), name)
        expected = values[keyword]
        if keyword == "perturbation":
            assert (got.batches, got.fine_tune_steps) == (2, 0)
        else:
            assert got is expected or got == expected, keyword


# each legacy keyword, passed to fit_supernet, changes what the search does


def test_cost_keywords_take_effect():
    result = fit(cost="params", cost_weight=0.5, cost_target=1e9)
    assert (result.config["cost"], result.config["cost_weight"], result.config["cost_target"]) == ("params", 0.5, 1e9)
    assert "expected_params" in result.metrics[0]
    assert result == fit(budget=CostSettings(kind="params", weight=0.5, target=1e9))


def test_latency_table_keyword_is_the_table_priced(monkeypatch):
    fast = MeasureSettings(rounds=1, block_seconds=1e-5, calibration=0)
    table = LatencyTable.measure(tiny_space(), progress=False, settings=fast)

    def no_measuring(*args, **kwargs):
        raise AssertionError("the given latency table must be used, not a new one measured")

    monkeypatch.setattr(LatencyTable, "measure", no_measuring)
    result = fit(cost="latency", cost_weight=0.1, latency_table=table)
    assert result.metrics[0]["expected_latency"] > 0


def test_resilience_keywords_take_effect(tmp_path):
    first = fit(checkpoint_dir=tmp_path)
    assert Checkpointer(tmp_path).latest() is not None
    assert fit(checkpoint_dir=tmp_path, resume=True) == first
    with pytest.raises(FileExistsError):
        fit(checkpoint_dir=tmp_path)

    def nan_loss(logits, y):
        return torch.nn.functional.cross_entropy(logits, y) * math.nan

    assert math.isnan(fit(loss=nan_loss, max_bad_steps=None).metrics[0]["train_loss"])  # no guard: nothing skipped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the skipped steps
        with pytest.raises(FloatingPointError):
            fit(loss=nan_loss, max_bad_steps=1)


def test_selection_keywords_take_effect():
    result = fit(selection="perturbation", perturbation={"batches": 1})
    assert result.config["selection"] == {
        "mode": "perturbation",
        "batches": 1,
        "fine_tune_steps": 0,
        "batch_statistics": True,
    }
    assert result.perturbation
    assert fit(selection=SelectionSettings(mode="perturbation", perturbation={"batches": 1})) == result
    assert fit().config["selection"] == {"mode": "argmax"}


def test_logging_keywords_take_effect(capsys):
    assert fit(record_every=2, epochs=3).history["steps"] == [0, 2, 3]  # every 2nd step, then the last
    with pytest.raises(UndecidedError):
        fit(on_undecided="raise")
    with pytest.warns(UndecidedWarning):
        fit(on_undecided="warn")
    capsys.readouterr()
    fit(progress=True)
    assert "search" in capsys.readouterr().err
    fit(logging=LoggingSettings(progress=False, on_undecided="ignore"))
    assert capsys.readouterr().err == ""


def test_loggers_keyword_and_field_log_the_same_search(tmp_path):
    fit(loggers=[CSVLogger(tmp_path / "keyword", images=False)], epochs=2)
    group = LoggingSettings(
        progress=False, on_undecided="ignore", loggers=[CSVLogger(tmp_path / "group", images=False)]
    )
    fit(logging=group, epochs=2)
    keyword, grouped = ((tmp_path / name / "metrics.csv").read_text() for name in ("keyword", "group"))
    assert keyword == grouped and keyword.count("\n") == 1 + 2  # header, a row per step (one step per epoch)
    assert group.loggers == tuple(group.loggers) and isinstance(group.loggers, tuple)
    with pytest.raises(
        ValueError, match=r"loggers=\(CSVLogger\('.*other'\),\) conflicts with logging=LoggingSettings\(loggers="
    ):
        fit(logging=group, loggers=[CSVLogger(tmp_path / "other")])
    same = resolve_settings(None, {"logging": group}, {"loggers": list(group.loggers)})  # the same loggers
    assert same.logging is group
    with pytest.raises(TypeError, match="loggers must be a list of loggers"):
        LoggingSettings(loggers=CSVLogger(tmp_path / "one"))


def test_execution_keywords_take_effect(monkeypatch):
    for variable in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises((RuntimeError, ValueError)):
        fit(distributed=True)  # not launched by torchrun
    assert fit(distributed=False) == fit()
    state = SupernetExecutor(tiny_space(), seed=0).state_dict()
    alpha = next(k for k in state if k.startswith("arch."))
    state[alpha] = torch.tensor([0.0, 0.0, 9.0])
    started = fit(initial_state=state)
    assert list(started.architecture.values()) == [2] and started.probabilities[alpha[len("arch.") :]][2] > 0.99
    assert fit(execution=ExecutionSettings(initial_state=state)) == started


def test_a_keyword_and_its_group_must_agree():
    with pytest.raises(ValueError, match=r"cost_weight=0.1 conflicts with budget=CostSettings\(weight=0.2\)"):
        fit(budget=CostSettings(kind="flops", weight=0.2), cost_weight=0.1)
    with pytest.raises(ValueError, match=r"progress=True conflicts with logging=LoggingSettings\(progress=False\)"):
        fit(logging=LoggingSettings(progress=False, on_undecided="ignore"), progress=True)
    with pytest.raises(ValueError, match=r"resume=True conflicts with resilience=ResilienceSettings\(resume=False\)"):
        fit(resilience=ResilienceSettings(checkpoint_dir="x"), resume=True)
    # the same value twice is no conflict
    assert fit(budget=CostSettings(kind="params", weight=0.2), cost_weight=0.2).config["cost_weight"] == 0.2


def test_unknown_keywords_and_bad_groups_are_named():
    with pytest.raises(TypeError, match="unexpected keyword argument 'cost_wieght'"):
        fit(cost_wieght=0.1)
    with pytest.raises(TypeError, match="budget must be a CostSettings or None, got dict"):
        fit(budget={"kind": "flops"})
    with pytest.raises(ValueError, match="cost_weight, cost_target and latency_table need cost="):
        CostSettings(weight=0.1)
    with pytest.raises(ValueError, match="record_every must be a positive int"):
        LoggingSettings(record_every=0)
    with pytest.raises(ValueError, match="selection must be one of"):
        SelectionSettings(mode="best")
