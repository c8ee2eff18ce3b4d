"""Spaces and data that several test files share (pytest puts this folder on sys.path)."""

import functools

import torch

from ops import AvgPooling, BatchNorm, Dropout, Flatten, Identity, MaxPooling, Relu, conv1d, linear
from supernet import ChoiceOp, Tensor, search_space


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


def resume_data(n: int = 96, channels: int = 2, length: int = 16, seed: int = 7, window: int = 4):
    """Three classes read off the first `window` positions of the first two channels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, length, generator=g)
    return x, (x[:, 0, :window].sum(dim=1) > 0).long() + (x[:, 1, :window].sum(dim=1) > 1).long()
