"""The hardware term of the architecture loss: the supernet's expected FLOPs, parameters or latency."""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Optional

import torch

from supernet import SupernetExecutor
from supernet.cost import CostKind, architecture_cost, expected_cost
from supernet.latency import LatencyTable
from supernet.parametrization import current_values, set_parametrization

from .connectivity import is_connected


class CostPenalty:
    """`weight * E[cost] / reference` (reference: the expected cost under the initial, uniform
    distribution, so weights are comparable across spaces), or with a `target`,
    `weight * relu(E[cost] / target - 1)`: only an expected cost above the target is penalised.

    `kind="latency"` prices with a measured `table` (ms per forward pass at the table's batch size;
    the target is in the same unit); without one, a table is measured for the space now, on the
    supernet's device, with the current thread count and batch size 1."""

    def __init__(
        self,
        supernet: SupernetExecutor,
        kind: CostKind = "flops",
        weight: float = 1.0,
        target: Optional[float] = None,
        table: Optional[LatencyTable] = None,
        progress: bool = True,
    ) -> None:
        if weight < 0:
            raise ValueError(f"cost_weight must be >= 0, got {weight}")
        if target is not None and target <= 0:
            raise ValueError(f"cost_target must be > 0, got {target}")
        if table is not None and kind != "latency":
            raise ValueError(f"latency_table= is used by cost='latency', not cost={kind!r}")
        if kind == "latency" and table is None:
            device = next(iter(supernet.parameters()), torch.empty(())).device
            table = LatencyTable.measure(supernet.output_node, device=device, progress=progress)
        self.supernet, self.kind, self.weight, self.target, self.table = supernet, kind, float(weight), target, table
        with torch.no_grad():
            self.reference = float(self.expected())
        if self.reference <= 0:
            raise ValueError(f"the space's expected {kind} cost is {self.reference}: nothing to trade accuracy against")

    def expected(self) -> torch.Tensor:
        """The expected cost under the current architecture distribution (differentiable)."""
        return expected_cost(self.supernet.output_node, self.supernet.distributions(), self.kind, self.table)

    def __call__(self) -> torch.Tensor:
        cost = self.expected()
        if self.target is None:
            return self.weight * cost / self.reference
        return self.weight * torch.relu(cost / self.target - 1.0)

    def architecture_cost(self, architecture: Mapping[str, Any]) -> float:
        """The cost of one architecture (switch id -> option index, value-parameter id -> value)."""
        space = self.supernet.output_node
        saved = current_values(space)
        try:
            set_parametrization(space, dict(architecture))
            return architecture_cost(space, self.kind, self.table)
        finally:
            set_parametrization(space, saved)

    def within_target(self, architecture: Mapping[str, Any]) -> dict[str, Any]:
        """`architecture` if its cost is within the target (or there is none); otherwise it with
        choices changed, greedily, until it is: each change is the one that buys the most cost
        per unit of log-probability lost under the search's distribution, except that a change
        reaching the target at a smaller loss is preferred; a change that leaves no path from the input
        to the output is never taken. Warns when even that cannot reach it."""
        chosen = dict(architecture)
        if self.target is None:
            return chosen
        probabilities, values = self.supernet.probabilities(), self.supernet.option_values()
        cost = self.architecture_cost(chosen)
        while cost > self.target:
            candidates = []  # (log-probability lost, cost, architecture)
            for sid, options in values.items():
                if sid not in chosen or chosen[sid] not in options:
                    continue
                here = _log(probabilities[sid][options.index(chosen[sid])])
                for j, value in enumerate(options):
                    if value == chosen[sid]:
                        continue
                    changed = {**chosen, sid: value}
                    if not is_connected(self.supernet.output_node, changed):
                        continue  # cheaper, but a dead network: never an answer to a budget
                    changed_cost = self.architecture_cost(changed)
                    if changed_cost < cost:
                        candidates.append((max(here - _log(probabilities[sid][j]), 0.0), changed_cost, changed))
            if not candidates:
                warnings.warn(
                    f"no architecture reachable by changing choices costs at most the cost_target {self.target} "
                    f"({self.kind}); the selection stops at {cost:.6g}",
                    RuntimeWarning,
                )
                break
            best = max(candidates, key=lambda c: (cost - c[1]) / max(c[0], 1e-12))
            reaching = [c for c in candidates if c[1] <= self.target and c[0] <= best[0]]
            _, cost, chosen = min(reaching, key=lambda c: c[0]) if reaching else best
        return chosen


def _log(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf
