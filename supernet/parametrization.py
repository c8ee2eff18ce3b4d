"""Reading, sampling and setting all parameters of a graph at once, addressed by parameter id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .conditions import MAX_RESAMPLES, graph_conditions
from .walk import get_nodes
from .parameters import Parameter

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node


def parametrization(output: Node, flatten: bool = True) -> dict:
    """Parameters of the graph ending at `output`, id -> parameter (nested by id segments if not flat)."""
    flat: dict[str, Parameter] = {}
    for node in get_nodes(output):
        for param in node.params.values():
            other = flat.setdefault(param.id, param)
            if other is not param:
                raise ValueError(
                    f"duplicate parameter id {param.id!r}: two different parameters (node {node.id!r} shares its id "
                    "with another node); give the nodes distinct names or build them inside a @search_space / @scope"
                )
    if flatten:
        return flat
    nested: dict = {}
    for pid, param in flat.items():
        *path, leaf = pid.split(".")
        level = nested
        for segment in path:
            level = level.setdefault(segment, {})
        level[leaf] = param
    return nested


def sample(output: Node, seed: Optional[int] = None) -> dict[str, Any]:
    """Draw every parameter (in id order, so a seed fixes the result); returns id -> value.
    With conditions in the graph (`cond`), draws again until all of them hold (rejection
    sampling, at most `conditions.MAX_RESAMPLES` draws; then ValueError naming those that fail)."""
    rng = np.random.default_rng(seed)
    params = parametrization(output)
    conditions = graph_conditions(output)
    for _ in range(MAX_RESAMPLES if conditions else 1):
        drawn = {pid: params[pid].sample(rng) for pid in sorted(params)}
        broken = [c for c in conditions if not c.holds()]
        if not broken:
            return drawn
    shown = "; ".join(f"{c.owner}: {c.expression!r}" for c in broken)
    raise ValueError(
        f"sample: no parametrization satisfying the conditions in {MAX_RESAMPLES} draws; still broken: {shown}"
    )


def set_parametrization(output: Node, values: dict[str, Any]) -> None:
    """Set parameters by id. Every key and value is checked before any parameter changes."""
    params = parametrization(output)
    unknown = [k for k in values if k not in params]
    if unknown:
        raise KeyError(f"unknown parameter id(s) {unknown}; known ids: {sorted(params)}")
    resolved = {k: (v.current_value if isinstance(v, Parameter) else v) for k, v in values.items()}
    for key, value in resolved.items():
        if not params[key].contains(value):
            raise ValueError(f"parameter {key}: {value!r} is outside its domain {params[key].domain()}")
    for key, value in resolved.items():
        params[key].set_current(value)


def current_values(output: Node) -> dict[str, Any]:
    """id -> current value of every parameter."""
    return {pid: p.current_value for pid, p in parametrization(output).items()}
