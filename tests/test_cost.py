"""Hardware cost: symbolic FLOPs/params per op, architecture cost, differentiable expected cost."""

import functools
import warnings

import pytest
import torch

from ops import AvgPooling, BatchNorm, Identity, Relu, Zero, conv1d, conv2d, linear, Flatten
from supernet import BasicExecutor, ChoiceOp, IntScalarParameter, Tensor, discretize, lazy, search_space
from supernet.cost import architecture_cost, expected_cost, node_cost
from supernet.node import Op


def test_conv_and_linear_flops_are_symbolic_in_parameters():
    x = Tensor("x", (1, 3, 32, 32), ("N", "C", "H", "W"))
    width = IntScalarParameter(4, 16, step_size=4, name="width")

    @search_space
    def space(x):
        return linear(Flatten()(conv2d(x, width, 3, stride=2)), 10)

    out = space(x)
    conv = out.operands[0].operands[0]
    for w in (4, 16):
        width.set_current(w)
        assert lazy(node_cost(conv)) == w * 16 * 16 * 3 * 9
        assert lazy(node_cost(out)) == 10 * w * 16 * 16
        assert lazy(node_cost(out, "params")) == 10 * w * 16 * 16 + 10


def choice_space():
    x = Tensor("x", (1, 4, 16), ("N", "C", "L"))

    @search_space
    def space(x):
        h = ChoiceOp(
            functools.partial(conv1d, out_channels=4, kernel_size=5),
            functools.partial(conv1d, out_channels=4, kernel_size=1),
            AvgPooling(3, 1, 1),
            Identity(),
            Zero(),
            names=["conv5", "conv1", "pool", "skip", "none"],
        )(x)
        return BatchNorm()(Relu()(h))

    return space(x)


def test_params_cost_equals_exported_parameter_count_for_each_option():
    space = choice_space()
    (switch,) = [k for k in space.parametrization() if k.endswith("choice")]
    for option in range(5):
        fixed = discretize(space, {switch: option})
        model = BasicExecutor(fixed)
        assert architecture_cost(fixed, "params") == sum(p.numel() for p in model.parameters())


def test_one_hot_expected_cost_equals_architecture_cost_and_is_differentiable():
    space = choice_space()
    (switch,) = [k for k in space.parametrization() if k.endswith("choice")]
    for option in range(5):
        one_hot = torch.nn.functional.one_hot(torch.tensor(option), 5).float()
        assert float(expected_cost(space, {switch: one_hot})) == pytest.approx(
            architecture_cost(discretize(space, {switch: option}))
        )
    alpha = torch.zeros(5, requires_grad=True)
    cost = expected_cost(space, {switch: torch.softmax(alpha, 0)})
    cost.backward()
    assert alpha.grad[0] > 0 > alpha.grad[4]  # more weight on conv5 costs more, on none less


def test_dynamic_depth_node_probability_is_the_mass_of_deeper_exits():
    x = Tensor("x", (1, 2, 8), ("N", "C", "L"))
    depth = IntScalarParameter(0, 2, name="depth")

    @search_space
    def space(x):
        exits, h = [], x
        for _ in range(3):
            h = conv1d(h, 2, 3)
            exits.append(h)
        return ChoiceOp(*exits, switch=depth)()

    out = space(x)
    one_conv = 2 * 8 * 2 * 3
    w = torch.tensor([0.2, 0.3, 0.5])
    assert float(expected_cost(out, {depth.id: w})) == pytest.approx(one_conv * (1 + 0.8 + 0.5))


def test_expected_cost_averages_over_value_parameter_distributions():
    from supernet import CategoricalParameter

    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))
    kernel = CategoricalParameter([1, 3, 5], name="k")

    @search_space
    def space(x):
        return conv1d(x, 4, kernel)

    out = space(x)
    per_tap = 4 * 16 * 2
    p = torch.tensor([0.5, 0.25, 0.25], requires_grad=True)
    cost = expected_cost(out, {kernel.id: p})
    assert cost.item() == pytest.approx(per_tap * (0.5 * 1 + 0.25 * 3 + 0.25 * 5))
    cost.backward()
    assert p.grad.tolist() == pytest.approx([per_tap * 1, per_tap * 3, per_tap * 5])
    assert kernel.current_value == 1  # restored


def test_flops_of_an_op_that_declares_none_warn_once_naming_it():
    from supernet.cost import UndeclaredCostWarning, declares_flops

    class Doubler(Op):  # computes, but defines no flops(): a user's op
        def _forward_implementation(self, x):
            return 2 * x

    x = Tensor("x", (1, 4), ("N", "C"))
    net = Doubler()(Doubler()(x))
    assert not declares_flops(net) and declares_flops(Relu()(x))
    with pytest.warns(UndeclaredCostWarning, match=r"Doubler_0 \(.*Doubler\) declares no FLOPs.*Doubler.flops\(\)"):
        assert architecture_cost(net, "flops") == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per class: the second pricing is quiet
        assert architecture_cost(net, "flops") == 0
        assert architecture_cost(Flatten()(Identity()(x)), "flops") == 0  # free ops declare it
