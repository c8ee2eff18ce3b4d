"""SearchResult: what a search produced, as plain data, plus export to a standalone module."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch

from supernet import ChoiceOp, describe, discretize, get_nodes, topological_order
from supernet.active_parameters import inactive_choices
from supernet.discretize import check_architecture
from supernet.export_module import ExportedModule, export_module
from supernet.expression import upper_bound
from supernet.graph import weight_tensors
from supernet.standalone import write_standalone
from supernet.node import Node

from .confidence import is_active, summary_table
from .connectivity import is_connected
from .evaluate import evaluate
from .perturbation import perturbation_rows
from .result_file import check_architecture_labels, check_weights_file, read_payload, read_weights, write_result
from .switch_labels import short_id

ARCH_PREFIX = "arch."  # the supernet's architecture logits, apart from the weights


@dataclass
class SearchResult:
    """`architecture`: switch id -> chosen option index; `probabilities`: switch id -> option
    probabilities; `history`: the alpha trajectory (see AlphaHistory.as_dict); `metrics`: one dict
    per epoch; `option_names`: switch id -> option labels; `config`: strategy and run settings;
    `confidence`: switch id -> how sure the search is of the selected option (`search.confidence`:
    option, probability, margin, entropy, stable_since, decided), shown by `summary()`;
    `perturbation`: with `fit_supernet(selection="perturbation")`, switch id -> {drops: the score
    drop (accuracy, plain floats) when each option, in option order, is removed from the mixture;
    base_score; order: 0 for the choice decided first; position and option: the winner's index
    in option order and label}
    (`search.perturbation`), else empty."""

    architecture: dict[str, int]
    probabilities: dict[str, list[float]]
    history: dict[str, Any]
    metrics: list[dict[str, float]]
    option_names: dict[str, list[str]] = field(default_factory=dict)
    option_values: dict[str, list] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    confidence: dict[str, dict[str, Any]] = field(default_factory=dict)
    supernet_state: Optional[dict[str, torch.Tensor]] = field(default=None, repr=False)
    space: Optional[Node] = field(default=None, repr=False, compare=False)
    perturbation: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """Bit-identical results: equal plain fields (NaN equals NaN) and equal weight tensors
        (`torch.equal`); the attached search space and the history's `resumed_at_step` are not compared."""
        if not isinstance(other, SearchResult):
            return NotImplemented
        fields = (
            "architecture",
            "probabilities",
            "history",
            "metrics",
            "option_names",
            "option_values",
            "config",
            "confidence",
            "perturbation",
        )
        # where a search resumed is a note on the run, not part of its result: resumed equals uninterrupted
        if not all(_same(_compared(self, f), _compared(other, f)) for f in fields):
            return False
        mine, theirs = self.supernet_state, other.supernet_state
        if mine is None or theirs is None:
            return mine is None and theirs is None
        return mine.keys() == theirs.keys() and all(
            mine[k].dtype == theirs[k].dtype and torch.equal(mine[k], theirs[k]) for k in mine
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    @property
    def chosen_options(self) -> dict[str, str]:
        """Switch id -> label of the chosen option."""
        return {sid: self._label(sid, choice) for sid, choice in self.architecture.items()}

    @property
    def inactive(self) -> list[str]:
        """The ids of `chosen_options` the architecture does not run (choices inside an unused
        option or block): kept in `architecture`, shown as inactive, never undecided. Read from
        the attached space (so it follows `with_architecture`), else from the confidence marks."""
        if self.space is not None and self.architecture:
            return inactive_choices(self.space, self.architecture)
        return [sid for sid, entry in self.confidence.items() if not is_active(entry)]

    def _label(self, sid: str, choice: Any) -> str:
        names, values = self.option_names.get(sid), self.option_values.get(sid)
        if names is None:
            return str(choice)
        position = values.index(choice) if values is not None and choice in values else choice
        return names[position] if isinstance(position, int) and 0 <= position < len(names) else str(choice)

    def summary(self) -> str:
        """A readable table of every choice: the selected option, its probability, its margin over
        the best other option, the normalised entropy, the step since which it has been the most
        probable, and UNDECIDED where the search did not settle (`search.confidence`)."""
        strategy = self.config.get("strategy", {})
        name = strategy.get("name", "?") if isinstance(strategy, dict) else strategy
        steps = (self.history.get("steps") or [0])[-1]
        if not self.confidence:
            return f"{name} search, {steps} steps: no confidence recorded"
        inactive = self.inactive
        active = [e for sid, e in self.confidence.items() if sid not in inactive]
        undecided = sum(not e["decided"] for e in active)
        head = (
            f"{name} search, {self.config.get('epochs', '?')} epochs, {steps} steps: "
            f"{len(active) - undecided} of {len(active)} {'active ' if inactive else ''}choices decided"
            + (f"; {len(inactive)} inactive (not run by the selected architecture)" if inactive else "")
        )
        derivation = self.config.get("selection", {}).get("derivation")
        if derivation:  # the space's rule made the architecture: say so, and how dropped edges read
            head += (
                f"\narchitecture derived by the space's rule: {derivation} "
                "(a dropped edge's margin: to its node's weakest kept input)"
            )
        table = head + "\n" + summary_table(self.confidence, short_id, inactive)
        if self.perturbation:
            batches = self.config.get("selection", {}).get("batches")
            table += (
                "\nperturbation selection: score drop when each option is removed from the mixture "
                f"({'all' if batches is None else batches} validation batches; * selected), in decision order\n"
                + perturbation_rows(self.perturbation, self.option_names, short_id)
            )
        return table

    def discretized(self, space: Optional[Node] = None) -> Node:
        """The fixed graph of the chosen architecture (no ChoiceOp)."""
        space = space if space is not None else self.space
        if space is None:
            raise ValueError(
                "this result has no search space attached: pass space=, or SearchResult.load(path, space=...)"
            )
        if not self.architecture:
            raise ValueError(
                "this result's architecture is empty: it chooses no option, so there is no architecture to "
                "export (a search records one choice per switch, but a weights-only strategy such as spos or fairnas "
                "selects none: take one from search.evolve, or build one with with_architecture)"
            )
        fixed = discretize(space, self.architecture)  # first: it names unknown switches and options
        missing = sorted(_switches(space) - set(self.architecture))
        if missing:
            raise ValueError(
                f"this result's architecture chooses no option for switch(es) {missing[:3]} of the space; "
                "add them (with_architecture) or pass the space that was searched"
            )
        return fixed

    def spec(self, space: Optional[Node] = None) -> dict[str, Any]:
        """The chosen architecture as a plain, JSON-serializable spec (choices and node list)."""
        return {
            "architecture": dict(self.architecture),
            "chosen_options": self.chosen_options,
            "nodes": describe(self.discretized(space)),
        }

    def export(
        self, inherit_weights: bool = False, seed: Optional[int] = None, space: Optional[Node] = None
    ) -> ExportedModule:
        """A standalone nn.Module (`ExportedModule`: generated torch code, layers by id) of the
        argmax architecture, without alphas, fresh or carrying the supernet's trained weights
        (matched by node id). An architecture whose output has no path from the input (every
        path through `Zero`; `fit_supernet` never selects one) is exported with a warning."""
        space = space if space is not None else self.space
        fixed = self.discretized(space)  # checks the architecture first
        if not is_connected(space, self.architecture):
            warnings.warn(
                "this architecture leaves the network without a path from its input to its output (every "
                f"path runs through a Zero op): {self.chosen_options}; its output ignores the input",
                RuntimeWarning,
                stacklevel=2,
            )
        if inherit_weights and self.supernet_state is None:
            raise ValueError("this result holds no supernet weights to inherit")
        return export_module(fixed, seed=seed, state=self.supernet_state if inherit_weights else None)

    def export_source(
        self,
        path: Union[str, Path],
        model: Optional[ExportedModule] = None,
        inherit_weights: bool = False,
        seed: Optional[int] = None,
        space: Optional[Node] = None,
    ) -> tuple[Path, Path]:
        """Write the architecture as a self-contained Python file (`path`, a plain nn.Module
        needing only torch; `load()` in it builds the model) and its weights (`<stem>.pt` beside
        it). The weights are those of `model` (e.g. an `export()`ed model after retraining), else
        of `export(inherit_weights, seed, space)`. Returns (source path, weights path)."""
        if model is None:
            model = self.export(inherit_weights=inherit_weights, seed=seed, space=space)
        elif not isinstance(model, ExportedModule):
            raise TypeError(f"export_source writes a model made by export(), got {type(model).__name__}")
        title = f"The architecture {json.dumps(self.chosen_options)[:600]}"
        return write_standalone(model, path, title=title)

    def evaluate(
        self,
        data: Any,
        architecture: Optional[Mapping[str, Any]] = None,
        *,
        recalibrate_bn: bool = True,
        batches: Optional[int] = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Accuracy and loss on `data` of `architecture` (None: this result's) run with the trained
        supernet's shared weights, BatchNorm statistics re-estimated for it first on training
        batches (`train=`; see `search.evaluate.evaluate` for every option)."""
        return evaluate(self, data, architecture, recalibrate_bn=recalibrate_bn, batches=batches, **options)

    def with_architecture(self, architecture: Mapping[str, Any]) -> "SearchResult":
        """A copy of this result whose `architecture` takes the given choices: switch id -> option
        index (e.g. `darts_genotype(result)`) or value-parameter id -> value; ids left out keep this
        result's choices. `export()` then builds that architecture."""
        known = set(self.architecture) | set(self.probabilities)
        if self.space is not None:
            known |= set(self.space.parametrization())
        unknown = sorted(k for k in architecture if k not in known)
        if unknown:
            raise KeyError(f"the search result has no switch or parameter {unknown[:3]}")
        if self.space is not None:
            check_architecture(self.space, architecture)
        else:  # no space attached: the options the search weighed are the ones known
            for sid, value in architecture.items():
                allowed = self.option_values.get(sid)
                if allowed is not None and (value not in allowed or isinstance(value, bool)):
                    raise ValueError(f"architecture picks {value!r} for {sid}, which allows {list(allowed)}")
        return dataclasses.replace(self, architecture={**self.architecture, **dict(architecture)})

    def to_dict(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "chosen_options": self.chosen_options,
            "inactive": self.inactive,  # derived from `confidence`, written for readers of the file
            "probabilities": self.probabilities,
            "history": self.history,
            "metrics": self.metrics,
            "option_names": self.option_names,
            "option_values": self.option_values,
            "config": self.config,
            "confidence": self.confidence,
            "perturbation": self.perturbation,
        }

    def save(self, path: Union[str, Path]) -> Path:
        """Write `result.json` (architecture, history, metrics, spec; a format version) and
        `supernet.pt` (weights) to a directory, atomically (`search.result_file`): on a failure,
        e.g. a full disk, an OSError names the path and the cause, and nothing partial is left."""
        payload = self.to_dict()
        if self.space is not None and self.architecture:  # a weights-only result has no architecture to spell out
            payload["spec"] = self.spec()
        return write_result(Path(path), payload, self.supernet_state)

    @classmethod
    def load(cls, path: Union[str, Path], space: Optional[Node] = None) -> "SearchResult":
        """Read a saved result; pass the search space to be able to export it again (it must be
        the space that was searched: its switches and weights are checked against the result).
        A truncated, garbled or hand-edited file (names that disagree with the indices, an index
        or value the space does not allow, a file of a newer format) raises ValueError naming it;
        with `space`, the option labels are the space's."""
        path = Path(path)
        payload = read_payload(path)
        check_weights_file(path, payload)
        weights = path / "supernet.pt"
        state = read_weights(weights) if weights.exists() else None
        names = payload["option_names"]
        if space is not None:
            _check_same_space(path, space, payload["architecture"], payload["probabilities"], state)
            try:
                check_architecture(space, payload["architecture"])
            except (KeyError, ValueError) as error:
                raise ValueError(f"{path / 'result.json'}: {error.args[0]}") from None
            names = {**names, **_space_labels(space, payload.get("option_values", {}))}
            check_architecture_labels(path / "result.json", payload, names)
        return cls(
            architecture=payload["architecture"],
            probabilities=payload["probabilities"],
            history=payload["history"],
            metrics=payload["metrics"],
            option_names=names,
            option_values=payload.get("option_values", {}),
            config=payload["config"],
            confidence=payload.get("confidence", {}),
            supernet_state=state,
            space=space,
            perturbation=payload.get("perturbation", {}),
        )


def _space_labels(space: Node, option_values: Mapping[str, list]) -> dict[str, list[str]]:
    """Switch id -> the space's label of each option value the file lists (ChoiceOp names)."""
    labels = {}
    for node in get_nodes(space):
        if isinstance(node, ChoiceOp) and node.switch.id in option_values:
            names = node.option_names()
            values = option_values[node.switch.id]
            if all(isinstance(v, int) and 0 <= v < len(names) for v in values):
                labels[node.switch.id] = [names[v] for v in values]
    params = space.parametrization()
    for pid, values in option_values.items():
        if pid not in labels and pid in params:  # a value choice, labelled as SupernetExecutor.option_names does
            labels[pid] = [f"{params[pid].name}={v}" for v in values]
    return labels


def _switches(space: Node) -> set[str]:
    return {node.switch.id for node in get_nodes(space) if isinstance(node, ChoiceOp)}


def _check_same_space(
    path: Path,
    space: Node,
    architecture: dict[str, Any],
    probabilities: dict[str, list],
    state: Optional[dict[str, torch.Tensor]],
) -> None:
    """Raise if `space` is not the one the result at `path` searched: other switches or parameters,
    other numbers of options, or weights of other ids or shapes."""
    known = space.parametrization()
    problems = []
    chosen = set(architecture) or set(probabilities)  # a weights-only result chooses nothing, but weighed them all
    unknown, missing = sorted(chosen - set(known)), sorted(_switches(space) - chosen)
    if unknown:
        problems.append(f"the result chooses {unknown[:3]}, which the space lacks")
    if missing:
        problems.append(f"the space's switch(es) {missing[:3]} are not in the result")
    counts = [
        f"{k}: {len(probabilities[k])} in the result, {len(known[k].values())} in the space"
        for k in sorted(probabilities)
        if k in known and hasattr(known[k], "values") and len(probabilities[k]) != len(known[k].values())
    ]
    if counts:
        problems.append(f"the numbers of options differ ({'; '.join(counts[:3])})")
    if state is not None:
        expected = {t.id: tuple(upper_bound(s) for s in t.shape()) for t in weight_tensors(topological_order(space))}
        saved = {k: tuple(v.shape) for k, v in state.items() if not k.startswith(ARCH_PREFIX)}
        absent, extra = sorted(expected.keys() - saved.keys()), sorted(saved.keys() - expected.keys())
        if absent:
            problems.append(f"weight(s) {absent[:3]} of the space are not in the saved weights")
        if extra:
            problems.append(f"the saved weights hold {extra[:3]}, which the space lacks")
        reshaped = [
            f"{k}: {saved[k]} saved, {expected[k]} in the space"
            for k in sorted(expected.keys() & saved.keys())
            if saved[k] != expected[k]
        ]
        if reshaped:
            problems.append(f"weight shapes differ ({'; '.join(reshaped[:3])})")
    if problems:
        raise ValueError(
            f"the result at {path} was searched on another space than the one given: {'; '.join(problems)}; "
            "pass the search space that produced it"
        )


def _compared(result: "SearchResult", name: str) -> Any:
    """The field `name` as `__eq__` compares it (the history without its `resumed_at_step`)."""
    value = getattr(result, name)
    if name == "history" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "resumed_at_step"}
    return value


def _same(a: Any, b: Any) -> bool:
    """Deep equality of plain data in which NaN equals NaN (and a tuple its list)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    return a == b
