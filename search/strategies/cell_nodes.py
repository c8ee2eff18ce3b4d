"""The nodes of a cell: the ChoiceOps (edges) that one `Add` sums, as DARTS and NB201 cells do."""
from __future__ import annotations

from ops import Add
from supernet import ChoiceOp, SupernetExecutor, get_nodes


def cell_nodes(supernet: SupernetExecutor) -> list[list[ChoiceOp]]:
    """The ChoiceOps of the space grouped by the node they feed: the ChoiceOp operands of one
    `Add` (its incoming edges, in operand order) form a group; a ChoiceOp that feeds no single
    `Add` is a group of its own. Groups follow the execution order of their first ChoiceOp."""
    graph = {id(n) for n in get_nodes(supernet.output_node)}
    members = {id(n) for n in supernet.choices}
    groups: list[list[ChoiceOp]] = []
    seen: set[int] = set()
    for choice in supernet.choices:
        users = [u for u in choice.users if id(u) in graph]
        if len(users) != 1 or not isinstance(users[0], Add):
            groups.append([choice])
        elif id(users[0]) not in seen:
            seen.add(id(users[0]))
            groups.append([o for o in users[0].operands if id(o) in members])
    return groups
