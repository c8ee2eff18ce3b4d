"""The selection pipeline (search.selection), step by step: rule -> perturbation -> connected ->
within budget -> confidence, and the whole of it."""

import functools
import warnings

import pytest
import torch

from ops import Flatten, Identity, Zero, conv1d, linear
from search.confidence import UndecidedError, UndecidedWarning
from search.cost_penalty import CostPenalty
from search.selection import (
    Selection,
    confidence,
    connected,
    perturbation_pick,
    report_undecided,
    rule_pick,
    select_architecture,
    within_budget,
)
from search.settings import SelectionSettings
from search.strategies import DARTS, SPOS, FairDARTS
from supernet import ChoiceOp, SupernetExecutor, Tensor, search_space


def space():
    """One edge: a wide conv, the identity or Zero (the only path: Zero is a dead network)."""
    x = Tensor("x", (1, 4, 8), ("N", "C", "L"))

    @search_space
    def build(x):
        h = ChoiceOp(functools.partial(conv1d, out_channels=4, kernel_size=5), Identity(), Zero())(x)
        return linear(Flatten()(h), 3)

    return build(x)


def supernet_with(logits):
    supernet = SupernetExecutor(space(), seed=0)
    supernet.set_alphas({sid: torch.tensor(logits) for sid in supernet.alphas})
    return supernet, next(iter(supernet.alphas))


def test_rule_pick_is_the_strategy_rule():
    supernet, sid = supernet_with([0.0, 1.0, 0.5])
    assert rule_pick(DARTS(), supernet) == {sid: 1} == supernet.architecture()
    assert rule_pick(FairDARTS(), supernet) == FairDARTS().select(supernet)


def test_perturbation_pick_hands_on_what_the_perturbation_measured():
    picked, measured = perturbation_pick(lambda: ({"s": 2}, {"s": {"drops": [0.1]}}))
    assert picked == {"s": 2} and measured == {"s": {"drops": [0.1]}}


def test_connected_repairs_a_dead_pick_with_a_warning_or_quietly():
    supernet, sid = supernet_with([0.0, 1.0, 2.0])  # Zero most probable: dead
    with pytest.warns(RuntimeWarning, match=r"the darts selection leaves the network without a path.*Zero -> Identity"):
        assert connected(supernet, {sid: 2}, "darts") == {sid: 1}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert connected(supernet, {sid: 2}, "darts", warn=False) == {sid: 1}
        assert connected(supernet, {sid: 0}, "darts") == {sid: 0}  # alive: unchanged


def test_within_budget_brings_the_pick_within_the_target():
    supernet, sid = supernet_with([2.0, 0.0, 0.0])
    assert within_budget(None, {sid: 0}) == {sid: 0}
    penalty = CostPenalty(supernet, "params", weight=1.0, target=1e9)
    assert within_budget(penalty, {sid: 0}) == {sid: 0}  # within the target already
    tight = CostPenalty(supernet, "params", weight=1.0, target=penalty.architecture_cost({sid: 1}))
    assert within_budget(tight, {sid: 0}) == {sid: 1}  # the conv's weights exceed it; Zero would be dead


def test_confidence_describes_the_architecture_handed_out():
    supernet, sid = supernet_with([0.0, 3.0, 0.0])
    history = {"steps": [0, 10], "confidence": {}}
    entry = confidence(supernet, {sid: 1}, history)[sid]
    assert entry["option"] == supernet.option_names()[sid][1] and entry["probability"] > 0.8 and entry["margin"] > 0.7
    assert confidence(supernet, {sid: 0}, history)[sid]["margin"] < 0  # not the most probable option
    assert confidence(supernet, {}, history) == {}


def test_select_architecture_runs_the_steps_in_order_and_is_complete():
    supernet, sid = supernet_with([0.0, 1.0, 2.0])
    history = {"steps": [0, 10], "confidence": {}}
    with pytest.warns(RuntimeWarning, match="dead network"):
        chosen = select_architecture(supernet, DARTS(), SelectionSettings(), history=history)
    assert isinstance(chosen, Selection) and chosen.architecture == {sid: 1}  # argmax Zero, repaired
    assert chosen.confidence[sid]["option"] == supernet.option_names()[sid][1] and chosen.record == {"mode": "argmax"}
    perturbed = select_architecture(
        supernet,
        DARTS(),
        SelectionSettings(mode="perturbation"),
        history=history,
        perturb=lambda: ({sid: 0}, {sid: {"drop": 0.5}}),
    )
    assert perturbed.architecture == {sid: 0} and perturbed.perturbation == {sid: {"drop": 0.5}}
    assert perturbed.record["mode"] == "perturbation"
    with pytest.raises(ValueError, match="needs perturb="):
        select_architecture(supernet, DARTS(), SelectionSettings(mode="perturbation"), history=history)
    assert select_architecture(supernet, SPOS(), SelectionSettings(), history=history).architecture == {}


class Result:
    def __init__(self, margin):
        self.confidence = {
            "s": {"decided": margin > 0.1, "option": "conv", "probability": 0.5, "margin": margin, "stable_since": 0}
        }


def test_report_undecided_warns_raises_or_ignores():
    with pytest.warns(UndecidedWarning, match="1 of 1 choices are undecided"):
        report_undecided(Result(0.0), "warn", "darts", 10)
    with pytest.raises(UndecidedError) as raised:
        report_undecided(Result(0.0), "raise", "darts", 10)
    assert raised.value.result.confidence["s"]["margin"] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report_undecided(Result(0.0), "ignore", "darts", 10)
        report_undecided(Result(0.0), "warn", "darts", 10, is_main=False)  # only rank 0 warns
        report_undecided(Result(0.5), "warn", "darts", 10)  # decided: nothing to say
