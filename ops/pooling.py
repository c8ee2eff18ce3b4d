"""Pooling over the spatial axes of 1-D (N, C, L) and 2-D (N, C, H, W) inputs."""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F

from supernet import Op, OpTraits, lazy
from supernet.export_code import literal


class _Pooling(Op):
    """`(kernel_size, stride=None, padding=0)` as in torch; `stride=None` means `kernel_size`."""

    traits = OpTraits(pure=True, keeps_input=True, layout_agnostic=True)

    _functionals: dict = {}

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__(kernel_size=kernel_size, stride=stride, padding=padding)

    def check(self) -> None:
        if len(self.operands[0].shape()) not in self._functionals:
            raise ValueError(
                f"{self.id} pools 1-D (N, C, L) or 2-D (N, C, H, W) inputs, got shape {lazy(self.operands[0].shape())}"
            )

    def _stride(self) -> Any:
        return self.kernel_size if self.stride is None else self.stride

    def shape_fun(self) -> tuple:
        shape = self.operands[0].shape()
        spatial = [(size + 2 * self.padding - self.kernel_size) // self._stride() + 1 for size in shape[2:]]
        return (*shape[:2], *spatial)

    def flops(self) -> Any:
        dims = len(self.operands[0].shape()) - 2
        return math.prod(self.shape()[1:]) * math.prod([self.kernel_size] * dims)

    def _forward_implementation(self, x):
        return self._functionals[x.dim()](x, lazy(self.kernel_size), lazy(self._stride()), lazy(self.padding))

    def _call_source(self, args, out, extra=""):
        function = self._functionals[len(self.operands[0].shape())].__name__
        return (
            f"{out} = F.{function}({args[0]}, {literal(self.kernel_size)}, {literal(self._stride())}, "
            f"{literal(self.padding)}{extra})"
        )

    def source(self, args, out):
        return self._call_source(args, out)


class MaxPooling(_Pooling):
    _functionals = {3: F.max_pool1d, 4: F.max_pool2d}


class AvgPooling(_Pooling):
    _functionals = {3: F.avg_pool1d, 4: F.avg_pool2d}

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, count_include_pad: bool = True) -> None:
        Op.__init__(self, kernel_size=kernel_size, stride=stride, padding=padding, count_include_pad=count_include_pad)

    def _forward_implementation(self, x):
        return self._functionals[x.dim()](
            x,
            lazy(self.kernel_size),
            lazy(self._stride()),
            lazy(self.padding),
            count_include_pad=self.count_include_pad,
        )

    def source(self, args, out):
        return self._call_source(args, out, f", count_include_pad={literal(self.count_include_pad)}")


class AdaptiveAvgPooling(Op):
    """Average-pools the spatial axes to `output_size` each."""

    traits = OpTraits(pure=True, keeps_input=True, layout_agnostic=True)

    _functionals = {3: F.adaptive_avg_pool1d, 4: F.adaptive_avg_pool2d}

    def __init__(self, output_size: Any = 1) -> None:
        super().__init__(output_size=output_size)

    def check(self) -> None:
        if len(self.operands[0].shape()) not in self._functionals:
            raise ValueError(f"{self.id} pools 1-D or 2-D inputs, got shape {lazy(self.operands[0].shape())}")

    def shape_fun(self) -> tuple:
        shape = self.operands[0].shape()
        return (*shape[:2], *[self.output_size] * (len(shape) - 2))

    def flops(self) -> Any:
        return math.prod(self.operands[0].shape()[1:])

    def _forward_implementation(self, x):
        return self._functionals[x.dim()](x, lazy(self.output_size))

    def source(self, args, out):
        function = self._functionals[len(self.operands[0].shape())].__name__
        return f"{out} = F.{function}({args[0]}, {literal(self.output_size)})"
