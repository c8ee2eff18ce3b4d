"""Positional encodings added to (N, T, C) token sequences: fixed sinusoids or learned vectors."""

from __future__ import annotations

import math
from typing import Any

import torch

from supernet import Op, OpTraits, Tensor, lazy
from supernet.node import Node


def sinusoids(tokens: int, features: int, base: float = 10000.0, dtype: Any = None, device: Any = None) -> torch.Tensor:
    """The (tokens, features) table of Vaswani et al.: sin(pos * f_i) on even features, cos on
    odd ones, frequencies f_i interpolated geometrically from 1 to 1/base."""
    position = torch.arange(tokens, dtype=torch.float32, device=device)[:, None]
    frequency = torch.exp(
        torch.arange(0, features, 2, dtype=torch.float32, device=device) * (-math.log(base) / features)
    )
    table = torch.zeros(tokens, features, device=device)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: features // 2])
    return table.to(dtype) if dtype is not None else table


class PositionalEncoding(Op):
    """`PositionalEncoding(base=10000.0)(x[, table])` adds a position code to every token of x
    (N, T, C): the sinusoid table when called on x alone, else the learned `table` weight (T, C)
    (see `positional_encoding`)."""

    traits = OpTraits(pure=True)

    n_inputs = 1

    def __init__(self, base: float = 10000.0) -> None:
        super().__init__(base=base)

    def check(self) -> None:
        x = self.operands[0]
        if len(x.shape()) != 3:
            raise ValueError(f"{self.id} expects (N, T, C) tokens, got shape {lazy(x.shape())}")
        if len(self.operands) > 1 and tuple(lazy(self.operands[1].shape())) != tuple(lazy(x.shape()[1:])):
            raise ValueError(
                f"{self.id}: the learned table is {lazy(self.operands[1].shape())}, the tokens {lazy(x.shape()[1:])}"
            )

    def flops(self) -> Any:
        return math.prod(self.shape()[1:])

    def _forward_implementation(self, x, table=None):
        if table is None:  # a few sin/cos per token: cheaper to recompute than to cache on the graph
            table = sinusoids(x.shape[1], x.shape[2], lazy(self.base), x.dtype, x.device)
        return x + table

    def source(self, args, out):
        if len(args) > 1:
            return f"{out} = {args[0]} + {args[1]}"
        _, tokens, features = lazy(self.operands[0].shape())
        x, base = args[0], lazy(self.base)
        # the sinusoids() table: sin(position * f_k) on feature 2k, cos on 2k + 1, f_k = base ** (-2k / features)
        return "\n".join(
            [
                f"{out}_angle = torch.arange({tokens}, dtype=torch.float32, device={x}.device)[:, None] * torch.exp("
                f"torch.arange(0, {features}, 2, dtype=torch.float32, device={x}.device) * {-math.log(base) / features!r})",
                f"{out}_table = torch.stack([torch.sin({out}_angle), torch.cos({out}_angle)], dim=-1)"
                f".reshape([{tokens}, -1])[:, :{features}]",
                f"{out} = {x} + {out}_table.to({x}.dtype)",
            ]
        )


def positional_encoding(x: Node, learned: bool = False, base: float = 10000.0) -> Op:
    """Adds positions to x (N, T, C): fixed sinusoids, or (`learned=True`) a trained (T, C) table."""
    if not learned:
        return PositionalEncoding(base=base)(x)
    _, tokens, features = x.shape()
    table = Tensor(name="table", shape=(tokens, features), axis=("T", "C"), init="normal")
    return PositionalEncoding(base=base)(x, table)
