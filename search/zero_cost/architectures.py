"""The choices of a space as zero-cost proxies see them: which ids an architecture names, their
options, validation of a user's architecture, enumeration and seeded sampling."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import random
from typing import Any, Iterator, Mapping, Optional

from supernet import ChoiceOp, Node, Parameter, get_nodes, topological_order
from supernet.choice import switch_values
from supernet.graph import weight_tensors
from supernet.value_choice import searchable_value_parameters

Architecture = dict[str, Any]


@dataclasses.dataclass
class Choice:
    """One switch (values: option indices, names: their labels) or value parameter (values)."""

    id: str
    parameter: Parameter
    values: list
    names: Optional[list[str]] = None

    def resolve(self, value: Any) -> Any:
        """`value` as one of `values`: an option index, or an option's name for a switch."""
        if not isinstance(value, bool) and value in self.values:
            return value
        if self.names is not None and isinstance(value, str) and value in self.names:
            return self.values[self.names.index(value)]
        shown = self.values if self.names is None else [f"{v} ({n})" for v, n in zip(self.values, self.names)]
        raise ValueError(f"architecture picks {value!r} for {self.id}, which allows {shown}")

    def label(self, value: Any) -> str:
        return self.names[self.values.index(value)] if self.names is not None else str(value)


def space_choices(space: Node) -> dict[str, Choice]:
    """Switch id -> its options, then value-parameter id -> its values (the searched ones, as
    `SupernetExecutor.option_values()` lists them)."""
    if not isinstance(space, Node):
        raise TypeError(f"space must be the output node of a search space, got {type(space).__name__}")
    choices: dict[str, Choice] = {}
    for node in get_nodes(space):
        if isinstance(node, ChoiceOp) and node.switch.id not in choices:
            values = switch_values(node.switch)
            labels = node.option_names()
            choices[node.switch.id] = Choice(node.switch.id, node.switch, list(values), [labels[i] for i in values])
    weights = weight_tensors(topological_order(space))
    for param in searchable_value_parameters(weights, exclude=choices):
        choices[param.id] = Choice(param.id, param, list(param.values()))
    return choices


def resolve(choices: Mapping[str, Choice], architecture: Optional[Mapping[str, Any]]) -> Architecture:
    """The full architecture: `architecture`'s picks (indices or option names) checked and
    completed by the space's current choices; None: the current choices alone."""
    if architecture is not None and not isinstance(architecture, Mapping):
        raise TypeError(f"architecture must map switch ids to options, got {type(architecture).__name__}")
    architecture = dict(architecture or {})
    unknown = sorted(k for k in architecture if k not in choices)
    if unknown:
        raise KeyError(
            f"architecture names unknown switch or parameter {unknown[0]!r}; known: {sorted(choices)[:6]}"
            f"{' ...' if len(choices) > 6 else ''}"
        )
    return {
        cid: choice.resolve(architecture[cid]) if cid in architecture else choice.parameter.current_value
        for cid, choice in choices.items()
    }


@contextlib.contextmanager
def applied(choices: Mapping[str, Choice], architecture: Architecture) -> Iterator[None]:
    """The space's parameters set to `architecture` inside; their previous values restored after."""
    saved = {cid: c.parameter.current_value for cid, c in choices.items()}
    try:
        for cid, value in architecture.items():
            choices[cid].parameter.set_current(value)
        yield
    finally:
        for cid, value in saved.items():
            choices[cid].parameter.current_value = value


def count(choices: Mapping[str, Choice]) -> int:
    return math.prod(len(c.values) for c in choices.values())


def enumerate_all(choices: Mapping[str, Choice]) -> list[Architecture]:
    """Every architecture, in lexicographic order of the choices' values."""
    ids = list(choices)
    return [dict(zip(ids, combo)) for combo in itertools.product(*(choices[i].values for i in ids))]


def sample(choices: Mapping[str, Choice], n: int, seed: int, enumerable: int) -> list[Architecture]:
    """`n` distinct architectures drawn uniformly (all of them if the space has no more than `n`)."""
    total = count(choices)
    rng = random.Random(seed)
    if total <= max(n, enumerable):
        every = enumerate_all(choices)
        return every if n >= total else rng.sample(every, n)
    seen: dict[tuple, Architecture] = {}
    while len(seen) < n:  # total > n: distinct draws always exist
        drawn = {cid: rng.choice(c.values) for cid, c in choices.items()}
        seen.setdefault(tuple(drawn.values()), drawn)
    return list(seen.values())
