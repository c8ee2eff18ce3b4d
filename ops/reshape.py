"""Operators that only rearrange data: Flatten, Reshape, Permute."""

from __future__ import annotations

import math
from typing import Any, Sequence

from supernet import Op, OpTraits, lazy
from supernet.export_code import literal


class Flatten(Op):
    """Merges axes `start_dim`.. into one (the batch axis stays)."""

    traits = OpTraits(pure=True, layout_agnostic=True)

    def flops(self) -> int:
        return 0  # declared free: no multiply-accumulate (supernet.cost warns on ops that declare nothing)

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__(start_dim=start_dim)

    def shape_fun(self) -> tuple:
        shape = self.operands[0].shape()
        merged = shape[self.start_dim]
        for size in shape[self.start_dim + 1 :]:
            merged = merged * size
        return (*shape[: self.start_dim], merged)

    def _forward_implementation(self, x):
        return x.flatten(self.start_dim)

    def source(self, args, out):
        return f"{out} = {args[0]}.flatten({self.start_dim})"


class Reshape(Op):
    """Reshapes every sample to `shape` (the batch axis is kept in front), or with
    `batch=False` (HANNAH's convention) the whole declared tensor, batch axis included.

    One entry may be -1: the size that keeps the number of elements (per sample, or of the whole
    declared shape with `batch=False`). `batch=False` fixes the batch size the graph declares: the
    first axis of the result is whatever the reshape gives at run time."""

    traits = OpTraits(pure=True)

    def flops(self) -> int:
        return 0  # declared free: no multiply-accumulate (supernet.cost warns on ops that declare nothing)

    def __init__(self, shape: Sequence[Any], batch: bool = True) -> None:
        super().__init__(new_shape=tuple(shape), batch=batch)

    def _source_sizes(self) -> tuple:
        shape = self.operands[0].shape()
        return tuple(shape[1:]) if self.batch else tuple(shape)

    def _resolved(self) -> tuple:
        """The target shape with -1 replaced by the size that keeps the element count."""
        free = [i for i, s in enumerate(self.new_shape) if isinstance(s, int) and s == -1]
        if len(free) > 1:
            raise ValueError(f"{self.id}: at most one -1 in the shape {self.new_shape}")
        if not free:
            return self.new_shape
        total = math.prod(self._source_sizes())
        known = math.prod(s for i, s in enumerate(self.new_shape) if i != free[0])
        return tuple(total // known if i == free[0] else s for i, s in enumerate(self.new_shape))

    def check(self) -> None:
        bad = [s for s in self.new_shape if isinstance(s, int) and (s == 0 or s < -1)]
        if bad:
            raise ValueError(f"{self.id}: sizes must be positive (or one -1), got {self.new_shape}")
        source = lazy(self._source_sizes())
        before = math.prod(source)
        resolved = lazy(self._resolved())
        after = math.prod(resolved)
        if before != after:
            raise ValueError(
                f"{self.id}: cannot reshape {source} ({before} elements) to {lazy(self.new_shape)} "
                f"({resolved}: {after})"
            )

    def shape_fun(self) -> tuple:
        if not self.batch:
            return self._resolved()
        return (self.operands[0].shape()[0], *self._resolved())

    def _forward_implementation(self, x):
        if not self.batch:
            return x.reshape(*lazy(self.new_shape))
        return x.reshape(x.shape[0], *lazy(self.new_shape))

    def source(self, args, out):
        sizes = ", ".join(literal(s) for s in self.new_shape)
        if not self.batch:
            return f"{out} = {args[0]}.reshape([{sizes}])"
        return f"{out} = {args[0]}.reshape([{args[0]}.shape[0], {sizes}])"


class Permute(Op):
    """Reorders the axes (a permutation of all of them, batch axis included)."""

    traits = OpTraits(pure=True)

    def flops(self) -> int:
        return 0  # declared free: no multiply-accumulate (supernet.cost warns on ops that declare nothing)

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__(dims=tuple(dims))

    def check(self) -> None:
        if sorted(self.dims) != list(range(len(self.operands[0].shape()))):
            raise ValueError(
                f"{self.id}: dims {self.dims} is not a permutation of the input's {len(self.operands[0].shape())} axes"
            )

    def shape_fun(self) -> tuple:
        shape = self.operands[0].shape()
        return tuple(shape[d] for d in self.dims)

    def _forward_implementation(self, x):
        return x.permute(*self.dims)

    def source(self, args, out):
        return f"{out} = {args[0]}.permute({literal(list(self.dims))})"
