"""`Op.compute`: the one way executors run an op, with the run mode passed as arguments."""

import pytest
import torch
import torch.nn.functional as F

from ops import BatchNorm, Dropout, Identity, Relu, conv1d
from search.strategies import PCDARTS
from supernet import BasicExecutor, ChoiceOp, SupernetExecutor, Tensor, get_nodes, lazy, search_space
from supernet.node import Op


def batchnorm_on(channels=3):
    x = Tensor("x", (1, channels, 5), ("N", "C", "L"))
    return BatchNorm()(x)


def test_compute_takes_the_training_mode_as_an_argument():
    bn = batchnorm_on()
    mean, var = torch.zeros(3), torch.ones(3)
    weight, bias = torch.ones(3), torch.zeros(3)
    x = torch.randn(4, 3, 5) * 3 + 1
    bn.training = False  # the mode of direct calls: compute ignores it
    trained = bn.compute(x, mean, var, weight, bias, training=True)
    assert torch.allclose(trained, F.batch_norm(x, torch.zeros(3), torch.ones(3), weight, bias, True), atol=1e-6)
    assert not torch.equal(mean, torch.zeros(3))  # batch statistics were folded into the running ones
    frozen = mean.clone()
    evaluated = bn.compute(x, mean, var, weight, bias, training=False)
    assert torch.equal(mean, frozen) and torch.allclose(evaluated, (x - mean[:, None]) / (var[:, None] + 1e-5).sqrt())
    assert bn.training is False  # compute never writes the mode onto the node


def test_forward_is_compute_in_the_ops_own_mode():
    drop = Dropout(0.5)(Tensor("x", (1, 100), ("N", "C")))
    x = torch.ones(2, 100)
    drop.training = False
    assert torch.equal(drop.forward(x), x)
    drop.training = True
    assert not torch.equal(drop.forward(x), x)


def test_groups_are_refused_by_an_op_that_does_not_group_channels():
    relu = Relu()(Tensor("x", (1, 4), ("N", "C")))
    assert relu.channel_groups() is None
    with pytest.raises(TypeError, match=relu.id):
        relu.compute(torch.ones(2, 4), training=False, groups=2)


def test_a_convolution_runs_with_the_groups_it_is_given():
    x = Tensor("x", (1, 4, 6), ("N", "C", "L"))
    conv = conv1d(x, 4, 3, groups=4)
    assert lazy(conv.channel_groups()) == 4
    data, weight = torch.randn(2, 2, 6), torch.randn(4, 1, 3)
    # two channels fed, one group each (a depthwise convolution under partial channels)
    out = conv.compute(data, weight[:2], training=True, groups=2)
    assert torch.allclose(out, F.conv1d(data, weight[:2], padding=1, groups=2))
    assert conv.groups == 4


def test_executors_leave_the_nodes_mode_alone():
    x = Tensor("x", (1, 8, 10), ("N", "C", "L"))

    @search_space
    def space(x):
        def conv_bn(h):
            return BatchNorm()(conv1d(h, 8, 3, groups=8))

        return ChoiceOp(Identity(), conv_bn)(x)

    net = space(x)
    ops = [n for n in get_nodes(net) if isinstance(n, Op)]
    for op in ops:
        op.training = "untouched"
    groups = {n.id: n.groups for n in ops if n.channel_groups() is not None}
    data = torch.randn(2, 8, 10)
    for model in (
        SupernetExecutor(net, seed=0),
        SupernetExecutor(net, seed=0, optimize=False),
        SupernetExecutor(net, mixture=PCDARTS(k=4).mixture(), seed=0),
        BasicExecutor(net, seed=0),
    ):
        for training in (True, False):
            model.train(training)
            out = model(data)
            if out.requires_grad:
                out.sum().backward()
    assert all(op.training == "untouched" for op in ops)
    assert groups == {n.id: n.groups for n in ops if n.channel_groups() is not None}


def test_an_op_without_declared_mode_arguments_gets_none():
    class Scale(Op):
        def _forward_implementation(self, x):
            return 2 * x

    op = Scale()(Tensor("x", (1, 3), ("N", "C")))
    assert torch.equal(op.compute(torch.ones(1, 3), training=True), torch.full((1, 3), 2.0))
