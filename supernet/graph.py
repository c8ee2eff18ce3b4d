"""The graph that ends at an output node: its walks (`walk.py`), its input and weight Tensors, and
`Graph`, the explicit object (nodes in order, operands, users) the plan's passes read."""

from __future__ import annotations

import heapq
import itertools
from types import MappingProxyType
from typing import Callable, Collection, Iterable, Mapping

from .choice import ChoiceOp
from .node import Node, Tensor
from .walk import check_unique_ids, get_nodes, topological_order

__all__ = [
    "Graph",
    "check_unique_ids",
    "exclusive_ancestors",
    "get_nodes",
    "input_tensors",
    "topological_order",
    "weight_tensors",
]


def input_tensors(nodes: list[Node]) -> list[Tensor]:
    """The Tensors fed at run time, in topological order."""
    return [n for n in nodes if isinstance(n, Tensor) and n.role != "weight"]


def weight_tensors(nodes: list[Node]) -> list[Tensor]:
    """The Tensors owned by ops (weights, biases, statistics), in topological order."""
    return [n for n in nodes if isinstance(n, Tensor) and n.role == "weight"]


class Graph:
    """The graph ending at `output`, built once by an executor: `nodes` in topological order, and
    each node's operands and users among them (`Node.users` also lists users in other graphs).

    Keyed by node: nodes compare and hash by identity (`Node` defines no `__eq__`; the symbolic
    `==` of expressions belongs to parameters, which are no nodes)."""

    def __init__(self, output: Node) -> None:
        self.output = output
        self.nodes: tuple[Node, ...] = tuple(topological_order(output))
        self.position: Mapping[Node, int] = MappingProxyType({node: i for i, node in enumerate(self.nodes)})
        users: dict[Node, list[Node]] = {node: [] for node in self.nodes}
        for node in self.nodes:
            for operand in node.operands:
                users[operand].append(node)  # once per use, as in `Node.users`
        self._users = {node: tuple(found) for node, found in users.items()}

    def __contains__(self, node: object) -> bool:
        return node in self.position

    def __len__(self) -> int:
        return len(self.nodes)

    def operands(self, node: Node) -> tuple[Node, ...]:
        """What `node` reads, in operand order (ChoiceOp: every option)."""
        return tuple(node.operands)

    def users(self, node: Node) -> tuple[Node, ...]:
        """The nodes of this graph reading `node`, once per operand they read it as."""
        return self._users[node]


def exclusive_ancestors(
    option: Node,
    position: Mapping[Node, int],
    users_of: Callable[[Node], Iterable[Node]],
    operands_of: Callable[[Node], Iterable[Node]] = lambda node: node.operands,
    excluded: Collection[Node] = (),
) -> list[Node]:
    """`option` and every ancestor whose users all lie inside that set (its own ops and weights;
    never a data input or a ChoiceOp), in `position` order. Only nodes in `position` count, and
    nodes in `excluded` are never taken in."""
    inside = {option}
    heap: list[tuple[int, int, Node]] = []
    queued: set[Node] = set()
    tie = itertools.count()

    def enqueue(node: Node) -> None:
        for operand in operands_of(node):
            if operand in position and operand not in queued and operand not in excluded:
                queued.add(operand)
                heapq.heappush(heap, (-position[operand], next(tie), operand))

    enqueue(option)
    while heap:  # latest first: every user of a node is decided before the node itself
        _, _, node = heapq.heappop(heap)
        if isinstance(node, ChoiceOp) or (isinstance(node, Tensor) and node.role != "weight"):
            continue
        if all(user in inside for user in users_of(node)):
            inside.add(node)
            enqueue(node)
    return sorted(inside, key=lambda n: position[n])
