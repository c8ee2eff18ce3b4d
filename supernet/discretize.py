"""Discretization: the fixed graph of one architecture, with every ChoiceOp replaced by its option."""

from __future__ import annotations

import copy
import sys
from typing import Any, Mapping

from .choice import ChoiceOp
from .expression import lazy
from .graph import get_nodes, topological_order
from .node import Node, Op, Tensor
from .parameters import CategoricalParameter, IntScalarParameter, Parameter
from .parametrization import parametrization


def check_architecture(space: Node, architecture: Mapping[str, Any]) -> None:
    """Raise KeyError for an id that is no switch or parameter of `space`, ValueError for an
    option index or value the switch or parameter does not allow (naming it and what it allows)."""
    params = parametrization(space)
    switches = {c.switch.id for c in get_nodes(space) if isinstance(c, ChoiceOp)}
    for key, value in architecture.items():
        if key not in params:
            raise KeyError(
                f"architecture names unknown switch or parameter {key!r}; known switches: {sorted(switches)}"
            )
        allowed = params[key].values() if hasattr(params[key], "values") else []
        boolean_for_number = isinstance(value, bool) and not any(isinstance(a, bool) for a in allowed)
        if boolean_for_number or value not in allowed:
            what = "option" if key in switches else "value"
            raise ValueError(f"architecture picks {what} {value!r} for {key}, which allows {allowed}")


def discretize(space: Node, architecture: Mapping[str, Any]) -> Node:
    """A copy of `space` in which each ChoiceOp is replaced by the option `architecture` selects.

    `architecture` maps switch ids to option indices and value-parameter ids (kernel sizes,
    widths...) to values; a chosen value parameter is narrowed to that single value, so the weights
    it sizes are allocated at the chosen size. Parameters it omits keep their current value and
    domain. Node ids are kept, so weights can be carried over by id. `space` is not modified.
    """
    check_architecture(space, architecture)
    switches = {c.switch.id for c in get_nodes(space) if isinstance(c, ChoiceOp)}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 100_000))  # deepcopy recurses along operand/user links
    try:
        fixed = copy.deepcopy(space)
    finally:
        sys.setrecursionlimit(limit)
    copied = parametrization(fixed)
    for key, value in architecture.items():
        if key not in switches:
            _narrow(copied[key], value)
    choices = [n for n in get_nodes(fixed) if isinstance(n, ChoiceOp)]
    for choice in choices:
        if choice.switch.id in architecture:
            choice.switch.set_current(architecture[choice.switch.id])
    replacement: dict[int, Node] = {}
    for choice in choices:
        replacement[id(choice)] = choice.operands[choice.active_index()]

    def resolve(node: Node) -> Node:
        while id(node) in replacement:
            node = replacement[id(node)]
        return node

    for node in list(get_nodes(fixed)):
        node.operands = [resolve(o) for o in node.operands]
    output = resolve(fixed)
    reachable = list(get_nodes(output))
    alive = {id(n) for n in reachable}
    for node in reachable:
        node.users = [u for u in node.users if id(u) in alive]
        for operand in node.operands:
            if not any(u is node for u in operand.users):
                operand.users.append(node)
    return output


def _narrow(param: Parameter, value: Any) -> None:
    """Restrict a (copied) parameter's domain to one value: it no longer varies nor is searched."""
    param.set_current(value)
    if isinstance(param, CategoricalParameter):
        param.choices = [param.current_value]
    elif isinstance(param, IntScalarParameter):
        param.min = param.max = param.current_value
    param.searchable = False


def describe(output: Node) -> list[dict[str, Any]]:
    """A plain, JSON-serializable spec of a (discretized) graph: one entry per node, in order."""
    spec = []
    for node in topological_order(output):
        entry: dict[str, Any] = {"id": node.id, "type": type(node).__name__, "operands": [o.id for o in node.operands]}
        if isinstance(node, Tensor):
            entry["role"] = node.role
        if isinstance(node, Op):
            entry["attributes"] = {k: _plain(lazy(v)) for k, v in node.attributes.items()}
        try:
            entry["shape"] = [_plain(s) for s in lazy(node.shape())]
        except Exception:  # a shape that cannot be evaluated is left out of the description
            pass
        spec.append(entry)
    return spec


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return repr(value)
