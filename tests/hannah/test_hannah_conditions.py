"""HANNAH's test_conditions: constraints stated with `cond` on parameters and nodes are kept in the
graph, sampling and evolution respect them, and a chosen architecture's conditions are reported.
(HANNAH states them on a `@parametrize` class; we state them on graph nodes and parameters.)"""

import types

import pytest
import torch

from ops import Relu, conv2d
from search.evolution import ConstrainedSpace
from supernet import (
    ChoiceOp,
    IntScalarParameter,
    Tensor,
    check_conditions,
    condition_report,
    graph_conditions,
    search_space,
    violated,
)
from supernet.conditions import architecture_report, condition_masks, satisfies
from supernet.cost_expression import CostExpression


def space_with_conditions():
    x = Tensor("x", (1, 3, 8, 8), ("N", "C", "H", "W"))
    a, b = IntScalarParameter(0, 10, name="a"), IntScalarParameter(0, 10, name="b")

    @search_space
    def space(x):
        out = conv2d(x, out_channels=a + 1, kernel_size=1)
        out = conv2d(Relu()(out), out_channels=b + 1, kernel_size=1)
        out.cond(a + b < 10)
        return out

    net = space(x)
    a.cond(a > 5)
    return net, a, b


def test_conditions_are_kept_and_checked():
    net, a, b = space_with_conditions()
    assert len(graph_conditions(net)) == 2
    assert [c.owner for c in violated(net)] == ["parameter space_0.Conv2d_0.weight.a"]  # a = 0, not > 5
    with pytest.raises(ValueError, match=r"breaks 1 condition\(s\): parameter space_0\.Conv2d_0\.weight\.a: "):
        check_conditions(net)
    a.set_current(6)
    check_conditions(net)
    assert (a.current_value, b.current_value) == (6, 0)
    b.set_current(6)  # 6 + 6 is not below 10
    report = {r["owner"]: r for r in condition_report(net)}
    assert report["node space_0.Conv2d_1"]["holds"] is False and report["node space_0.Conv2d_1"]["value"] is False
    assert report["parameter space_0.Conv2d_0.weight.a"]["holds"] is True


def test_sample_resamples_until_every_condition_holds():
    net, a, b = space_with_conditions()
    for seed in range(20):
        drawn = net.sample(seed=seed)
        assert drawn["space_0.Conv2d_0.weight.a"] > 5
        assert drawn["space_0.Conv2d_0.weight.a"] + drawn["space_0.Conv2d_1.weight.b"] < 10
        assert not violated(net)
    b.cond(b > 9)  # with a > 5 and a + b < 10: impossible
    with pytest.raises(ValueError, match=r"no parametrization satisfying the conditions in 1000 draws; still broken"):
        net.sample(seed=0)


def test_conditions_across_parameters_and_connectives():
    net, a, b = space_with_conditions()
    other = IntScalarParameter(0, 10, name="other")
    other.cond(other.eq(a) | (other > 8))
    a.set_current(6)
    other.set_current(6)
    assert other.conditions[0].holds()
    other.set_current(7)
    assert not other.conditions[0].holds()
    with pytest.raises(TypeError, match=r"node space_0\.Conv2d_1: a condition must be a symbolic expression"):
        net.cond("a < 3")


def test_evolution_refuses_candidates_that_break_a_condition():
    x = Tensor("x", (1, 2, 8, 8), ("N", "C", "H", "W"))
    depth = IntScalarParameter(0, 2, name="depth")

    @search_space
    def space(x):
        first = Relu()(conv2d(x, 4, 3))
        second = Relu()(conv2d(first, 4, 3))
        third = Relu()(conv2d(second, 4, 3))
        out = ChoiceOp(first, second, third, switch=depth)()
        out.cond(depth < 2)
        return out

    net = space(x)
    constrained = ConstrainedSpace(types.SimpleNamespace(space=net), {depth.id: [0, 1, 2]}, {})
    assert constrained.admits({depth.id: 1}) and not constrained.admits({depth.id: 2})
    assert depth.current_value == 0  # checking leaves the space as it was
    assert satisfies(net, {depth.id: 0}) and not satisfies(net, {depth.id: 2})
    report = architecture_report(net, {depth.id: 2})
    assert report[0]["holds"] is False and "depth" in report[0]["condition"]
    # differentiable search: a condition over one searched parameter becomes a mask over its values
    assert condition_masks(net, {depth.id: [0, 1, 2]}) == {depth.id: [True, True, False]}
    alpha = torch.zeros(3)
    masked = torch.where(torch.tensor(condition_masks(net, {depth.id: [0, 1, 2]})[depth.id]), alpha, -torch.inf)
    assert torch.softmax(masked, 0)[2] == 0


def test_a_cost_bound_as_a_condition():
    x = Tensor("x", (1, 2, 8, 8), ("N", "C", "H", "W"))
    width = IntScalarParameter(2, 16, name="width")

    @search_space
    def space(x):
        return conv2d(x, width, 3)

    net = space(x)
    flops = CostExpression(net, "flops")
    net.cond(flops < 2 * 9 * 64 * 8)  # at most 8 output channels
    for seed in range(10):
        assert net.sample(seed=seed)["space_0.Conv2d_0.weight.width"] < 8
    assert repr(flops) == "flops(space_0.Conv2d_0)"
