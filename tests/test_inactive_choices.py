"""Choices the selected architecture does not run (inside a block a dynamic-depth ChoiceOp leaves
out) are inactive: kept in `chosen_options`, listed in `result.inactive`, shown as inactive in the
summary, and never reported as undecided (issue 26.6)."""

from __future__ import annotations

import functools
import json
import warnings

import torch

from ops import Flatten, Relu, conv1d, linear
from search import SearchResult, fit_supernet
from search.confidence import result_confidence, undecided_message
from search.plots import undecided_switches
from supernet import ChoiceOp, IntScalarParameter, SupernetExecutor, Tensor, get_nodes, scope, search_space
from supernet.active_parameters import inactive_choices

DEPTH = "deep_0.ChoiceOp_0.depth"
FIRST, SECOND = "deep_0.block_0.ChoiceOp_0.choice", "deep_0.block_1.ChoiceOp_0.choice"


@scope
def block(x):
    kernels = [functools.partial(conv1d, out_channels=2, kernel_size=k) for k in (3, 5)]
    return ChoiceOp(*kernels, names=["k3", "k5"])(x)


def deep_space():
    """Two blocks of a kernel choice, then a dynamic depth over their outputs."""

    @search_space
    def deep(x):
        exits, h = [], x
        for _ in range(2):
            h = block(h)
            exits.append(h)
        out = ChoiceOp(*exits, switch=IntScalarParameter(0, 1, name="depth"))()
        return linear(Flatten()(Relu()(out)), 3)

    return deep(Tensor("x", (1, 2, 16), ("N", "C", "L")))


def test_the_choices_of_an_unused_block_are_inactive_and_the_values_are_restored():
    space = deep_space()
    assert inactive_choices(space, {DEPTH: 0, FIRST: 1, SECOND: 0}) == [SECOND]
    assert inactive_choices(space, {DEPTH: 1, FIRST: 1, SECOND: 0}) == []
    assert {pid: p.current_value for pid, p in space.parametrization().items()} == {DEPTH: 0, FIRST: 0, SECOND: 0}


def test_inactive_choices_are_left_out_of_the_undecided_warning():
    history = {"steps": [0, 10], "confidence": {}}
    flat = {sid: [0.5, 0.5] for sid in (DEPTH, FIRST, SECOND)}
    values = {sid: [0, 1] for sid in flat}
    names = {sid: ["a", "b"] for sid in flat}
    confidence = result_confidence({DEPTH: 0, FIRST: 0, SECOND: 0}, flat, values, names, history, [SECOND])
    assert [sid for sid, e in confidence.items() if not e.get("active", True)] == [SECOND]
    message = undecided_message(confidence, "darts", 10)
    assert message.startswith("2 of 2 active (and 1 inactive) choices are undecided") and SECOND not in message


def test_a_search_stopping_at_depth_one_reports_the_second_block_inactive(tmp_path):
    space = deep_space()
    state = SupernetExecutor(space, seed=0).state_dict()
    state[f"arch.{DEPTH}"] = torch.tensor([5.0, -5.0])  # the search starts (and, in one epoch, stays) at depth 1
    g = torch.Generator().manual_seed(0)
    data = torch.randn(32, 2, 16, generator=g), torch.randint(0, 3, (32,), generator=g)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_supernet(space, data, epochs=1, batch_size=8, progress=False, initial_state=state)
    assert result.architecture[DEPTH] == 0
    assert result.inactive == [SECOND]
    assert set(result.chosen_options) == {DEPTH, FIRST, SECOND}  # kept: the architecture names every switch
    assert all(SECOND not in str(w.message) for w in caught)
    assert SECOND not in undecided_switches(result)
    rows = {line.split()[0]: line for line in result.summary().splitlines()[2:]}
    assert rows["block_1"].endswith("inactive") and "UNDECIDED" not in rows["block_1"]
    assert "1 inactive (not run by the selected architecture)" in result.summary().splitlines()[0]
    deeper = result.with_architecture({DEPTH: 1})  # the second block runs now: nothing is inactive
    assert deeper.inactive == [] and "inactive" not in deeper.summary()
    saved = result.save(tmp_path / "run")
    assert json.loads((saved / "result.json").read_text())["inactive"] == [SECOND]
    assert SearchResult.load(saved, space=space).inactive == [SECOND]
    assert SearchResult.load(saved).inactive == [SECOND]  # without the space: from the saved marks


def test_exits_of_one_kind_get_labels_that_tell_them_apart():
    (depth,) = [n for n in get_nodes(deep_space()) if isinstance(n, ChoiceOp) and n.switch.id == DEPTH]
    assert depth.option_names() == ["block_0", "block_1"]
