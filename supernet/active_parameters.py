"""The parameters that influence the network under the current choices (HANNAH's
`get_active_parameters`): those of the nodes the active path runs, read through only the
selected option of every choice-dependent size."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional

from .choice import active_subgraph
from .expression import Select, lazy, walk
from .graph import topological_order
from .node import Op, Tensor
from .parameters import Parameter

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node


def active_walk(value: Any) -> Iterator[Any]:
    """Every sub-expression of `value` that its current value depends on: a `Select` (the size of
    a ChoiceOp's output) contributes its switch and the option it selects, not the others."""
    return walk(value, lambda e: [e.index, e.values[lazy(e.index)]] if isinstance(e, Select) else e.children())


def get_active_parameters(
    space: "Node", parametrization: Optional[dict[str, Parameter]] = None
) -> dict[str, Parameter]:
    """id -> parameter for every parameter that the current choices let influence `space`: the
    attributes of the ops on the active path (ChoiceOp switches included) and the sizes of their
    weights and inputs. `parametrization` (id -> parameter, default the space's) limits the result
    to those ids."""
    known = parametrization if parametrization is not None else space.parametrization()
    active: dict[str, Parameter] = {}
    for node in active_subgraph(space, topological_order(space)):
        sources = node.attributes.values() if isinstance(node, Op) else node.shape() if isinstance(node, Tensor) else ()
        for item in active_walk(tuple(sources)):
            if isinstance(item, Parameter) and item.id in known:
                active.setdefault(item.id, item)
    return dict(sorted(active.items()))


def inactive_choices(space: "Node", architecture: Mapping[str, Any]) -> list[str]:
    """The ids of `architecture` (switch id -> option index, value parameter id -> value) that do
    not influence `space` once those choices are made: the choices inside an option, or a block,
    that the architecture does not run (a dynamic-depth ChoiceOp at a lower depth). The parameters'
    current values are restored afterwards."""
    params = space.parametrization()
    chosen = {pid: params[pid] for pid in architecture if pid in params}
    saved = {pid: param.current_value for pid, param in chosen.items()}
    try:
        for pid, param in chosen.items():
            param.set_current(architecture[pid])
        active = get_active_parameters(space, chosen)
    finally:
        for pid, value in saved.items():
            chosen[pid].current_value = value
    return sorted(pid for pid in chosen if pid not in active)
