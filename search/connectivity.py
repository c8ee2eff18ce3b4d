"""Dead networks: an architecture whose output has no path of information from any input.

A path runs backwards from the output through data operands (never weights), through the option
each ChoiceOp's switch selects, and stops at ops whose traits declare them data-independent (`Zero`). An
architecture is connected when such a path reaches an input Tensor. `connected_architecture`
repairs a disconnected one: among the switches that selected a data-independent option, it
re-selects the set of lowest total regret (sum over changed switches of log p(selected) - log
p(replacement), the replacement being the switch's most probable option that is not
data-independent) that connects the output again.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Optional, Sequence

from supernet import ChoiceOp, Node, Op, Tensor, get_nodes
from supernet.choice import switch_values

EXHAUSTIVE_UP_TO = 12  # switches to re-select: every subset is tried up to this many, greedily beyond


def is_connected(output: Node, architecture: Mapping[str, Any]) -> bool:
    """Whether `output` depends on an input under `architecture` (switch id -> option index;
    switches it omits keep their current value)."""
    stack, seen = [output], {id(output)}
    while stack:
        node = stack.pop()
        if isinstance(node, Tensor):
            if node.role != "weight":
                return True
            continue
        if isinstance(node, ChoiceOp):
            operands = [node.operands[_selected(node, architecture)]]
        elif data_independent(node):
            continue
        elif isinstance(node, Op):
            operands = node.inputs
        else:
            operands = node.operands
        for operand in operands:
            if id(operand) not in seen:
                seen.add(id(operand))
                stack.append(operand)
    return False


def connected_architecture(
    output: Node, architecture: Mapping[str, Any], probabilities: Mapping[str, Sequence[float]]
) -> tuple[dict[str, Any], list[str]]:
    """(`architecture`, []) when it is connected, else the connected alternative of lowest regret
    under `probabilities` (switch id -> per-option score, in switch-value order) and the switch
    ids it changed. Raises ValueError when no re-selection connects the output."""
    chosen = dict(architecture)
    if is_connected(output, chosen):
        return chosen, []
    replacements = _replacements(output, chosen, probabilities)
    regret = {sid: cost for sid, (_, cost) in replacements.items()}
    candidates = sorted(replacements, key=lambda sid: (regret[sid], sid))

    def flipped(switches: Sequence[str]) -> dict[str, Any]:
        return {**chosen, **{sid: replacements[sid][0] for sid in switches}}

    best: Optional[Sequence[str]] = None
    if len(candidates) <= EXHAUSTIVE_UP_TO:
        subsets = (s for k in range(1, len(candidates) + 1) for s in itertools.combinations(candidates, k))
        for subset in sorted(subsets, key=lambda s: (sum(regret[sid] for sid in s), len(s))):
            if is_connected(output, flipped(subset)):
                best = subset
                break
    else:  # greedy: add the cheapest switches until connected, then drop those not needed
        taken: list[str] = []
        for sid in candidates:
            taken.append(sid)
            if is_connected(output, flipped(taken)):
                best = taken
                break
        if best is not None:
            for sid in sorted(best, key=lambda s: -regret[s]):
                rest = [s for s in best if s != sid]
                if is_connected(output, flipped(rest)):
                    best = rest
    if best is None:
        raise ValueError(
            f"no architecture of the space ending at {output.id} connects its output to an input by "
            f"re-selecting the switches that chose a data-independent option ({candidates})"
        )
    return flipped(best), sorted(best)


def _selected(choice: ChoiceOp, architecture: Mapping[str, Any]) -> int:
    return int(architecture[choice.switch.id]) if choice.switch.id in architecture else choice.active_index()


def _replacements(
    output: Node, architecture: Mapping[str, Any], probabilities: Mapping[str, Sequence[float]]
) -> dict[str, tuple[int, float]]:
    """Switch id -> (its most probable option that no ChoiceOp of it has as a data-independent
    op, the regret of selecting it), for the switches that selected a data-independent option."""
    choices: dict[str, list[ChoiceOp]] = {}
    for node in get_nodes(output):
        if isinstance(node, ChoiceOp):
            choices.setdefault(node.switch.id, []).append(node)
    found: dict[str, tuple[int, float]] = {}
    for sid, members in choices.items():
        current = _selected(members[0], architecture)
        if not any(_dead_option(c, current) for c in members):
            continue
        values = switch_values(members[0].switch)
        scores = list(probabilities.get(sid, [1.0] * len(values)))
        alive = [j for j, value in enumerate(values) if not any(_dead_option(c, value) for c in members)]
        if not alive:
            continue
        best = max(alive, key=lambda j: scores[j])
        regret = _log(scores[values.index(current)] if current in values else 1.0) - _log(scores[best])
        found[sid] = (values[best], max(0.0, regret))
    return found


def data_independent(node: Node) -> bool:
    """Whether `node` is an op whose output carries nothing of its inputs (`Zero`)."""
    return isinstance(node, Op) and node.traits.carries_no_data


def _dead_option(choice: ChoiceOp, index: int) -> bool:
    return data_independent(choice.operands[index])


def _log(p: float) -> float:
    return math.log(max(float(p), 1e-12))
