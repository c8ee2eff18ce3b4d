"""Shape-preserving operators: activations, sums, identity, zero, dropout."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from supernet import Op, OpTraits, lazy


def _elements(node) -> Any:
    return math.prod(node.shape()[1:])


class Relu(Op):
    """max(x, 0)."""

    traits = OpTraits(pure=True, layout_agnostic=True)

    def flops(self) -> Any:
        return _elements(self)

    def _forward_implementation(self, x):
        return F.relu(x)

    def source(self, args, out):
        return f"{out} = F.relu({args[0]})"


class Add(Op):
    """The sum of all operands (two or more, of equal shape)."""

    traits = OpTraits(pure=True, sum=True, layout_agnostic=True)

    min_inputs = 2

    def check(self) -> None:
        shapes = [lazy(o.shape()) for o in self.operands]
        if any(len(s) != len(shapes[0]) or tuple(s[1:]) != tuple(shapes[0][1:]) for s in shapes):
            raise ValueError(f"{self.id}: operands have different shapes {shapes}")

    def flops(self) -> Any:
        return (len(self.operands) - 1) * _elements(self)

    def _forward_implementation(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    def source(self, args, out):
        return f"{out} = {' + '.join(args)}"


class Identity(Op):
    """Returns its input."""

    traits = OpTraits(pure=True, layout_agnostic=True)

    def flops(self) -> int:
        return 0  # declared free: no multiply-accumulate (supernet.cost warns on ops that declare nothing)

    def _forward_implementation(self, x):
        return x

    def source(self, args, out):
        return f"{out} = {args[0]}"


class Zero(Op):
    """All zeros of the input's shape (spatial axes reduced by `stride`, as DARTS's `none`)."""

    traits = OpTraits(pure=True, zero=True, layout_agnostic=True)

    def flops(self) -> int:
        return 0  # declared free: no multiply-accumulate (supernet.cost warns on ops that declare nothing)

    def __init__(self, stride: Any = 1) -> None:
        super().__init__(stride=stride)

    def shape_fun(self) -> tuple:
        shape = self.operands[0].shape()
        return (*shape[:2], *[(size - 1) // self.stride + 1 for size in shape[2:]])

    def _forward_implementation(self, x):
        stride = lazy(self.stride)
        if stride != 1:
            x = x[(slice(None), slice(None), *[slice(None, None, stride)] * (x.dim() - 2))]
        return torch.zeros_like(x)

    def source(self, args, out):
        stride, rank = lazy(self.stride), len(self.operands[0].shape())
        x = args[0] if stride == 1 else f"{args[0]}[:, :, {', '.join([f'::{stride}'] * (rank - 2))}]"
        return f"{out} = torch.zeros_like({x})"


class Dropout(Op):
    """Zeroes elements with probability `p` in training; the identity in eval."""

    traits = OpTraits(layout_agnostic=True)

    def flops(self) -> int:
        return 0  # declared free: no multiply-accumulate (supernet.cost warns on ops that declare nothing)

    mode_arguments = ("training",)

    def __init__(self, p: Any = 0.5) -> None:
        super().__init__(p=p)

    def _forward_implementation(self, x, *, training):
        return F.dropout(x, lazy(self.p), training)

    def source(self, args, out):
        return f"{out} = F.dropout({args[0]}, {float(lazy(self.p))!r}, self.training)"
