"""One SGD step through the BasicExecutor trains exactly the active weights (their active slices)."""

from functools import partial

import torch
import torch.nn.functional as F

from ops import AdaptiveAvgPooling, BatchNorm, Flatten, Identity, Relu, conv1d, conv2d, linear
from supernet import (
    BasicExecutor,
    CategoricalParameter,
    ChoiceOp,
    IntScalarParameter,
    Tensor,
    lazy,
    scope,
    search_space,
)


@scope
def conv_bn_relu(x, out_channels, kernel_size, dims=2):
    conv = conv2d if dims == 2 else conv1d
    return Relu()(BatchNorm()(conv(x, out_channels, kernel_size, bias=True)))


def make_space(dims=2):
    spatial = ("H", "W") if dims == 2 else ("L",)

    @search_space
    def space():
        x = Tensor("x", (1, 3, *[10] * dims), ("N", "C", *spatial))
        width = IntScalarParameter(4, 12, step_size=4, name="width")
        net = conv_bn_relu(x, width, CategoricalParameter([1, 3, 5], name="k"), dims=dims)
        net = ChoiceOp(
            partial(conv_bn_relu, out_channels=width.new(), kernel_size=3, dims=dims),
            partial(
                conv_bn_relu, out_channels=width.new(), kernel_size=CategoricalParameter([1, 3], name="k"), dims=dims
            ),
            Identity(),
        )(net)
        net = Flatten()(AdaptiveAvgPooling(1)(net))
        return linear(net, 5)

    return space()


def sgd_step(model, x, target):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), target)
    loss.backward()
    optimizer.step()


def weight_slices(model, net):
    """id -> current slice index of every trainable weight on the active path."""
    slices = {}
    for node in model.active_nodes():
        if isinstance(node, Tensor) and node.role == "weight" and node.trainable:
            slices[node.id] = tuple(
                slice((cap - size) // 2, (cap - size) // 2 + size) if axis.startswith("k") else slice(0, size)
                for size, cap, axis in zip(lazy(node.shape()), model.get_parameter(node.id).shape, node.axis)
            )
    return slices


def check_one_step(net, choice, dims):
    torch.manual_seed(0)
    model = BasicExecutor(net).train()
    params = net.parametrization()
    net.set_parametrization(
        {
            "space_0.conv_bn_relu_0.Conv2d_0.weight.width"
            if dims == 2
            else "space_0.conv_bn_relu_0.Conv1d_0.weight.width": 8,
            "space_0.ChoiceOp_0.choice": choice,
        }
    )
    conv_key = "Conv2d_0" if dims == 2 else "Conv1d_0"
    params[f"space_0.conv_bn_relu_0.{conv_key}.weight.k"].set_current(3)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    active = weight_slices(model, net)
    x = torch.randn(6, 3, *[10] * dims)
    target = torch.arange(6) % 5
    sgd_step(model, x, target)

    after = dict(model.named_parameters())
    assert set(active) <= set(after)
    for name, old in before.items():
        new = after[name].detach()
        if name in active:
            index = active[name]
            assert not torch.equal(new[index], old[index]), f"active weight {name} did not change"
            outside = torch.ones_like(old, dtype=torch.bool)
            outside[index] = False
            assert torch.equal(new[outside], old[outside]), f"the inactive part of {name} changed"
        else:
            assert torch.equal(new, old), f"inactive weight {name} changed"
    return set(active), set(before)


def test_one_sgd_step_changes_exactly_the_active_weights():
    net = make_space()
    seen_inactive = set()
    for choice in range(3):
        active, everything = check_one_step(net, choice, dims=2)
        seen_inactive |= everything - active
        option_0 = any(k.startswith("space_0.conv_bn_relu_1.") for k in active)
        option_1 = any(k.startswith("space_0.conv_bn_relu_2.") for k in active)
        assert (option_0, option_1) == (choice == 0, choice == 1)
        assert "space_0.Linear_0.weight" in active and "space_0.conv_bn_relu_0.BatchNorm_0.bias" in active
    assert any(k.startswith("space_0.conv_bn_relu_1.") for k in seen_inactive)
    assert any(k.startswith("space_0.conv_bn_relu_2.") for k in seen_inactive)


def test_one_sgd_step_1d():
    net = make_space(dims=1)
    for choice in range(3):
        check_one_step(net, choice, dims=1)


def test_gradients_reach_only_the_active_slice():
    @search_space
    def space():
        x = Tensor("x", (1, 2, 7, 7), ("N", "C", "H", "W"))
        return conv2d(x, IntScalarParameter(2, 6, name="c"), CategoricalParameter([1, 3, 5], name="k"))

    net = space()
    net.set_parametrization({"space_0.Conv2d_0.weight.c": 3, "space_0.Conv2d_0.weight.k": 3})
    model = BasicExecutor(net)
    model(torch.randn(2, 2, 7, 7)).sum().backward()
    grad = model.get_parameter("space_0.Conv2d_0.weight").grad
    mask = torch.zeros_like(grad, dtype=torch.bool)
    mask[:3, :, 1:4, 1:4] = True
    assert (grad[mask] != 0).all()
    assert (grad[~mask] == 0).all()
