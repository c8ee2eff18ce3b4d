"""Property: for any sampled architecture the runtime output shape equals lazy(net.shape()).

Multi-block spaces with searchable kernel sizes, strides and channel counts and a ChoiceOp per block
(conv block / pooling / identity), in 1-D and 2-D, with a classifier head whose input size depends on
the choices. One executor per space: the shared weights must fit every sampled architecture.
"""

from functools import partial

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ops import AdaptiveAvgPooling, BatchNorm, Flatten, Identity, MaxPooling, Relu, conv1d, conv2d, linear
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
def conv_block(x, dims, out_channels, kernel_size, stride):
    conv = conv1d if dims == 1 else conv2d
    net = conv(x, out_channels, kernel_size, stride=stride)
    net = BatchNorm()(net)
    return Relu()(net)


@scope
def block(x, dims):
    kernel_size = CategoricalParameter([1, 3, 5], name="kernel_size")
    stride = CategoricalParameter([1, 2], name="stride")
    out_channels = IntScalarParameter(min=4, max=16, step_size=2, name="out_channels")
    options = [
        partial(conv_block, dims=dims, out_channels=out_channels, kernel_size=kernel_size, stride=stride),
        MaxPooling(kernel_size=3, stride=stride.new(), padding=1),
        Identity(),
    ]
    return ChoiceOp(*options, same_shape=False)(x)  # one-path execution: the output shape follows the switch


def make_space(dims, n_blocks, size, head):
    spatial = {1: ("L",), 2: ("H", "W")}[dims]

    @search_space
    def space():
        net = Tensor("x", (1, 3, *[size] * dims), ("N", "C", *spatial))
        for _ in range(n_blocks):
            net = block(net, dims)
        if head:
            net = AdaptiveAvgPooling(output_size=2)(net)
            net = Flatten()(net)
            net = linear(net, IntScalarParameter(3, 6, name="classes"))
        return net

    return space()


SPACES = {
    (dims, n_blocks, size, head): make_space(dims, n_blocks, size, head)
    for dims, n_blocks, size, head in [(2, 2, 15, False), (2, 3, 16, True), (1, 3, 31, False), (1, 2, 20, True)]
}
MODELS = {}


def model_for(key):
    if key not in MODELS:
        torch.manual_seed(0)
        MODELS[key] = BasicExecutor(SPACES[key])
    return MODELS[key]


def check_sample(key, seed, batch):
    net = SPACES[key]
    values = net.sample(seed=seed)
    model = model_for(key)
    model.train(seed % 2 == 0)
    dims, _, size, _ = key
    x = torch.randn(batch, 3, *[size] * dims, generator=torch.Generator().manual_seed(seed))
    out = model(x)
    expected = [batch, *lazy(net.shape())[1:]]
    assert list(out.shape) == expected, values
    assert torch.isfinite(out).all()


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(2, 3))
def test_sampled_2d_shapes_match(seed, batch):
    check_sample((2, 2, 15, False), seed, batch)
    check_sample((2, 3, 16, True), seed, batch)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(2, 3))
def test_sampled_1d_shapes_match(seed, batch):
    check_sample((1, 3, 31, False), seed, batch)
    check_sample((1, 2, 20, True), seed, batch)


@pytest.mark.parametrize("key", list(SPACES))
def test_every_option_of_every_block(key):
    """Deterministic sweep: each block takes each option at least once (and the extremes of its domain)."""
    net = SPACES[key]
    params = net.parametrization()
    choices = sorted(k for k in params if k.endswith(".choice"))
    assert len(choices) == key[1]
    for option in range(3):
        for extreme in (min, max):
            for pid, param in params.items():
                domain = param.values() if isinstance(param, IntScalarParameter) else param.choices
                param.set_current(extreme(domain))
            net.set_parametrization({pid: option for pid in choices})
            check_sample(key, seed=option, batch=2)
