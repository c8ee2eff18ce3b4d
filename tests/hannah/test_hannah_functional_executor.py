"""HANNAH's test_functional_executor: a BasicExecutor over conv-relu blocks and a Linear trains
(a loss backward and an optimizer step change the shared weights)."""

import torch
from torch import nn
from torch.optim import SGD

from ops import Conv2d, Flatten, Relu, linear
from supernet import BasicExecutor, CategoricalParameter, IntScalarParameter, Tensor, lazy, search_space


def conv_relu(x, out_channels, kernel_size, stride):
    weight = Tensor("weight", (out_channels, x.shape()[1], kernel_size, kernel_size), ("O", "I", "kH", "kW"), grad=True)
    return Relu()(Conv2d(stride)(x, weight))


@search_space
def network(x):
    out = conv_relu(
        x,
        IntScalarParameter(32, 64, name="out_channels"),
        CategoricalParameter([3, 5], name="kernel_size"),
        CategoricalParameter([2], name="stride"),
    )
    out = conv_relu(
        out,
        IntScalarParameter(16, 32, name="out_channels"),
        CategoricalParameter([3, 5], name="kernel_size"),
        CategoricalParameter([1], name="stride"),
    )
    return linear(Flatten()(out), 10)  # HANNAH's Linear flattens (C, H, W) itself


def test_executor_trains():
    x = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))
    net = network(x)
    executor = BasicExecutor(net)
    optimizer = SGD(executor.parameters(), lr=0.01)
    inputs = torch.ones(lazy(x.shape()))  # HANNAH: input.current_shape()
    target = torch.ones(lazy(net.shape()))
    before = {k: v.detach().clone() for k, v in executor.named_parameters()}
    loss = nn.L1Loss()(executor(inputs), target)
    loss.backward()
    optimizer.step()
    changed = [k for k, v in executor.named_parameters() if not torch.equal(v, before[k])]
    assert len(changed) == len(before) == 4  # two conv weights, the linear weight and bias: all trained
    assert nn.L1Loss()(executor(inputs), target) < loss
