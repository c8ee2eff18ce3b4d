"""Walking the graph that ends at an output node."""
from __future__ import annotations

from typing import Iterator

from .node import Node, Tensor


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
            raise ValueError(f"duplicate node id {node.id!r}: {other!r} and {node!r}; give them distinct names or scopes")


def input_tensors(nodes: list[Node]) -> list[Tensor]:
    """The Tensors fed at run time, in topological order."""
    return [n for n in nodes if isinstance(n, Tensor) and n.role != "weight"]


def weight_tensors(nodes: list[Node]) -> list[Tensor]:
    """The Tensors owned by ops (weights, biases, statistics), in topological order."""
    return [n for n in nodes if isinstance(n, Tensor) and n.role == "weight"]
