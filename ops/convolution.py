"""Convolutions (1-D and 2-D) and the blocks that create their weights."""

from __future__ import annotations

import math
from typing import Any, Optional

import torch.nn.functional as F

from supernet import Op, OpTraits, Tensor, lazy
from supernet.axis_role import AxisRole
from supernet.export_code import literal
from supernet.node import Node


class _ConvNd(Op):
    """`ConvNd(stride=1, dilation=1, groups=1, padding=None)(x, weight[, bias])`.

    `padding=None` is `dilation * (kernel - 1) // 2`, which keeps the spatial size at stride 1 for odd kernels.
    """

    traits = OpTraits(pure=True)

    n_inputs = 1
    mode_arguments = ("groups",)
    dims = 0
    _functional: Any = None

    def __init__(self, stride: Any = 1, dilation: Any = 1, groups: Any = 1, padding: Any = None) -> None:
        super().__init__(stride=stride, dilation=dilation, groups=groups, padding=padding)

    def check(self) -> None:
        x, *weights = self.operands
        if not weights:
            raise TypeError(f"{self.id} needs a weight operand")
        if len(x.shape()) != self.dims + 2:
            raise ValueError(f"{self.id} expects a {self.dims + 2}-D input (N, C, ...), got shape {lazy(x.shape())}")
        if len(weights[0].shape()) != self.dims + 2:
            raise ValueError(f"{self.id} expects a {self.dims + 2}-D weight, got shape {lazy(weights[0].shape())}")
        in_channels, per_group, groups = lazy(x.shape()[1]), lazy(weights[0].shape()[1]), lazy(self.groups)
        if in_channels != per_group * groups:
            raise ValueError(
                f"{self.id}: input has {in_channels} channels but weight expects {per_group} x {groups} groups"
            )

    def kernel_size(self, axis: int = 0) -> Any:
        return self.operands[1].shape()[2 + axis]

    def padding_of(self, axis: int = 0) -> Any:
        if self.padding is not None:
            return self.padding
        return self.dilation * (self.kernel_size(axis) - 1) // 2

    def shape_fun(self) -> tuple:
        x, weight = self.operands[0], self.operands[1]
        spatial = tuple(
            (size + 2 * self.padding_of(i) - self.dilation * (self.kernel_size(i) - 1) - 1) // self.stride + 1
            for i, size in enumerate(x.shape()[2:])
        )
        return (x.shape()[0], weight.shape()[0], *spatial)

    def flops(self) -> Any:
        weight = self.operands[1].shape()
        return math.prod(self.shape()[1:]) * math.prod(weight[1:])

    def channel_groups(self) -> Any:
        return self.groups

    def weight_axis_roles(self, position: int) -> Any:
        """The weight (O, I, kernel...) has `dims` kernel axes; the bias none."""
        return (None, None, *[AxisRole.KERNEL] * self.dims) if position == 1 else None

    def _forward_implementation(self, x, weight, bias=None, *, groups=None):
        kernel = weight.shape[2:]
        padding = lazy(self.padding)
        if padding is None:
            padding = tuple(lazy(self.dilation) * (k - 1) // 2 for k in kernel)
        groups = lazy(self.groups) if groups is None else groups
        return type(self)._functional(x, weight, bias, lazy(self.stride), padding, lazy(self.dilation), groups)

    def source(self, args, out):
        x, weight, bias = (*args, None)[:3]
        kernel = lazy(self.operands[1].shape())[2:]
        padding = lazy(self.padding)
        if padding is None:
            padding = tuple(lazy(self.dilation) * (k - 1) // 2 for k in kernel)
        return (
            f"{out} = F.conv{self.dims}d({x}, {weight}, {bias}, stride={literal(self.stride)}, padding={literal(padding)}, "
            f"dilation={literal(self.dilation)}, groups={literal(self.groups)})"
        )


class Conv1d(_ConvNd):
    dims = 1
    _functional = staticmethod(F.conv1d)


class Conv2d(_ConvNd):
    traits = OpTraits(pure=True, layout_agnostic=True)
    dims = 2
    _functional = staticmethod(F.conv2d)

    def float32_under_cpu_autocast(self, channels: int, groups: Optional[int] = None) -> bool:
        """Depthwise (one group per input channel): oneDNN's bfloat16 depthwise backward on CPU is
        about 2x slower than float32's at the DARTS space's sizes (docs/precision.md)."""
        groups = lazy(self.groups) if groups is None else groups
        return isinstance(groups, int) and 1 < groups == channels

    def accepts_channels_last(self) -> bool:
        """Not a strided 1x1 convolution: oneDNN's AVX2 weight-gradient kernel for those corrupts
        the heap on channels-last inputs of 2-6 channels (PyTorch 2.13; docs/channels_last_conv_bug.md)."""
        stride = lazy(self.stride)
        strided = any(s != 1 for s in stride) if isinstance(stride, (tuple, list)) else stride != 1
        return not (strided and tuple(lazy(self.operands[1].shape())[2:]) == (1, 1))


def _conv(
    op_type: type, x: Node, out_channels: Any, kernel_size: Any, stride: Any, dilation: Any, groups: Any, bias: bool
) -> Op:
    in_channels = x.shape()[1]
    per_group = in_channels if isinstance(groups, int) and groups == 1 else in_channels // groups
    kernel_axes = ("kL",) if op_type.dims == 1 else ("kH", "kW")
    weight = Tensor(
        name="weight",
        shape=(out_channels, per_group, *([kernel_size] * op_type.dims)),
        axis=("O", "I", *kernel_axes),
    )
    operands = [x, weight]
    if bias:
        operands.append(Tensor(name="bias", shape=(out_channels,), axis=("O",), init="zeros"))
    return op_type(stride=stride, dilation=dilation, groups=groups)(*operands)


def conv1d(
    x: Node,
    out_channels: Any,
    kernel_size: Any,
    stride: Any = 1,
    dilation: Any = 1,
    groups: Any = 1,
    bias: bool = False,
) -> Op:
    """A Conv1d on `x` with a new weight Tensor of shape (out_channels, in/groups, kernel_size)."""
    return _conv(Conv1d, x, out_channels, kernel_size, stride, dilation, groups, bias)


def conv2d(
    x: Node,
    out_channels: Any,
    kernel_size: Any,
    stride: Any = 1,
    dilation: Any = 1,
    groups: Any = 1,
    bias: bool = False,
) -> Op:
    """A Conv2d on `x` with a new weight Tensor of shape (out_channels, in/groups, k, k)."""
    return _conv(Conv2d, x, out_channels, kernel_size, stride, dilation, groups, bias)
