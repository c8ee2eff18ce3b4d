"""ChoiceOp: alternative paths selected by a switch parameter (ops, blocks, or depths)."""
from __future__ import annotations

import heapq
from typing import Any, Callable, Collection, Iterable, Optional, Union

from .expression import Select, lazy
from .node import Node, Op, Tensor
from .parameters import CategoricalParameter, IntScalarParameter, Parameter

Option = Union[Op, Callable[..., Node], Node]


class ChoiceOp(Op):
    """`ChoiceOp(*options, switch=None)(*operands)`.

    Options are uncalled ops or callables (e.g. `functools.partial` blocks) applied to the operands,
    or, when called with no operands, existing nodes (exits of a chain: dynamic depth). The output
    is the option the switch selects; executors decide how to mix them (one path, or a weighted sum).
    """

    min_inputs = 0

    def __init__(self, *options: Option, switch: Optional[Parameter] = None, names: Optional[list[str]] = None) -> None:
        if not options:
            raise ValueError("ChoiceOp needs at least one option, got none")
        if switch is None:
            switch = IntScalarParameter(min=0, max=len(options) - 1, name="choice")
        _check_switch(switch, len(options))
        if names is not None and len(names) != len(options):
            raise ValueError(f"ChoiceOp got {len(names)} names for {len(options)} options")
        super().__init__(switch=switch)
        self._factories = list(options)
        self._names = list(names) if names is not None else None

    def __call__(self, *operands: Node) -> "ChoiceOp":
        outputs = []
        for i, option in enumerate(self._factories):
            if operands:
                if isinstance(option, Node) and (not isinstance(option, Op) or option._called):
                    raise TypeError(f"ChoiceOp option {i} ({option!r}) is already a graph node; pass an uncalled op or a functools.partial block")
                if not callable(option):
                    raise TypeError(f"ChoiceOp option {i} ({option!r}) is not callable")
                out = option(*operands)
            else:
                out = option
            if not isinstance(out, Node):
                raise TypeError(f"ChoiceOp option {i} produced {type(out).__name__}, not a graph node")
            outputs.append(out)
        return super().__call__(*outputs)

    @property
    def options(self) -> list[Node]:
        """The option output nodes (after the call), in switch order."""
        return list(self.operands) if self._called else list(self._factories)

    def option_names(self) -> list[str]:
        """Readable labels of the options: the given `names`, else the option's op or block name."""
        if self._names is not None:
            return list(self._names)
        prefix = self.id.rpartition(".")[0]
        labels = []
        for option in self.options:
            option_id = option.id if isinstance(option, Node) else getattr(option, "__name__", repr(option))
            rest = option_id[len(prefix) + 1:] if prefix and option_id.startswith(prefix + ".") else option_id
            head = rest.split(".")[0]
            stem, _, count = head.rpartition("_")
            labels.append(stem if count.isdigit() and stem else head)
        return labels

    def active_index(self) -> int:
        """Index of the option the switch currently selects."""
        return int(lazy(self.switch))

    def shape_fun(self) -> tuple:
        shapes = [option.shape() for option in self.operands]
        if len({len(s) for s in shapes}) != 1:
            raise ValueError(f"ChoiceOp {self.id}: options have shapes of different rank {shapes}")
        return tuple(_select(axis_sizes, self.switch) for axis_sizes in zip(*shapes))


def _select(values: tuple, switch: Parameter) -> Any:
    first = values[0]
    if all(v is first or (isinstance(v, int) and v == first) for v in values):
        return first
    return Select(values, switch)


def _check_switch(switch: Any, n_options: int) -> None:
    if isinstance(switch, IntScalarParameter):
        values = switch.values()
    elif isinstance(switch, CategoricalParameter):
        values = switch.choices
    else:
        raise TypeError(f"ChoiceOp switch must be an IntScalarParameter or CategoricalParameter, got {switch!r}")
    bad = [v for v in values if not isinstance(v, int) or not 0 <= v < n_options]
    if bad:
        raise ValueError(f"ChoiceOp switch {switch.label()} can take {bad}, which index none of the {n_options} options")


def switch_values(switch: Parameter) -> list[int]:
    """The option indices a switch parameter can select."""
    return switch.values() if isinstance(switch, IntScalarParameter) else list(switch.choices)


def active_subgraph(output: Node, order: list[Node]) -> list[Node]:
    """The nodes of `order` (a topological order of `output`'s graph) that the current choices
    need: a ChoiceOp only needs the option its switch selects."""
    needed, stack = {id(output)}, [output]
    while stack:
        node = stack.pop()
        operands = [node.operands[node.active_index()]] if isinstance(node, ChoiceOp) else node.operands
        for operand in operands:
            if id(operand) not in needed:
                needed.add(id(operand))
                stack.append(operand)
    return [n for n in order if id(n) in needed]


def exclusive_ancestors(
    option: Node,
    position: dict[int, int],
    users_of: Callable[[Node], Iterable[Node]],
    operands_of: Callable[[Node], Iterable[Node]] = lambda node: node.operands,
    excluded: Collection[int] = (),
) -> list[Node]:
    """`option` and every ancestor whose users all lie inside that set (its own ops and weights;
    never a data input or a ChoiceOp), in `position` order. Only nodes in `position` count, and
    nodes whose id is in `excluded` are never taken in."""
    inside = {id(option): option}
    heap: list[tuple[int, int, Node]] = []
    queued: set[int] = set()

    def enqueue(node: Node) -> None:
        for operand in operands_of(node):
            key = id(operand)
            if key in position and key not in queued and key not in excluded:
                queued.add(key)
                heapq.heappush(heap, (-position[key], key, operand))

    enqueue(option)
    while heap:  # latest first: every user of a node is decided before the node itself
        _, _, node = heapq.heappop(heap)
        if isinstance(node, ChoiceOp) or (isinstance(node, Tensor) and node.role != "weight"):
            continue
        if all(id(user) in inside for user in users_of(node)):
            inside[id(node)] = node
            enqueue(node)
    return sorted(inside.values(), key=lambda n: position[id(n)])
