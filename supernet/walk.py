"""Walking the graph that ends at an output node (through `operands` alone: no node types needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node


def get_nodes(node: Node) -> Iterator[Node]:
    """Every node reachable from `node` through operands (ChoiceOp options included), once each."""
    stack, seen = [node], {id(node)}
    while stack:
        current = stack.pop()
        yield current
        for operand in current.operands:
            if id(operand) not in seen:
                seen.add(id(operand))
                stack.append(operand)


def topological_order(output: Node) -> list[Node]:
    """Nodes reachable from `output`, every node after all of its operands."""
    order: list[Node] = []
    done: set[int] = set()
    stack: list[tuple[Node, bool]] = [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for operand in reversed(node.operands):
            if id(operand) not in done:
                stack.append((operand, False))
    return order


def check_unique_ids(nodes: list[Node]) -> None:
    """Raise if two distinct nodes share an id (their weights or inputs would collide)."""
    seen: dict[str, Node] = {}
    for node in nodes:
        other = seen.setdefault(node.id, node)
        if other is not node:
            raise ValueError(
                f"duplicate node id {node.id!r}: {other!r} and {node!r}; give them distinct names or scopes"
            )
