"""Hardware cost: FLOPs (multiply-accumulates), parameter counts and measured latency of a space.

Every op reports `flops()` per sample as a symbolic expression of its shapes; parameters are the
elements of the weights it owns; latency (ms per forward pass) is looked up in a measured
`LatencyTable` (`kind="latency"`, `table=...`), its per-network constant added once. An op whose
class defines no `flops()` is priced at 0 with an `UndeclaredCostWarning` naming it, once per
class (a free op declares `flops() -> 0`). `architecture_cost` prices the architecture the current
parametrization selects; `expected_cost` prices the supernet under an architecture distribution,
differentiably in that distribution (each node weighted by the probability that it runs).
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Callable, Mapping, Optional, Union

import torch

from .choice import ChoiceOp, active_subgraph, switch_values
from .expression import lazy, walk
from .graph import topological_order
from .latency import LatencyTable
from .node import Node, Op, Tensor
from .parameters import Parameter

CostKind = Union[str, Callable[[Node], Any]]
COST_KINDS = ("flops", "params", "latency")


def node_cost(node: Node, kind: CostKind = "flops", table: Optional[LatencyTable] = None) -> Any:
    """The cost of one node as an expression: its FLOPs, its own trainable weight elements, its
    latency in `table` (ms), or `kind(node)`."""
    _check_table(kind, table)
    if callable(kind):
        return kind(node)
    if kind == "latency":
        return table.node_latency(node)
    if kind == "flops":
        if not isinstance(node, Op) or isinstance(node, ChoiceOp):
            return 0
        warn_undeclared_flops(node)
        return node.flops()
    if kind == "params":
        owned = [t for t in node.operands if isinstance(t, Tensor) and t.owner is node and t.trainable]
        return sum(math.prod(t.shape()) for t in owned)
    raise ValueError(f"unknown cost kind {kind!r}; use one of {COST_KINDS} or a callable node -> cost")


_WARNED: set[type] = set()


class UndeclaredCostWarning(UserWarning):
    """`cost="flops"` met an op whose class declares no `flops()`: it is priced at 0."""


def declares_flops(op: Op) -> bool:
    """Whether the op's class declares its FLOPs (defines `flops()`; the base `Op.flops` is the undeclared default)."""
    return type(op).flops is not Op.flops


def warn_undeclared_flops(op: Op) -> None:
    """Warn once per op class (UndeclaredCostWarning) when `op` declares no FLOPs: a user's op that
    computes but defines no `flops()` would make `cost="flops"` (and a FLOPs budget) blind to it.
    An op that is truly free declares so with `def flops(self): return 0`."""
    cls = type(op)
    if declares_flops(op) or cls in _WARNED:
        return
    _WARNED.add(cls)
    warnings.warn(
        f"cost='flops': op {op.id} ({cls.__module__}.{cls.__qualname__}) declares no FLOPs, so it is priced at 0 "
        f"(every {cls.__name__} is); define {cls.__name__}.flops() returning its multiply-accumulates per sample "
        "(return 0 if it is free) to price it",
        UndeclaredCostWarning,
        stacklevel=3,
    )


def architecture_cost(output: Node, kind: CostKind = "flops", table: Optional[LatencyTable] = None) -> float:
    """Cost of the architecture the current parametrization selects (inactive options are free);
    for `kind="latency"`, the predicted end-to-end latency (ms) from `table`."""
    _check_table(kind, table)
    if kind == "latency":
        return table.predict(output)
    return float(sum(lazy(node_cost(n, kind)) for n in active_subgraph(output, topological_order(output))))


def activation_probabilities(output: Node, distributions: Mapping[str, torch.Tensor]) -> dict[Node, Any]:
    """Probability that each node runs when every switch draws its option from `distributions`
    (switch id -> probabilities over its values). Exact for options that do not share nodes; a
    node shared by several options gets the (clipped) sum, an upper bound."""
    order = topological_order(output)
    probability: dict[Node, Any] = {output: 1.0}
    for node in reversed(order):
        mass = probability.get(node, 0.0)
        if isinstance(mass, torch.Tensor):
            mass = torch.clamp(mass, max=1.0)
        elif mass > 1.0:
            mass = 1.0
        probability[node] = mass
        if isinstance(node, ChoiceOp) and node.switch.id in distributions:
            weights = distributions[node.switch.id]
            slots = {index: j for j, index in enumerate(switch_values(node.switch))}
            for i, operand in enumerate(node.operands):
                if i in slots:
                    probability[operand] = probability.get(operand, 0.0) + mass * weights[slots[i]]
        elif isinstance(node, ChoiceOp):  # a switch the distribution leaves out stays at its value
            chosen = node.operands[node.active_index()]
            probability[chosen] = probability.get(chosen, 0.0) + mass
        else:
            for operand in node.operands:
                probability[operand] = probability.get(operand, 0.0) + mass
    return probability


def expected_cost(
    output: Node,
    distributions: Mapping[str, torch.Tensor],
    kind: CostKind = "flops",
    table: Optional[LatencyTable] = None,
) -> torch.Tensor:
    """E[cost] under `distributions`: sum over nodes of P(node runs) * E[cost(node)]; a tensor with
    gradients flowing into the distributions (hence into the architecture logits). A node whose
    cost depends on value parameters with a distribution (kernel size, width) is averaged over them.
    For `kind="latency"` the table's per-network constant is added."""
    device = next(iter(distributions.values())).device if distributions else None  # the logits' device
    total: Any = torch.zeros((), device=device) + _constant(kind, table)
    for node, probability in activation_probabilities(output, distributions).items():
        cost = expected_value(node_cost(node, kind, table), distributions)
        if isinstance(cost, torch.Tensor) or cost:
            total = total + probability * cost
    return total


def expected_value(expression: Any, distributions: Mapping[str, torch.Tensor]) -> Any:
    """E[expression] over the parameters in it that `distributions` covers (others stay at their
    current value): a float, or a tensor differentiable in the distributions."""
    params, seen = [], set()
    for item in walk(expression):
        if isinstance(item, Parameter) and item.id in distributions and id(item) not in seen:
            seen.add(id(item))
            params.append(item)
    if not params:
        return float(lazy(expression))
    saved = [p.current_value for p in params]
    total: Any = 0.0
    try:
        for assignment in itertools.product(*(enumerate(p.values()) for p in params)):
            weight: Any = 1.0
            for p, (j, value) in zip(params, assignment):
                p.current_value = value
                weight = weight * distributions[p.id][j]
            total = total + weight * float(lazy(expression))
    finally:
        for p, value in zip(params, saved):
            p.current_value = value
    return total


def _check_table(kind: CostKind, table: Optional[LatencyTable]) -> None:
    if kind == "latency" and table is None:
        raise ValueError("cost kind 'latency' needs table= (a supernet.latency.LatencyTable measured for this space)")
    if table is not None and kind != "latency":
        raise ValueError(f"table= is for cost kind 'latency', not {kind!r}")


def _constant(kind: CostKind, table: Optional[LatencyTable]) -> float:
    _check_table(kind, table)
    return table.constant_ms if kind == "latency" else 0.0
