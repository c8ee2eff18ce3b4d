"""Node ids: the stack of active scopes, and fresh ids inside it (`@scope` pushes and pops frames).

Ids follow the reference language: `<scope>_<k>.<Op>_<j>` where `k` counts the calls of that scope
and `j` the ops of that type inside the enclosing scope (`space_0.block_1.conv_relu_2.Conv2d_0`).
Outside any scope a counter continues from the nodes already reachable from the operands.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

from .walk import get_nodes


@dataclass
class _Frame:
    prefix: str
    counters: dict[str, int] = field(default_factory=dict)


class _Scopes(threading.local):
    """The stack of active scopes, one per thread: spaces built at once in two threads do not nest."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = []


_SCOPES = _Scopes()


def current_prefix() -> Optional[str]:
    """Id prefix of the innermost active scope, or None at top level."""
    stack = _SCOPES.stack
    return stack[-1].prefix if stack else None


def qualify(name: str) -> str:
    """`name` inside the active scope (tensors are named, not counted)."""
    prefix = current_prefix()
    return f"{prefix}.{name}" if prefix else name


def next_id(name: str, operands: Iterable[Any]) -> str:
    """A fresh id `name_k` for a node or scope named `name` being added on top of `operands`."""
    if _SCOPES.stack:
        frame = _SCOPES.stack[-1]
        k = frame.counters.get(name, 0)
        frame.counters[name] = k + 1
        return f"{frame.prefix}.{name}_{k}"
    highest = -1
    for operand in operands:
        for node in get_nodes(operand):
            head = node.id.split(".")[0]
            stem, _, count = head.rpartition("_")
            if stem == name and count.isdigit():
                highest = max(highest, int(count))
    return f"{name}_{highest + 1}"


@contextlib.contextmanager
def entered(name: str, inputs: Iterable[Any]) -> Iterator[None]:
    """Inside: nodes get ids under a fresh scope `<name>_<k>.` (k counts the calls of `name`)."""
    _SCOPES.stack.append(_Frame(next_id(name, inputs)))
    try:
        yield
    finally:
        _SCOPES.stack.pop()
