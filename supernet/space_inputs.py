"""The inputs a search space was built on, and the check that its output depends on each of them.

`@search_space` records the Tensors passed to the space function. A space whose output cannot be
reached from one of them (its options read a constant Tensor made inside the function, say) would
train and export a network that ignores its data, with every executor feeding the batches to
whatever Tensor the graph reads instead; `check_inputs_used` refuses it when an executor is built.
"""

from __future__ import annotations

import weakref
from typing import Iterable, Sequence

from .node import Node, Tensor

# output node -> (space function name, the input Tensors it was given); weak: spaces come and go
_RECORDED: "weakref.WeakKeyDictionary[Node, tuple[str, tuple[Tensor, ...]]]" = weakref.WeakKeyDictionary()


def record_space_inputs(output: Node, space_name: str, arguments: Iterable[object]) -> None:
    """Remember the data Tensors among `arguments` as the inputs of the space ending at `output`."""
    inputs = tuple(a for a in arguments if isinstance(a, Tensor) and a.role != "weight")
    _RECORDED[output] = (space_name, inputs)


def space_inputs(output: Node) -> tuple[Tensor, ...]:
    """The input Tensors the space ending at `output` was built on (empty: not built by `@search_space`)."""
    return _RECORDED.get(output, ("", ()))[1]


def check_inputs_used(output: Node, nodes: Sequence[Node]) -> None:
    """Raise ValueError when the output of a `@search_space` does not depend on one of its inputs,
    naming the unused input and the Tensors the graph reads instead."""
    space_name, inputs = _RECORDED.get(output, ("", ()))
    present = {id(n) for n in nodes}
    unused = [t for t in inputs if id(t) not in present]
    if not unused:
        return
    read = [n.id for n in nodes if isinstance(n, Tensor) and n.role != "weight"]
    instead = f"it reads {read} instead" if read else "it reads no input at all"
    raise ValueError(
        f"search space {space_name!r}: its output {output.id} does not depend on its input "
        f"{', '.join(t.id for t in unused)} ({instead}): every option and every path ignores the data, so a "
        "search would learn nothing from it; build the space's ops on the input Tensor it is given"
    )
