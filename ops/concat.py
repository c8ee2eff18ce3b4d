"""Concatenation of several tensors along one axis (channels by default)."""

from __future__ import annotations

from typing import Any

import torch

from supernet import Op, OpTraits, lazy


class Concat(Op):
    """`Concat(axis=1)(*xs)`: joins two or more operands along `axis` (1: the channel axis of
    (N, C, ...) tensors); every other axis must agree. A data move: no multiply-accumulates."""

    traits = OpTraits(pure=True, layout_agnostic=True)

    min_inputs = 2

    def __init__(self, axis: int = 1) -> None:
        super().__init__(axis=axis)

    def _axis(self) -> int:
        rank = len(self.operands[0].shape())
        axis = self.axis + rank if self.axis < 0 else self.axis
        return axis

    def check(self) -> None:
        shapes = [lazy(o.shape()) for o in self.operands]
        rank = len(shapes[0])
        if not -rank <= self.axis < rank or self.axis in (0, -rank):
            raise ValueError(
                f"{self.id}: cannot concatenate {rank}-D operands along axis {self.axis} (the batch axis or out of range)"
            )
        axis = self._axis()
        if any(
            len(s) != rank
            or [d for i, d in enumerate(s) if i not in (0, axis)]
            != [d for i, d in enumerate(shapes[0]) if i not in (0, axis)]
            for s in shapes
        ):
            raise ValueError(f"{self.id}: operands must agree on every axis but {axis}, got shapes {shapes}")

    def shape_fun(self) -> tuple:
        axis = self._axis()
        first = self.operands[0].shape()
        total = first[axis]
        for operand in self.operands[1:]:
            total = total + operand.shape()[axis]
        return (*first[:axis], total, *first[axis + 1 :])

    def flops(self) -> Any:
        return 0

    def _forward_implementation(self, *xs):
        return torch.cat(xs, dim=self.axis)

    def source(self, args, out):
        return f"{out} = torch.cat([{', '.join(args)}], dim={self.axis})"
