"""Spaces and data that several test files share (pytest puts this folder on sys.path)."""

import functools

import torch

from ops import (
    AdaptiveAvgPooling,
    AvgPooling,
    BatchNorm,
    Dropout,
    Flatten,
    Identity,
    MaxPooling,
    Relu,
    conv1d,
    linear,
)
from supernet import CategoricalParameter, ChoiceOp, IntScalarParameter, Tensor, search_space


def resume_space(channels: int = 2, length: int = 16):
    """Two choices, BatchNorm and Dropout (a draw from torch's generator: resuming must restore it)."""
    x = Tensor("x", (1, channels, length), ("N", "C", "L"))

    @search_space
    def space(x):
        conv3 = functools.partial(conv1d, out_channels=channels, kernel_size=3)
        h = ChoiceOp(conv3, MaxPooling(3, 1, 1), Identity())(x)
        h = Relu()(BatchNorm()(h))
        h = ChoiceOp(functools.partial(conv1d, out_channels=channels, kernel_size=5), AvgPooling(3, 1, 1))(h)
        h = Dropout(0.2)(h)
        return linear(Flatten()(h), 3)

    return space(x)


def threshold_data(n: int = 96, channels: int = 2, length: int = 16, seed: int = 7, window: int = 4):
    """Three classes read off the first `window` positions of the first two channels (learnable labels)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, length, generator=g)
    return x, (x[:, 0, :window].sum(dim=1) > 0).long() + (x[:, 1, :window].sum(dim=1) > 1).long()


def noise_data(n: int, shape: tuple = (2, 16), classes: int = 3, seed: int = 0):
    """Gaussian inputs with uniformly random labels: nothing to learn, only shapes and plumbing to test."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


def classifier(classes: int = 3):
    """One choice (conv or pool, named) over (2, 16) inputs, then a linear head of `classes`."""
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def space(x):
        h = ChoiceOp(
            functools.partial(conv1d, out_channels=2, kernel_size=3), AvgPooling(3, 1, 1), names=["conv", "pool"]
        )(x)
        return linear(Flatten()(Relu()(h)), classes)

    return space(x)


def value_space(kernel=None, width=None, tie=False):
    """Two convolutions with a searched kernel size and width (value choices); `tie` shares the kernel."""
    kernel = kernel if kernel is not None else CategoricalParameter([1, 3, 5], name="k")
    width = width if width is not None else IntScalarParameter(2, 6, step_size=2, name="w")
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def space(x):
        h = Relu()(BatchNorm()(conv1d(x, width, kernel)))
        h = conv1d(h, 4, kernel if tie else kernel.new())
        return linear(Flatten()(AdaptiveAvgPooling(1)(h)), 3)

    return space(x), kernel, width
