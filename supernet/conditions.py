"""Constraints of a search space (HANNAH's `cond`): symbolic expressions that must evaluate true.

`node.cond(expr)` or `parameter.cond(expr)` keeps a `Condition` in the graph. Sampling
(`Node.sample`) draws again until every condition of the graph holds, evolution refuses candidates
that break one, and `condition_report` states, for the current (chosen) architecture, which hold.
In a differentiable search a condition cannot be differentiated; `condition_masks` turns each
condition that depends on one searched parameter into a mask over that parameter's values (the
values under which it fails), which a strategy applies to the logits (see its docstring).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Optional, Sequence

from .expression import Expression, lazy, walk
from .parameters import Parameter
from .walk import get_nodes

if TYPE_CHECKING:  # pragma: no cover
    from .node import Node

MAX_RESAMPLES = 1000  # draws `sample()` makes before it reports the conditions it could not satisfy


@dataclasses.dataclass
class Condition:
    """One constraint: `expression` (true when satisfied), where it was stated (`owner`), and the
    parameters a solver may change to satisfy it (`allowed_params`, None: any)."""

    expression: Any
    owner: str
    allowed_params: Optional[list[Parameter]] = None

    def holds(self) -> bool:
        """Whether the condition is true at the parameters' current values (undefined: false)."""
        try:
            return bool(lazy(self.expression))
        except (ArithmeticError, IndexError, TypeError, ValueError):
            return False

    def parameters(self) -> list[Parameter]:
        """The parameters the condition's expression depends on."""
        return [p for p in walk(self.expression) if isinstance(p, Parameter)]

    def __repr__(self) -> str:
        return f"Condition({self.owner}: {self.expression!r})"


def as_condition(expression: Any, owner: str, allowed_params: Optional[Sequence[Parameter]] = None) -> Condition:
    """Validate `expression` as a condition stated by `owner` (a node or parameter description)."""
    if isinstance(expression, Condition):
        return expression
    if not isinstance(expression, (Expression, bool)):
        raise TypeError(
            f"{owner}: a condition must be a symbolic expression (e.g. `a + b < 10`) or a bool, "
            f"got {type(expression).__name__} {expression!r}"
        )
    if allowed_params is not None:
        bad = [p for p in allowed_params if not isinstance(p, Parameter)]
        if bad:
            raise TypeError(f"{owner}: allowed_params must be parameters, got {bad}")
    return Condition(expression, owner, list(allowed_params) if allowed_params is not None else None)


def graph_conditions(output: "Node") -> list[Condition]:
    """Every condition stated on a node or parameter of the graph ending at `output`, once each."""
    found: dict[int, Condition] = {}
    for node in get_nodes(output):
        for condition in getattr(node, "conditions", ()):
            found.setdefault(id(condition), condition)
        for param in node.params.values():
            for condition in param.conditions:
                found.setdefault(id(condition), condition)
    return list(found.values())


def violated(output: "Node") -> list[Condition]:
    """The conditions of the graph that do not hold at the current parametrization."""
    return [c for c in graph_conditions(output) if not c.holds()]


def condition_report(output: "Node") -> list[dict[str, Any]]:
    """For the current (chosen) architecture: each condition, where it was stated, its value and
    whether it holds (plain data, for results and logs)."""
    report = []
    for condition in graph_conditions(output):
        try:
            value: Any = lazy(condition.expression)
        except (ArithmeticError, IndexError, TypeError, ValueError) as err:
            value = f"undefined ({err})"
        report.append(
            {
                "owner": condition.owner,
                "condition": repr(condition.expression),
                "value": value,
                "holds": condition.holds(),
            }
        )
    return report


def architecture_report(output: "Node", architecture: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`condition_report` for a chosen architecture (id -> value, e.g. a search result's
    `architecture`; parameters not named keep their current values), leaving the space as it was."""
    with assigned(output, architecture):
        return condition_report(output)


def check_conditions(output: "Node") -> None:
    """Raise ValueError naming every condition the current parametrization breaks."""
    broken = violated(output)
    if broken:
        shown = "; ".join(f"{c.owner}: {c.expression!r}" for c in broken)
        raise ValueError(f"the parametrization breaks {len(broken)} condition(s): {shown}")


@contextlib.contextmanager
def assigned(output: "Node", values: Mapping[str, Any]) -> Iterator[None]:
    """Inside: the parameters named in `values` (by id) take those values; restored on exit."""
    params = output.parametrization()
    unknown = [k for k in values if k not in params]
    if unknown:
        raise KeyError(f"unknown parameter id(s) {unknown}")
    saved = {k: params[k].current_value for k in values}
    try:
        for key, value in values.items():
            params[key].current_value = value
        yield
    finally:
        for key, value in saved.items():
            params[key].current_value = value


def satisfies(output: "Node", architecture: Mapping[str, Any]) -> bool:
    """Whether every condition of the graph holds under `architecture` (id -> value; parameters
    not named keep their current values). Leaves the parametrization as it was."""
    conditions = graph_conditions(output)
    if not conditions:
        return True
    with assigned(output, architecture):
        return all(c.holds() for c in conditions)


def condition_masks(output: "Node", searched: Mapping[str, Sequence[Any]]) -> dict[str, list[bool]]:
    """For each searched parameter (id -> its values, in logit order) that is the only searched
    parameter of some condition: which of its values keep all such conditions true, the other
    parameters at their current values. A differentiable strategy adds -inf to the logits of the
    values marked False (`torch.where(mask, alpha, -inf)`) so that they are never chosen.
    Conditions over several searched parameters cannot be masked per parameter; they are left to
    the final check (`check_conditions` / `condition_report` on the chosen architecture)."""
    masks: dict[str, list[bool]] = {}
    for condition in graph_conditions(output):
        depends = {p.id for p in condition.parameters()} & set(searched)
        if len(depends) != 1:
            continue
        (pid,) = depends
        allowed = []
        for value in searched[pid]:
            with assigned(output, {pid: value}):
                allowed.append(condition.holds())
        previous = masks.get(pid, [True] * len(allowed))
        masks[pid] = [a and b for a, b in zip(previous, allowed)]
    return masks
