"""InterleaveChannels: the channel shuffle between two grouped convolutions (ShuffleNet)."""

from __future__ import annotations

from typing import Any

import torch

from supernet import Op, OpTraits, lazy
from supernet.export_code import literal


class InterleaveChannels(Op):
    """`InterleaveChannels(step_size)(x)`: channels reordered as x[:, 0::s], x[:, 1::s], ...
    (s = `step_size`, an int or expression such as a `Groups` parameter); the shape is kept."""

    traits = OpTraits(pure=True)

    def flops(self) -> int:
        return 0  # declared free: no multiply-accumulate (supernet.cost warns on ops that declare nothing)

    def __init__(self, step_size: Any) -> None:
        super().__init__(step_size=step_size)

    def check(self) -> None:
        if len(self.operands[0].shape()) < 2:
            raise ValueError(
                f"{self.id} interleaves the channel axis of (N, C, ...) inputs, "
                f"got shape {lazy(self.operands[0].shape())}"
            )
        step = lazy(self.step_size)
        if not isinstance(step, int) or step < 1:
            raise ValueError(f"{self.id}: step_size must be a positive int, got {step!r}")

    def _forward_implementation(self, x):
        step = lazy(self.step_size)
        return torch.cat([x[:, shift::step] for shift in range(step)], dim=1)

    def source(self, args, out):
        step = literal(self.step_size)
        return f"{out} = torch.cat([{args[0]}[:, s::{step}] for s in range({step})], dim=1)"
