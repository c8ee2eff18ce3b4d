"""Selection: every step from the strategy's pick to the architecture a search hands out.

    rule -> perturbation -> derivation -> connected -> within budget -> confidence

1. `rule_pick`: the strategy's rule (`Strategy.select`: argmax for most, FairDARTS's threshold);
2. `perturbation_pick`: instead of the rule with `selection="perturbation"`, each choice's option
   by its measured effect (search.perturbation, DARTS-PT);
   then `derive`: the space's declared derivation rule (search.derivation: DARTS's top-2 inputs
   per node; argmax per choice by default), unless the strategy's rule is its own derivation;
3. `connected`: a pick that leaves the output without a path from the input (every path through a
   data-independent option such as `Zero`) is replaced by the connected alternative of lowest
   regret, with a warning naming the switches changed;
4. `within_budget`: with a cost target, the pick is brought within it (`CostPenalty.within_target`);
5. `confidence`: per choice, how probable the handed-out option is, its margin, since when it led.

`select_architecture` runs them in that order and returns a complete `Selection`, from which the
search builds its `SearchResult` once; `report_undecided` then warns or raises on undecided choices.
A strategy that learns no architecture (SPOS, FairNAS) selects nothing: an empty architecture.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from supernet import SupernetExecutor
from supernet.active_parameters import inactive_choices

from .confidence import UndecidedError, UndecidedWarning, result_confidence, undecided_message
from .connectivity import connected_architecture
from .cost_penalty import CostPenalty
from .derivation import ArgmaxPerChoice, derivation_of
from .settings import SelectionSettings
from .strategies import Strategy

Architecture = dict[str, Any]
#: runs the perturbation selection on the trained supernet: (architecture, drops measured per choice)
Perturb = Callable[[], tuple[Architecture, dict[str, dict[str, Any]]]]


@dataclass
class Selection:
    """What the selection hands out: the architecture, its confidence, the drops the perturbation
    selection measured ({} without it) and the settings as recorded in the result."""

    architecture: Architecture
    confidence: dict[str, dict[str, Any]]
    perturbation: dict[str, dict[str, Any]] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=lambda: {"mode": "argmax"})


def rule_pick(strategy: Strategy, supernet: SupernetExecutor) -> Architecture:
    """Step 1: the strategy's own rule."""
    return dict(strategy.select(supernet))


def perturbation_pick(perturb: Perturb) -> tuple[Architecture, dict[str, dict[str, Any]]]:
    """Step 2 (instead of step 1): the perturbation selection and the drops it measured."""
    architecture, record = perturb()
    return dict(architecture), record


def derive(strategy: Strategy, supernet: SupernetExecutor, picked: Mapping[str, Any]) -> tuple[Architecture, str]:
    """Step 2b: `picked` under the space's declared derivation rule (search.derivation), and the
    rule's description ("" where none applies: the default, or a strategy deriving on its own)."""
    rule = derivation_of(supernet.output_node)
    if strategy.derives_architecture or isinstance(rule, ArgmaxPerChoice):
        return dict(picked), ""
    return rule.derive(supernet, picked, supernet.probabilities()), rule.describe()


def connected(supernet: SupernetExecutor, picked: Mapping[str, Any], rule: str, warn: bool = True) -> Architecture:
    """Step 3: `picked`, or its connected alternative of lowest regret under the current
    probabilities when it is a dead network (warning, where `warn`, with `rule` naming the pick)."""
    try:
        architecture, changed = connected_architecture(supernet.output_node, picked, supernet.probabilities())
    except ValueError as error:  # the space itself has no connected architecture
        warnings.warn(f"{error}: the selection is kept", RuntimeWarning, stacklevel=2)
        return dict(picked)
    if changed and warn:
        names, slots = supernet.option_names(), supernet.option_values()

        def label(sid: str, value: Any) -> str:
            return names[sid][slots[sid].index(value)] if sid in names and value in slots[sid] else str(value)

        what = "; ".join(f"{sid}: {label(sid, picked[sid])} -> {label(sid, architecture[sid])}" for sid in changed)
        warnings.warn(
            f"the {rule} selection leaves the network without a path from its input to its "
            f"output (a dead network); selected instead the best connected alternative ({what})",
            RuntimeWarning,
            stacklevel=2,
        )
    return architecture


def within_budget(penalty: Optional[CostPenalty], architecture: Mapping[str, Any]) -> Architecture:
    """Step 4: with a cost target, `architecture` brought within it; unchanged otherwise."""
    return penalty.within_target(architecture) if penalty is not None else dict(architecture)


def confidence(
    supernet: SupernetExecutor, architecture: Mapping[str, Any], history: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Step 5: the confidence of the architecture handed out (search.confidence)."""
    if not architecture:
        return {}
    inactive = inactive_choices(supernet.output_node, architecture)  # choices the architecture does not run
    return result_confidence(
        architecture, supernet.probabilities(), supernet.option_values(), supernet.option_names(), history, inactive
    )


def select_architecture(
    supernet: SupernetExecutor,
    strategy: Strategy,
    settings: SelectionSettings,
    *,
    history: Mapping[str, Any],
    perturb: Optional[Perturb] = None,
    penalty: Optional[CostPenalty] = None,
    warn: bool = True,
) -> Selection:
    """The whole pipeline (module docstring); `perturb` runs the perturbation selection (needed
    with `settings.mode == "perturbation"`); `warn`: this process reports repairs (rank 0)."""
    if not strategy.learns_architecture:
        return Selection({}, {}, {}, settings.record())
    if settings.mode == "perturbation":
        if perturb is None:
            raise ValueError("selection='perturbation' needs perturb= (the perturbation selection to run)")
        picked, measured = perturbation_pick(perturb)
        rule = f"{strategy.name} perturbation"
    else:
        picked, measured, rule = rule_pick(strategy, supernet), {}, strategy.name
    picked, derivation = derive(strategy, supernet, picked)
    record = {**settings.record(), **({"derivation": derivation} if derivation else {})}
    architecture = within_budget(penalty, connected(supernet, picked, rule, warn))
    judged = confidence(supernet, architecture, history)
    if derivation:  # judged as the space's rule decided (a dropped DARTS edge by its node's ranking)
        judged = derivation_of(supernet.output_node).review(supernet, architecture, judged, history)
    return Selection(architecture, judged, measured, record)


def report_undecided(result: Any, on_undecided: str, strategy: str, steps: int, is_main: bool = True) -> None:
    """Warn (UndecidedWarning, "warn", on rank 0 only) or raise (UndecidedError holding `result`,
    "raise") when choices of `result.confidence` are undecided; "ignore" does neither."""
    if on_undecided == "ignore":
        return
    message = undecided_message(result.confidence, strategy, steps)
    if message is not None and on_undecided == "raise":
        raise UndecidedError(message, result)
    if message is not None and is_main:
        warnings.warn(message, UndecidedWarning, stacklevel=3)


__all__: Sequence[str] = [
    "Selection",
    "confidence",
    "connected",
    "derive",
    "perturbation_pick",
    "report_undecided",
    "rule_pick",
    "select_architecture",
    "within_budget",
]
