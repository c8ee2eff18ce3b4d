"""Node ids: `@search_space` and `@scope` prefix the ids of the nodes created inside them.

Ids follow the reference language: `<scope>_<k>.<Op>_<j>` where `k` counts the calls of that scope
and `j` the ops of that type inside the enclosing scope (`space_0.block_1.conv_relu_2.Conv2d_0`).
Outside any scope a counter continues from the nodes already reachable from the operands.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _Frame:
    prefix: str
    counters: dict[str, int] = field(default_factory=dict)


_STACK: list[_Frame] = []


def current_prefix() -> Optional[str]:
    """Id prefix of the innermost active scope, or None at top level."""
    return _STACK[-1].prefix if _STACK else None


def qualify(name: str) -> str:
    """`name` inside the active scope (tensors are named, not counted)."""
    prefix = current_prefix()
    return f"{prefix}.{name}" if prefix else name


def next_id(name: str, operands: Iterable[Any]) -> str:
    """A fresh id `name_k` for a node or scope named `name` being added on top of `operands`."""
    if _STACK:
        frame = _STACK[-1]
        k = frame.counters.get(name, 0)
        frame.counters[name] = k + 1
        return f"{frame.prefix}.{name}_{k}"
    from .graph import get_nodes  # deferred: graph imports node, node imports scope

    highest = -1
    for operand in operands:
        for node in get_nodes(operand):
            head = node.id.split(".")[0]
            stem, _, count = head.rpartition("_")
            if stem == name and count.isdigit():
                highest = max(highest, int(count))
    return f"{name}_{highest + 1}"


def _scoped(function: F, check_output: bool) -> F:
    from .node import Node

    @functools.wraps(function)
    def run_in_scope(*args: Any, **kwargs: Any) -> Any:
        inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, Node)]
        _STACK.append(_Frame(next_id(function.__name__, inputs)))
        try:
            out = function(*args, **kwargs)
        finally:
            _STACK.pop()
        if check_output and not isinstance(out, Node):
            raise TypeError(
                f"search space {function.__name__!r} must return its output node, got {type(out).__name__}"
            )
        return out

    return run_in_scope  # type: ignore[return-value]


def scope(function: F) -> F:
    """Decorate a block function: nodes created inside get ids under `<function>_<k>.`"""
    return _scoped(function, check_output=False)


def search_space(function: F) -> F:
    """Decorate the function that builds a whole space and returns its output node."""
    return _scoped(function, check_output=True)
