"""Operators that only rearrange data: Flatten, Reshape, Permute."""
from __future__ import annotations

import math
from typing import Any, Sequence

from supernet import Op, OpTraits, lazy
from supernet.export_code import literal


class Flatten(Op):
    """Merges axes `start_dim`.. into one (the batch axis stays)."""

    traits = OpTraits(pure=True, layout_agnostic=True)

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__(start_dim=start_dim)

    def shape_fun(self) -> tuple:
        shape = self.operands[0].shape()
        merged = shape[self.start_dim]
        for size in shape[self.start_dim + 1:]:
            merged = merged * size
        return (*shape[: self.start_dim], merged)

    def _forward_implementation(self, x):
        return x.flatten(self.start_dim)

    def source(self, args, out):
        return f"{out} = {args[0]}.flatten({self.start_dim})"


class Reshape(Op):
    """Reshapes every sample to `shape` (the batch axis is kept in front)."""

    traits = OpTraits(pure=True)

    def __init__(self, shape: Sequence[Any]) -> None:
        super().__init__(new_shape=tuple(shape))

    def check(self) -> None:
        before = math.prod(lazy(self.operands[0].shape())[1:])
        after = math.prod(lazy(self.new_shape))
        if before != after:
            raise ValueError(f"{self.id}: cannot reshape {lazy(self.operands[0].shape())[1:]} ({before} elements) to {lazy(self.new_shape)} ({after})")

    def shape_fun(self) -> tuple:
        return (self.operands[0].shape()[0], *self.new_shape)

    def _forward_implementation(self, x):
        return x.reshape(x.shape[0], *lazy(self.new_shape))

    def source(self, args, out):
        sizes = ", ".join(literal(s) for s in self.new_shape)
        return f"{out} = {args[0]}.reshape([{args[0]}.shape[0], {sizes}])"


class Permute(Op):
    """Reorders the axes (a permutation of all of them, batch axis included)."""

    traits = OpTraits(pure=True)

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__(dims=tuple(dims))

    def check(self) -> None:
        if sorted(self.dims) != list(range(len(self.operands[0].shape()))):
            raise ValueError(f"{self.id}: dims {self.dims} is not a permutation of the input's {len(self.operands[0].shape())} axes")

    def shape_fun(self) -> tuple:
        shape = self.operands[0].shape()
        return tuple(shape[d] for d in self.dims)

    def _forward_implementation(self, x):
        return x.permute(*self.dims)

    def source(self, args, out):
        return f"{out} = {args[0]}.permute({literal(list(self.dims))})"
