"""BasicExecutor: runs the architecture the current parametrization selects, as an nn.Module."""

from __future__ import annotations

from typing import Any, Optional

import torch

from .choice import ChoiceOp, active_subgraph
from .executor import GraphExecutor
from .node import Node, Tensor


class BasicExecutor(GraphExecutor):
    """Runs only the path each ChoiceOp's switch currently selects, with the shared weights sliced
    to the current parameter values. Changing the parametrization never reallocates weights."""

    def __init__(self, net: Node, seed: Optional[int] = None) -> None:
        super().__init__(net, seed=seed)
        self._choices = [n for n in self._nodes if isinstance(n, ChoiceOp)]
        self._plans: dict[tuple[int, ...], list[Node]] = {}

    def active_nodes(self) -> list[Node]:
        """The nodes the current choices need, in execution order."""
        key = tuple(choice.active_index() for choice in self._choices)
        plan = self._plans.get(key)
        if plan is None:
            plan = active_subgraph(self._output, self._nodes)
            self._plans[key] = plan
        return plan

    def forward(self, *inputs: torch.Tensor, **named_inputs: torch.Tensor) -> Any:
        """Run the current architecture on the input tensor(s) (by position or input name)."""
        values: dict[Node, Any] = self._bind_inputs(inputs, named_inputs)
        for node in self.active_nodes():
            if isinstance(node, Tensor):
                if node.role == "weight":
                    values[node] = self.weight(node)
            elif isinstance(node, ChoiceOp):
                values[node] = values[node.operands[node.active_index()]]
            else:
                values[node] = node.compute(*(values[o] for o in node.operands), training=self.training)
        return values[self._output]
