"""Confidence of a search: per-choice statistics in the history and on the result, the
undecided warning (on_undecided), and the summary table."""

import math

import pytest

from search import SearchResult, UndecidedError, UndecidedWarning, fit_supernet
from search.confidence import MIN_MARGIN, ConfidenceTrack, is_decided, result_confidence, step_statistics

from helpers import threshold_data, resume_space


def test_step_statistics_of_a_distribution():
    stats = step_statistics([0.1, 0.6, 0.3])
    assert stats["winner"] == 1
    assert stats["probability"] == pytest.approx(0.6) and stats["margin"] == pytest.approx(0.3)
    expected = -(0.1 * math.log(0.1) + 0.6 * math.log(0.6) + 0.3 * math.log(0.3)) / math.log(3)
    assert stats["entropy"] == pytest.approx(expected)
    assert step_statistics([0.25] * 4)["entropy"] == pytest.approx(1.0)
    # independent sigmoid gates (FairDARTS) are normalised first
    assert step_statistics([0.9, 0.9, 0.2])["probability"] == pytest.approx(0.9 / 2.0)


def test_stable_since_is_the_step_the_current_winner_took_the_lead():
    track = ConfidenceTrack(["s"])
    for step, p in [(0, [0.5, 0.5]), (1, [0.4, 0.6]), (2, [0.6, 0.4]), (3, [0.7, 0.3]), (4, [0.8, 0.2])]:
        track.record(step, {"s": p})
    series = track.as_dict()["s"]
    assert series["winner"] == [0, 1, 0, 0, 0]
    assert series["stable_since"] == [0, 1, 2, 2, 2]
    assert series["margin"] == pytest.approx([0.0, 0.2, 0.2, 0.4, 0.6])


def test_decided_needs_margin_and_stability():
    history = {"steps": [0, 100], "confidence": {"s": {"winner": [0, 0], "stable_since": [0, 0]}}}
    confident = result_confidence({"s": 0}, {"s": [0.7, 0.2, 0.1]}, {"s": [0, 1, 2]}, {"s": ["a", "b", "c"]}, history)[
        "s"
    ]
    assert confident == {
        "option": "a",
        "probability": pytest.approx(0.7),
        "margin": pytest.approx(0.5),
        "entropy": pytest.approx(step_statistics([0.7, 0.2, 0.1])["entropy"]),
        "stable_since": 0,
        "decided": True,
    }
    close = result_confidence({"s": 0}, {"s": [0.45, 0.4, 0.15]}, {"s": [0, 1, 2]}, {}, history)["s"]
    assert close["margin"] < MIN_MARGIN and not close["decided"]
    assert not is_decided({"margin": 0.5, "stable_since": 90}, 0, 100)  # the lead changed in the last quarter
    assert is_decided({"margin": 0.5, "stable_since": 75}, 0, 100)
    # a selection that is not the most probable option (a threshold rule, a connectivity repair)
    other = result_confidence({"s": 1}, {"s": [0.7, 0.2, 0.1]}, {"s": [0, 1, 2]}, {}, history)["s"]
    assert other["margin"] == pytest.approx(-0.5) and other["stable_since"] is None and not other["decided"]


def search(**overrides):
    # DARTS: no decision phase, so the final distribution is the evidence (see test_decision_phase)
    settings = dict(epochs=2, batch_size=16, seed=3, progress=False, optim={"arch_lr": 1e-5}, strategy="darts")
    settings.update(overrides)
    return fit_supernet(resume_space(), threshold_data(), **settings)


def test_history_and_result_carry_the_confidence_and_warn_when_undecided():
    with pytest.warns(UndecidedWarning) as caught:
        result = search()
    switches = list(result.probabilities)
    message = str(caught[0].message)
    assert all(sid in message for sid in switches)  # an arch lr of 1e-5 leaves every choice at uniform
    assert "more epochs" in message and "arch_lr" in message and "sampling strategy" in message
    steps = result.history["steps"]
    for sid in switches:
        series = result.history["confidence"][sid]
        assert len(series["probability"]) == len(steps)
        assert series["probability"][-1] == pytest.approx(max(result.history["probabilities"][sid][-1]))
        entry = result.confidence[sid]
        assert entry["probability"] == pytest.approx(max(result.probabilities[sid]))
        assert not entry["decided"] and entry["margin"] < MIN_MARGIN
    table = result.summary()
    assert "UNDECIDED" in table and "0 of 2 choices decided" in table
    assert result.chosen_options[switches[0]] in table


def test_on_undecided_raise_and_ignore(recwarn):
    with pytest.raises(UndecidedError, match="undecided") as raised:
        search(on_undecided="raise")
    assert isinstance(raised.value.result, SearchResult)
    search(on_undecided="ignore")
    assert not [w for w in recwarn if issubclass(w.category, UndecidedWarning)]
    with pytest.raises(ValueError, match="on_undecided"):
        search(on_undecided="maybe")


def test_a_decided_search_does_not_warn(recwarn, tmp_path):
    result = search(epochs=4, optim={"arch_lr": 0.3})
    assert not [w for w in recwarn if issubclass(w.category, UndecidedWarning)]
    assert all(e["decided"] for e in result.confidence.values())
    assert "UNDECIDED" not in result.summary()
    loaded = SearchResult.load(result.save(tmp_path / "r"), space=result.space)
    assert loaded.confidence == result.confidence and loaded == result
