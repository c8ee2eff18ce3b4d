"""The hardware term of the architecture loss: the supernet's expected FLOPs or parameters."""
from __future__ import annotations

from typing import Optional

import torch

from supernet import SupernetExecutor
from supernet.cost import CostKind, expected_cost


class CostPenalty:
    """`weight * E[cost] / reference` (reference: the expected cost under the initial, uniform
    distribution, so weights are comparable across spaces), or with a `target`,
    `weight * relu(E[cost] / target - 1)`: only an expected cost above the target is penalised."""

    def __init__(self, supernet: SupernetExecutor, kind: CostKind = "flops", weight: float = 1.0, target: Optional[float] = None) -> None:
        if weight < 0:
            raise ValueError(f"cost_weight must be >= 0, got {weight}")
        if target is not None and target <= 0:
            raise ValueError(f"cost_target must be > 0, got {target}")
        self.supernet, self.kind, self.weight, self.target = supernet, kind, float(weight), target
        with torch.no_grad():
            self.reference = float(self.expected())
        if self.reference <= 0:
            raise ValueError(f"the space's expected {kind} cost is {self.reference}: nothing to trade accuracy against")

    def expected(self) -> torch.Tensor:
        """The expected cost under the current architecture distribution (differentiable)."""
        return expected_cost(self.supernet.output_node, self.supernet.distributions(), self.kind)

    def __call__(self) -> torch.Tensor:
        cost = self.expected()
        if self.target is None:
            return self.weight * cost / self.reference
        return self.weight * torch.relu(cost / self.target - 1.0)
