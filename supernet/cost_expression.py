"""`CostExpression`: the cost of the architecture the current choices select, as a symbolic
expression, so that conditions can bound it (`space.cond(CostExpression(space, "flops") < 1e6)`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cost import COST_KINDS, architecture_cost
from .expression import Expression

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node


class CostExpression(Expression):
    """`architecture_cost(output, kind)` ("flops": multiply-accumulates per sample, "params":
    trainable weight elements) at the parameters' current values. It has no interval bounds."""

    def __init__(self, output: "Node", kind: str = "flops") -> None:
        if kind not in COST_KINDS or kind == "latency":
            raise ValueError(f"CostExpression: kind must be 'flops' or 'params', got {kind!r}")
        self.output, self.kind = output, kind

    def evaluate(self) -> float:
        return architecture_cost(self.output, self.kind)

    def bounds(self) -> tuple[float, float]:
        raise TypeError(f"the {self.kind} of an architecture has no interval bounds here")

    def __repr__(self) -> str:
        return f"{self.kind}({self.output.id})"
