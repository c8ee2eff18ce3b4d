"""Activations beyond ReLU: GELU (transformers) and ReLU6 (MobileNets)."""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F

from supernet import Op, OpTraits


class Gelu(Op):
    """GELU, exact (`approximate="none"`) or its tanh approximation (`approximate="tanh"`)."""

    traits = OpTraits(pure=True, layout_agnostic=True)

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ValueError(f"Gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        super().__init__(approximate=approximate)

    def flops(self) -> Any:
        return math.prod(self.shape()[1:])

    def _forward_implementation(self, x):
        return F.gelu(x, approximate=self.approximate)

    def source(self, args, out):
        return f"{out} = F.gelu({args[0]}, approximate={self.approximate!r})"


class Relu6(Op):
    """min(max(x, 0), 6)."""

    traits = OpTraits(pure=True, layout_agnostic=True)

    def flops(self) -> Any:
        return math.prod(self.shape()[1:])

    def _forward_implementation(self, x):
        return F.relu6(x)

    def source(self, args, out):
        return f"{out} = F.relu6({args[0]})"
