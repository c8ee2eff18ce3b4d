"""ChoiceOp: alternative paths selected by a switch parameter (ops, blocks, or depths)."""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Optional, Sequence, Union

from .expression import Select, bounds, lazy, walk
from .naming import qualify
from .node import Node, Op
from .parameters import CategoricalParameter, IntScalarParameter, Parameter

Option = Union[Op, Callable[..., Node], Node]

MAX_ASSIGNMENTS = 4096  # parameter assignments tried per axis when looking for one where the options agree


class ChoiceOp(Op):
    """`ChoiceOp(*options, switch=None, names=None, same_shape=True)(*operands)`.

    Options are uncalled ops or callables (e.g. `functools.partial` blocks) applied to the operands,
    or, when called with no operands, existing nodes (exits of a chain: dynamic depth). The output
    is the option the switch selects; executors decide how to mix them (one path, or a weighted sum).
    Options may differ in shape (dynamic depth, a stride-2 option beside Identity): the output
    shape follows the switch, and executors that run one path (BasicExecutor, sampling-based
    search) accept them. A weighted sum needs one shape: a SupernetExecutor refuses options that
    can never agree on it when it is built (`supernet.mixing_check`). Options of different rank
    are refused here. `same_shape=True` declares that the options must be mixable and moves that
    refusal to the call; `same_shape=False` (or None, the default) leaves it to the executor.
    """

    min_inputs = 0

    def __init__(
        self,
        *options: Option,
        switch: Optional[Parameter] = None,
        names: Optional[list[str]] = None,
        same_shape: Optional[bool] = None,
    ) -> None:
        if not options:
            raise ValueError("ChoiceOp needs at least one option, got none")
        if switch is None:
            switch = IntScalarParameter(min=0, max=len(options) - 1, name="choice")
        _check_switch(switch, len(options))
        if names is not None and len(names) != len(options):
            raise ValueError(f"ChoiceOp got {len(names)} names for {len(options)} options")
        if names is not None:
            _check_distinct_names(list(names))
        super().__init__(switch=switch)
        self._factories = list(options)
        self._names = list(names) if names is not None else None
        self.same_shape = same_shape

    def __call__(self, *operands: Node) -> "ChoiceOp":
        outputs = []
        for i, option in enumerate(self._factories):
            if operands:
                if isinstance(option, Node) and (not isinstance(option, Op) or option._called):
                    raise TypeError(
                        f"ChoiceOp option {i} ({option!r}) is already a graph node; pass an uncalled op or a functools.partial block"
                    )
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
        return self._labels(self.options)

    def _labels(self, options: list[Any]) -> list[str]:
        if self._names is not None:
            return list(self._names)
        prefix = self.id.rpartition(".")[0]
        heads, labels = [], []
        for option in options:
            option_id = option.id if isinstance(option, Node) else getattr(option, "__name__", repr(option))
            rest = option_id[len(prefix) + 1 :] if prefix and option_id.startswith(prefix + ".") else option_id
            head = rest.split(".")[0]
            stem, _, count = head.rpartition("_")
            heads.append(head)
            labels.append(stem if count.isdigit() and stem else head)
        # options of one kind (the exits of a chain of blocks) keep their numbered heads: the labels
        # must tell the chosen option apart
        labels = [head if labels.count(label) > 1 else label for label, head in zip(labels, heads)]
        return [f"{label}[{i}]" if labels.count(label) > 1 else label for i, label in enumerate(labels)]

    def active_index(self) -> int:
        """Index of the option the switch currently selects."""
        return int(lazy(self.switch))

    def check(self) -> None:
        """Refuse options that can never have one output shape (of the same rank, and on every axis
        but the batch axis equal for some values of the parameters their sizes depend on): a
        mixture sums them. Sizes that may differ through parameters are accepted (an executor
        checks them at their current values)."""
        shapes = [option.shape() for option in self.operands]
        names = self._labels(self.operands)  # not yet called: `options` are still the factories
        if len({len(s) for s in shapes}) != 1:
            shown = ", ".join(f"{n}: {len(s)} axes" for n, s in zip(names, shapes))
            raise ValueError(
                f"ChoiceOp {self.id}: options have output shapes of different rank ({shown}); "
                "every option must produce the same shape"
            )
        if self.same_shape:
            problem = mixing_problem(shapes, names)
            if problem:
                raise ValueError(
                    f"ChoiceOp {self.id}: its options can never have the same output shape, which mixing "
                    f"them needs ({problem}); give every option the same output shape, or drop "
                    "same_shape=True for one-path executors"
                )

    def shape(self) -> tuple:
        if not self._called:
            raise TypeError(
                f"ChoiceOp {self.id} is not part of a graph yet: call it before using it as a node, "
                "`ChoiceOp(*options)(input)` for uncalled ops or blocks, `ChoiceOp(*exits, switch=depth)()` "
                "for existing nodes (dynamic depth)"
            )
        return super().shape()

    def shape_fun(self) -> tuple:
        shapes = [option.shape() for option in self.operands]
        return tuple(_select(axis_sizes, self.switch) for axis_sizes in zip(*shapes))


def mixing_problem(shapes: Sequence[tuple], names: Sequence[str]) -> Optional[str]:
    """Why options of these output shapes can never be mixed (summed), or None when they can for
    some parameter values: the first axis but the batch axis on which their sizes never agree."""
    for axis in range(1, len(shapes[0])):
        sizes = [s[axis] for s in shapes]
        if not can_agree(sizes):
            on_axis = ", ".join(f"{n}: {_shown(size)}" for n, size in zip(names, sizes))
            return f"axis {axis}: {on_axis}; shapes now {describe_shapes(shapes, names)}"
    return None


def describe_shapes(shapes: Sequence[tuple], names: Sequence[str]) -> str:
    """`name: (current shape), ...` for error messages."""
    return ", ".join(f"{n}: {_current(shape)}" for n, shape in zip(names, shapes))


def can_agree(sizes: Sequence[Any]) -> bool:
    """Whether the sizes (ints or expressions) are all equal for some values of the parameters
    they depend on: equal ints, or an assignment found among the discrete parameters' values.
    True when that cannot be decided (continuous parameters, or too many assignments to try)."""
    first = sizes[0]
    if all(size is first for size in sizes):
        return True
    try:  # interval bounds are cached per expression node: constant time on shared shape expressions
        ranges = [bounds(size) for size in sizes]
        if max(lo for lo, _ in ranges) > min(hi for _, hi in ranges):
            return False  # disjoint intervals: no assignment can make them equal
    except (TypeError, ValueError, ArithmeticError):
        pass  # an unbounded expression: try the assignments
    params = list({id(p): p for p in walk(tuple(sizes)) if isinstance(p, Parameter)}.values())
    if not params:
        return len({lazy(size) for size in sizes}) == 1
    try:
        domains = [p.values() for p in params]
    except TypeError:  # a continuous parameter
        return True
    if math.prod(len(d) for d in domains) > MAX_ASSIGNMENTS:
        return True
    saved = [p.current_value for p in params]
    try:
        for assignment in itertools.product(*domains):
            for param, value in zip(params, assignment):
                param.current_value = value
            try:
                if len({lazy(size) for size in sizes}) == 1:
                    return True
            except (ArithmeticError, IndexError, TypeError, ValueError):
                continue  # sizes undefined at these values (e.g. a zero divisor)
        return False
    finally:
        for param, value in zip(params, saved):
            param.current_value = value


def _current(shape: tuple) -> str:
    try:
        return str(tuple(lazy(shape)))
    except (ArithmeticError, IndexError, TypeError, ValueError):
        return repr(shape)


def _shown(size: Any) -> str:
    if isinstance(size, int):
        return str(size)
    try:
        lo, hi = bounds(size)
        return f"{lo}..{hi} (now {lazy(size)})"
    except (TypeError, ValueError):
        return repr(size)


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
        raise ValueError(
            f"ChoiceOp switch {switch.label()} can take {bad}, which index none of the {n_options} options"
        )


def _check_distinct_names(names: list[str]) -> None:
    """Refuse repeated option names: results, summaries and plots name the winner by its label."""
    for position, name in enumerate(names):
        first = names.index(name)
        if first != position:
            where = qualify("ChoiceOp")  # no id yet: the ChoiceOp gets it when called
            raise ValueError(
                f"{where} (names {names}): option name {name!r} is given to options {first} and {position}; "
                "every option needs its own name, or the chosen option cannot be told apart"
            )


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
