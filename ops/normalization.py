"""Batch normalisation over the channel axis of (N, C), (N, C, L) or (N, C, H, W) inputs."""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F

from supernet import Op, OpTraits, Tensor, lazy
from supernet.export_code import literal
from supernet.traits import Affine
from supernet.node import Node


class BatchNorm(Op):
    """`BatchNorm(momentum=0.1, eps=1e-5, affine=True)(x)` creates its own weight, bias and running
    statistics (buffers, sliced to the current channel count like every shared weight)."""

    traits = OpTraits(deterministic=True, affine=Affine(axis=1, scale=3, shift=4), layout_agnostic=True)

    n_inputs = 1
    mode_arguments = ("training",)
    running_statistics = ("running_mean", "running_var")

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(momentum=momentum, eps=eps, affine=affine)

    def __call__(self, *operands: Node) -> "BatchNorm":
        if len(operands) != 1:
            return super().__call__(*operands)
        channels = operands[0].shape()[1]
        stats = [
            Tensor("running_mean", (channels,), ("C",), grad=False, init="zeros"),
            Tensor("running_var", (channels,), ("C",), grad=False, init="ones"),
        ]
        affine = (
            [Tensor("weight", (channels,), ("C",), init="ones"), Tensor("bias", (channels,), ("C",), init="zeros")]
            if self.affine
            else []
        )
        return super().__call__(operands[0], *stats, *affine)

    def check(self) -> None:
        if len(self.operands[0].shape()) < 2:
            raise ValueError(f"{self.id} expects an input with a channel axis (N, C, ...)")

    def flops(self) -> Any:
        return 2 * math.prod(self.operands[0].shape()[1:])

    def _forward_implementation(self, x, running_mean, running_var, weight=None, bias=None, *, training):
        return F.batch_norm(x, running_mean, running_var, weight, bias, training, lazy(self.momentum), lazy(self.eps))

    def source(self, args, out):
        x, mean, var, weight, bias = (*args, None, None)[:5]
        return f"{out} = F.batch_norm({x}, {mean}, {var}, {weight}, {bias}, self.training, {literal(self.momentum)}, {literal(self.eps)})"
