"""The nodes of a cell: the ChoiceOps (edges) that one sum (an op declaring `traits.sum`, as `Add`) adds up,
as DARTS and NB201 cells do."""

from __future__ import annotations

from supernet import ChoiceOp, Node, Op, SupernetExecutor, get_nodes


def cell_nodes(supernet: SupernetExecutor) -> list[list[ChoiceOp]]:
    """The ChoiceOps of the space grouped by the node they feed: the ChoiceOp operands of one
    declared sum (its incoming edges, in operand order) form a group; a ChoiceOp that feeds no
    single sum is a group of its own. Groups follow the execution order of their first ChoiceOp."""
    graph = {id(n) for n in get_nodes(supernet.output_node)}
    members = {id(n) for n in supernet.choices}
    groups: list[list[ChoiceOp]] = []
    seen: set[int] = set()
    for choice in supernet.choices:
        users = [u for u in choice.users if id(u) in graph]
        if len(users) != 1 or not _is_sum(users[0]):
            groups.append([choice])
        elif id(users[0]) not in seen:
            seen.add(id(users[0]))
            groups.append([o for o in users[0].operands if id(o) in members])
    return groups


def _is_sum(node: Node) -> bool:
    """Whether `node` declares that it outputs the plain sum of its operands (`OpTraits.sum`)."""
    return isinstance(node, Op) and node.traits.sum
