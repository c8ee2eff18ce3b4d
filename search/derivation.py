"""Derivation rules: how a search space turns the search's pick into the architecture it hands out.

A space declares its rule where it is built (`declare_derivation(output, rule)` on the node its
`@search_space` function returns); a space that declares none derives by `ArgmaxPerChoice`, the
strategy's pick as it is. The selection (search.selection) applies the rule right after the
strategy's pick, so that `SearchResult.architecture`, and everything that reads it (`export`,
`plot_architecture`, `summary`, the confidence report, the result's cost), is the derived one.

- `ArgmaxPerChoice`: every choice keeps the strategy's pick (NB201, MobileNet, a user's space).
- `TopInputsPerNode(inputs=2)`: DARTS's derivation. The edges (ChoiceOps) that one declared sum adds
  up are a node's inputs (`search.strategies.cell_nodes`); per node, the `inputs` edges whose
  strongest option that carries data (not `Zero`, `OpTraits.carries_no_data`) is most probable
  are kept, each with the strategy's pick if it carries data and that strongest option otherwise;
  the other edges get their `Zero` option. Ties keep the earlier input, as DARTS's stable sort.
  Tied cells (one switch per edge and cell kind) share their nodes' decisions.

A strategy that declares its own derivation (`Strategy.derives_architecture`: FairDARTS's gate
threshold decides which edges stay) keeps its pick; the space's rule is not applied on top.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from supernet import Node, SupernetExecutor
from supernet.choice import switch_values

from .confidence import evidence_index, is_decided
from .connectivity import data_independent
from .strategies.cell_nodes import cell_nodes

Architecture = dict[str, Any]


class Derivation(Protocol):
    """A space's rule from the strategy's pick to the handed-out architecture."""

    def derive(
        self, supernet: SupernetExecutor, picked: Mapping[str, Any], probabilities: Mapping[str, Sequence[float]]
    ) -> Architecture:
        """The architecture handed out, from the strategy's `picked` choices and the final `probabilities`."""
        ...

    def describe(self) -> str:
        """A few words naming the rule, as recorded in `SearchResult.config["selection"]["derivation"]`."""
        ...

    def review(
        self,
        supernet: SupernetExecutor,
        architecture: Mapping[str, Any],
        confidence: Mapping[str, dict[str, Any]],
        history: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        """The confidence report (search.confidence) of the derived `architecture`, judged as the rule decides."""
        ...


@dataclass(frozen=True)
class ArgmaxPerChoice:
    """The default: every choice keeps the strategy's pick (its argmax, for most strategies)."""

    def derive(
        self, supernet: SupernetExecutor, picked: Mapping[str, Any], probabilities: Mapping[str, Sequence[float]]
    ) -> Architecture:
        """`picked`, unchanged."""
        return dict(picked)

    def describe(self) -> str:
        """ "argmax per choice"."""
        return "argmax per choice"

    def review(
        self,
        supernet: SupernetExecutor,
        architecture: Mapping[str, Any],
        confidence: Mapping[str, dict[str, Any]],
        history: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        """`confidence`, unchanged: each choice is judged on its own distribution."""
        return dict(confidence)


@dataclass(frozen=True)
class TopInputsPerNode:
    """DARTS's derivation: per node (a sum of ChoiceOp edges), the `inputs` strongest edges that
    carry data are kept, the others are set to their `Zero` option (module docstring)."""

    inputs: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, int) or isinstance(self.inputs, bool) or self.inputs < 1:
            raise ValueError(f"TopInputsPerNode(inputs=...) must be a positive int, got {self.inputs!r}")

    def describe(self) -> str:
        """E.g. "top-2 inputs per node (none excluded)"."""
        return f"top-{self.inputs} inputs per node (none excluded)"

    def derive(
        self, supernet: SupernetExecutor, picked: Mapping[str, Any], probabilities: Mapping[str, Sequence[float]]
    ) -> Architecture:
        """`picked` with, per node, all but the `inputs` strongest edges set to `Zero`."""
        architecture = dict(picked)
        zeros = _zero_positions(supernet)
        for edges in _nodes(supernet, zeros):
            strongest = {sid: _strongest(probabilities[sid], zeros[sid]) for sid in edges}
            kept = self._kept(edges, probabilities, zeros)
            for sid in edges:
                values = switch_values(supernet.switches[sid])
                if sid not in kept:
                    architecture[sid] = values[min(zeros[sid])]
                elif values.index(architecture[sid]) in zeros[sid]:
                    architecture[sid] = values[strongest[sid]]
        return architecture

    def review(
        self,
        supernet: SupernetExecutor,
        architecture: Mapping[str, Any],
        confidence: Mapping[str, dict[str, Any]],
        history: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        """A dropped edge (set to `Zero` because weaker than its node's kept inputs) is judged on
        that decision, not on the probability of `none` within the edge: its `margin` is the
        strength (probability of the strongest option carrying data) of the node's weakest kept
        edge minus its own, `stable_since` the recorded step since which it has stayed out of the
        node's top `inputs`, and `dropped` True. Kept edges keep their entries."""
        reviewed = {sid: dict(entry) for sid, entry in confidence.items()}
        zeros = _zero_positions(supernet)
        series = history.get("probabilities", {})
        steps = list(history.get("steps") or [0])
        evidence_at = evidence_index(history)
        for edges in _nodes(supernet, zeros):
            if not all(sid in series and len(series[sid]) == len(steps) for sid in edges):
                continue  # no full history (a bare supernet): the entries stay as computed
            dropped = [sid for sid in edges if sid in reviewed and _position(supernet, sid, architecture) in zeros[sid]]
            for sid in dropped:
                entry = reviewed[sid]
                entry.update(self._judged(sid, edges, series, zeros, steps, len(steps) - 1))
                entry["dropped"] = True
                entry["decided"] = is_decided(entry, steps[0], steps[-1])
                if evidence_at is not None and "evidence" in entry:
                    evidence = self._judged(sid, edges, series, zeros, steps, evidence_at)
                    entry["evidence"] = {**entry["evidence"], **evidence}
                    entry["decided"] = entry["decided"] and is_decided(evidence, steps[0], steps[evidence_at])
        return reviewed

    def _kept(
        self, edges: Sequence[str], probabilities: Mapping[str, Sequence[float]], zeros: Mapping[str, set[int]]
    ) -> set[str]:
        """The `inputs` edges of a node whose strongest option carrying data is most probable (earlier first on ties)."""
        strength = {sid: probabilities[sid][_strongest(probabilities[sid], zeros[sid])] for sid in edges}
        return set(sorted(edges, key=lambda sid: -strength[sid])[: self.inputs])

    def _judged(
        self,
        sid: str,
        edges: Sequence[str],
        series: Mapping[str, Sequence[Sequence[float]]],
        zeros: Mapping[str, set[int]],
        steps: Sequence[int],
        index: int,
    ) -> dict[str, Any]:
        """{margin, stable_since} of dropping edge `sid` of its node, at recorded step `index`."""
        at = {e: series[e][index] for e in edges}
        kept = self._kept(edges, at, zeros)
        margin = min(at[e][_strongest(at[e], zeros[e])] for e in kept) - at[sid][_strongest(at[sid], zeros[sid])]
        since = None
        for t in range(index, -1, -1):
            if sid in self._kept(edges, {e: series[e][t] for e in edges}, zeros):
                break
            since = steps[t]
        return {"margin": float(margin), "stable_since": since}


def _nodes(supernet: SupernetExecutor, zeros: Mapping[str, set[int]]) -> list[list[str]]:
    """Per node of the space (a sum of several ChoiceOp edges, tied cells once), the switches of
    its edges that have a `Zero` option (an edge without one is always kept), in input order."""
    nodes: list[tuple[str, ...]] = []
    for group in cell_nodes(supernet):
        switches = tuple(dict.fromkeys(choice.switch.id for choice in group))
        if len(group) > 1 and switches not in nodes:
            nodes.append(switches)
    _check_tied(nodes)
    return [[sid for sid in switches if zeros.get(sid)] for switches in nodes]


def _position(supernet: SupernetExecutor, sid: str, architecture: Mapping[str, Any]) -> int:
    """The position, in its probabilities, of the option `architecture` picks for switch `sid` (-1: none)."""
    values = switch_values(supernet.switches[sid])
    return values.index(architecture[sid]) if architecture.get(sid) in values else -1


def _strongest(scores: Sequence[float], zero: set[int]) -> int:
    """The position of the most probable option that carries data (the first on ties)."""
    return max((k for k in range(len(scores)) if k not in zero), key=lambda k: scores[k])


def _zero_positions(supernet: SupernetExecutor) -> dict[str, set[int]]:
    """Switch id -> positions of its options that carry no data (`Zero`); set only where some other option does."""
    zeros: dict[str, set[int]] = {}
    for choice in supernet.choices:
        values = switch_values(choice.switch)
        found = {j for j, index in enumerate(values) if data_independent(choice.operands[index])}
        if found and len(found) < len(values):
            zeros.setdefault(choice.switch.id, found)
    return zeros


def _check_tied(nodes: Sequence[tuple[str, ...]]) -> None:
    """Refuse a switch that is an input of two different nodes: the rule could not keep both decisions."""
    owner: dict[str, tuple[str, ...]] = {}
    for switches in nodes:
        for sid in switches:
            if owner.setdefault(sid, switches) != switches:
                raise ValueError(
                    f"switch {sid} is an edge of two different nodes (inputs {list(owner[sid])[:3]}... and "
                    f"{list(switches)[:3]}...): TopInputsPerNode needs every node's edges to share their switches "
                    "with the same node of every tied cell"
                )


_DECLARED: "weakref.WeakKeyDictionary[Node, Derivation]" = weakref.WeakKeyDictionary()


def declare_derivation(output: Node, rule: Derivation) -> Node:
    """Declare `rule` as the derivation of the space ending at `output`; returns `output`, so a
    `@search_space` function can end with `return declare_derivation(head(...), TopInputsPerNode(2))`."""
    if not isinstance(output, Node):
        raise TypeError(f"declare_derivation needs the output node of a search space, got {type(output).__name__}")
    if not (callable(getattr(rule, "derive", None)) and callable(getattr(rule, "describe", None))):
        raise TypeError(f"a derivation rule has derive() and describe() (see search.derivation), got {rule!r}")
    _DECLARED[output] = rule
    return output


def derivation_of(space: Node) -> Derivation:
    """The rule the space ending at `space` declared (`ArgmaxPerChoice` when it declared none)."""
    return _DECLARED.get(space, ArgmaxPerChoice())


__all__: Sequence[str] = [
    "ArgmaxPerChoice",
    "Derivation",
    "TopInputsPerNode",
    "declare_derivation",
    "derivation_of",
]
