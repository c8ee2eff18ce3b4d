"""HANNAH's test_operators: embedded_vision_net's grouped pointwise block (two grouped 1x1
convolutions around a channel interleave, summed) equals its torch.nn reference; the `Groups`
parameter keeps to the common divisors of the channel counts."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.testing import assert_close

from ops import Add, Conv2d, InterleaveChannels
from supernet import BasicExecutor, Groups, Int, IntScalarParameter, Tensor, lazy, scope, search_space


def grouped_conv2d(x, out_channels, groups=None):
    in_channels = x.shape()[1]
    if groups is None:
        groups = Groups(in_channels=in_channels, out_channels=out_channels, name="groups")
    weight = Tensor("weight", (out_channels, Int(in_channels / groups), 1, 1), ("O", "I", "kH", "kW"))
    return Conv2d(groups=groups)(x, weight)


@scope
def grouped_pointwise(x, out_channels):
    pw_k = grouped_conv2d(x, out_channels)
    out = InterleaveChannels(pw_k.groups)(pw_k)
    pw_l = grouped_conv2d(out, out_channels, groups=pw_k.groups)
    return Add()(pw_l, pw_k)


class GroupedPW(nn.Module):
    def __init__(self, in_channels, groups, out_channels):
        super().__init__()
        self.groups = groups
        self.pw_k = nn.Conv2d(in_channels, out_channels, 1, bias=False, groups=groups)
        self.pw_l = nn.Conv2d(out_channels, out_channels, 1, bias=False, groups=groups)

    def forward(self, x):
        out_0 = self.pw_k(x)
        out = torch.cat([out_0[:, shift :: self.groups] for shift in range(self.groups)], dim=1)
        return self.pw_l(out) + out_0


@pytest.mark.parametrize("groups", [1, 4, 16])
def test_grouped_pointwise_matches_torch(groups):
    @search_space
    def pw_space(x, out_channels):
        return grouped_pointwise(x, out_channels)

    x = Tensor(name="input", shape=(1, 64, 8, 8), axis=("N", "C", "H", "W"))
    net = pw_space(x, out_channels=128)
    param = net.parametrization()["pw_space_0.grouped_pointwise_0.Conv2d_0.groups"]
    param.set_current(groups)
    model = BasicExecutor(net)
    data = torch.randn(2, 64, 8, 8)
    reference = GroupedPW(64, groups, 128)
    with torch.no_grad():
        reference.pw_k.weight.copy_(
            model.get_parameter("pw_space_0.grouped_pointwise_0.Conv2d_0.weight")[:, : 64 // groups]
        )
        reference.pw_l.weight.copy_(
            model.get_parameter("pw_space_0.grouped_pointwise_0.Conv2d_1.weight")[:, : 128 // groups]
        )
    assert_close(model(data), reference(data))


def test_groups_domain_follows_the_channels():
    width = IntScalarParameter(8, 24, 4, name="width")
    groups = Groups(in_channels=12, out_channels=width)
    assert groups.current_value == 1 and groups.values() == [1, 2, 4]  # common divisors of 12 and 8
    groups.set_current(4)
    width.set_current(12)
    assert groups.values() == [1, 2, 3, 4, 6, 12] and lazy(groups) == 4
    width.set_current(20)  # 4 still divides 12 and 20
    assert lazy(groups) == 4
    width.set_current(24)
    groups.set_current(12)
    width.set_current(8)  # 12 no longer divides: the largest valid value below it
    assert lazy(groups) == 4
    with pytest.raises(ValueError, match=r"outside its domain common divisors \[1, 2, 4\]"):
        groups.set_current(3)
    assert groups.bounds() == (1, 12)
    rng = np.random.default_rng(0)
    assert set(groups.sample(rng) for _ in range(50)) == {1, 2, 4}


def test_interleave_refuses_a_bad_step():
    @search_space
    def space(x):
        return InterleaveChannels(0)(x)

    with pytest.raises(ValueError, match=r"space_0\.InterleaveChannels_0: step_size must be a positive int, got 0"):
        space(Tensor("x", (1, 4, 2, 2), ("N", "C", "H", "W")))
