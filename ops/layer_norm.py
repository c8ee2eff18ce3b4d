"""Layer normalisation over the last axis (the features of (N, T, C) token sequences)."""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F

from supernet import Op, OpTraits, Tensor, lazy
from supernet.export_code import literal
from supernet.traits import Affine
from supernet.node import Node


class LayerNorm(Op):
    """`LayerNorm(eps=1e-5, affine=True)(x)` normalises every position over the last axis and
    creates its own weight and bias (of the last axis's size, sliced like every shared weight)."""

    traits = OpTraits(pure=True, affine=Affine(axis=-1, scale=1, shift=2))

    n_inputs = 1

    def __init__(self, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(eps=eps, affine=affine)

    def __call__(self, *operands: Node) -> "LayerNorm":
        if len(operands) != 1 or not self.affine:
            return super().__call__(*operands)
        features = operands[0].shape()[-1]
        affine = [Tensor("weight", (features,), ("C",), init="ones"), Tensor("bias", (features,), ("C",), init="zeros")]
        return super().__call__(operands[0], *affine)

    def check(self) -> None:
        if len(self.operands[0].shape()) < 2:
            raise ValueError(
                f"{self.id} expects an input with a batch and a feature axis, got shape {lazy(self.operands[0].shape())}"
            )

    def flops(self) -> Any:
        return 2 * math.prod(self.operands[0].shape()[1:])  # normalise, then scale and shift

    def _forward_implementation(self, x, weight=None, bias=None):
        return F.layer_norm(x, (x.shape[-1],), weight, bias, lazy(self.eps))

    def source(self, args, out):
        x, weight, bias = (*args, None, None)[:3]
        features = lazy(self.operands[0].shape()[-1])
        return f"{out} = F.layer_norm({x}, [{features}], {weight}, {bias}, {literal(self.eps)})"
