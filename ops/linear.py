"""Fully connected layer."""

from __future__ import annotations

import math
from typing import Any

import torch.nn.functional as F

from supernet import Op, OpTraits, Tensor, lazy
from supernet.node import Node


class Linear(Op):
    """`Linear()(x, weight[, bias])` on the last axis; weight is (out_features, in_features)."""

    traits = OpTraits(pure=True, layout_agnostic=True)

    n_inputs = 1

    def check(self) -> None:
        x, *weights = self.operands
        if not weights:
            raise TypeError(f"{self.id} needs a weight operand")
        if lazy(x.shape()[-1]) != lazy(weights[0].shape()[1]):
            raise ValueError(
                f"{self.id}: input has {lazy(x.shape()[-1])} features but weight expects {lazy(weights[0].shape()[1])}"
            )

    def shape_fun(self) -> tuple:
        return (*self.operands[0].shape()[:-1], self.operands[1].shape()[0])

    def flops(self) -> Any:
        return math.prod(self.shape()[1:]) * self.operands[1].shape()[1]

    def _forward_implementation(self, x, weight, bias=None):
        return F.linear(x, weight, bias)

    def source(self, args, out):
        x, weight, bias = (*args, None)[:3]
        return f"{out} = F.linear({x}, {weight}, {bias})"


def linear(x: Node, out_features: Any, bias: bool = True) -> Op:
    """A Linear on `x` with new weight (out_features, in_features) and bias Tensors."""
    weight = Tensor(name="weight", shape=(out_features, x.shape()[-1]), axis=("O", "I"))
    operands = [x, weight]
    if bias:
        operands.append(Tensor(name="bias", shape=(out_features,), axis=("O",), init="zeros"))
    return Linear()(*operands)
