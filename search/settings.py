"""The setting groups of `fit_supernet`, each a dataclass a user can also build and pass alone.

- `BilevelConfig` (search.bilevel, `optim=`): the two optimizers;
- `CostSettings` (`budget=`): the hardware cost term and its target;
- `ResilienceSettings` (`resilience=`): checkpoints, resume, the bad-step guard;
- `SelectionSettings` (`selection=`): how the architecture is selected at the end;
- `LoggingSettings` (`logging=`): progress bar, history resolution, loggers, what an undecided result does;
- `ExecutionSettings` (`execution=`): how and from what the search runs (torch.distributed, a
  warm start, the precision, torch.compile).

A new option is one field in one of these groups (and the piece of `search.fit` that reads it).
`fit_supernet` still takes every keyword it took before the groups existed (`cost_weight=`,
`checkpoint_dir=`, ...): `LEGACY_KEYWORDS` maps each onto its group's field, and `resolve_settings`
applies them; passing a keyword and its group with another value for that field is an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import torch

from supernet.cost import CostKind
from supernet.latency import LatencyTable

from .bilevel import BilevelConfig
from .confidence import ON_UNDECIDED
from .loggers import Logger, check_loggers
from .perturbation import SELECTIONS, PerturbationSettings
from .precision import check_precision


@dataclass(frozen=True)
class CostSettings:
    """Hardware-aware search. `kind` ("flops", "params", "latency" or a callable node -> cost
    expression; None: no cost term) adds `weight * E[cost] / E[cost at the start]` to the
    architecture loss; with `target`, `weight * relu(E[cost] / target - 1)` instead, and the
    selection is brought within the target. "latency" prices with `latency_table` (measured for
    the space at batch size 1 when None), `target` in ms per forward pass."""

    kind: Optional[CostKind] = None
    weight: float = 0.0
    target: Optional[float] = None
    latency_table: Optional[LatencyTable] = None

    def __post_init__(self) -> None:
        if self.kind is None and (self.weight or self.target is not None or self.latency_table is not None):
            raise ValueError(
                "cost_weight, cost_target and latency_table need cost= ('flops', 'params', 'latency' or a callable)"
            )

    def label(self) -> Any:
        """The kind as plain data (a callable's name), for results and checkpoints."""
        if self.kind is None or isinstance(self.kind, str):
            return self.kind
        return getattr(self.kind, "__name__", repr(self.kind))


@dataclass(frozen=True)
class ResilienceSettings:
    """`checkpoint_dir`: a checkpoint after every epoch (the newest two kept); `resume`: continue
    from the newest one there; `max_bad_steps`: consecutive non-finite steps of one kind skipped
    before the search raises (None: no checks)."""

    checkpoint_dir: Union[str, Path, None] = None
    resume: bool = False
    max_bad_steps: Optional[int] = 5

    def __post_init__(self) -> None:
        if self.resume and self.checkpoint_dir is None:
            raise ValueError(
                "resume=True needs checkpoint_dir= (the directory the interrupted search wrote its checkpoints to)"
            )


@dataclass(frozen=True)
class SelectionSettings:
    """`mode`: "argmax" (the strategy's rule) or "perturbation" (DARTS-PT, tuned by `perturbation`:
    a PerturbationSettings or a dict of its fields; None: its defaults)."""

    mode: str = "argmax"
    perturbation: Union[PerturbationSettings, Mapping[str, Any], None] = None

    def __post_init__(self) -> None:
        if self.mode not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.mode!r}")
        if self.perturbation is not None and self.mode != "perturbation":
            raise ValueError(
                "perturbation= sets the perturbation selection; pass selection='perturbation' with it "
                f"(got selection={self.mode!r})"
            )
        if self.mode == "perturbation":
            object.__setattr__(self, "perturbation", PerturbationSettings.from_any(self.perturbation))

    def record(self) -> dict[str, Any]:
        """The selection as recorded in `SearchResult.config["selection"]`."""
        if self.mode == "perturbation":
            return {"mode": "perturbation", **dataclasses.asdict(self.perturbation)}
        return {"mode": "argmax"}


@dataclass(frozen=True)
class LoggingSettings:
    """`progress`: a progress bar; `record_every`: the alpha history keeps every n-th step (and the
    `loggers`, search.loggers, get that step's scalars); `on_undecided`: "warn", "raise" or
    "ignore" when choices are undecided (search.confidence)."""

    progress: bool = True
    record_every: int = 1
    on_undecided: str = "warn"
    loggers: Sequence[Logger] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "loggers", tuple(check_loggers(self.loggers)))
        if isinstance(self.record_every, bool) or not isinstance(self.record_every, int) or self.record_every < 1:
            raise ValueError(f"record_every must be a positive int, got {self.record_every!r}")
        if self.on_undecided not in ON_UNDECIDED:
            raise ValueError(f"on_undecided must be one of {ON_UNDECIDED}, got {self.on_undecided!r}")


@dataclass(frozen=True)
class ExecutionSettings:
    """`distributed`: True runs on torch.distributed (torchrun), None when torchrun started more
    than one process; `initial_state`: a supernet state (e.g. `SearchResult.supernet_state`) to
    start from; `precision`: "32", "bf16-mixed" or "16-mixed" (search.precision); `compile`: run
    the supernet through torch.compile (search.compiled_step)."""

    distributed: Optional[bool] = None
    initial_state: Optional[dict[str, torch.Tensor]] = field(default=None, compare=False)
    precision: str = "32"
    compile: bool = False

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be True or False, got {self.compile!r}")


@dataclass(frozen=True)
class FitSettings:
    """Every group of one `fit_supernet` call, resolved."""

    optim: BilevelConfig
    budget: CostSettings
    resilience: ResilienceSettings
    selection: SelectionSettings
    logging: LoggingSettings
    execution: ExecutionSettings


#: the keywords fit_supernet took before the groups: keyword -> (group, field)
LEGACY_KEYWORDS: dict[str, tuple[str, str]] = {
    "cost": ("budget", "kind"),
    "cost_weight": ("budget", "weight"),
    "cost_target": ("budget", "target"),
    "latency_table": ("budget", "latency_table"),
    "checkpoint_dir": ("resilience", "checkpoint_dir"),
    "resume": ("resilience", "resume"),
    "max_bad_steps": ("resilience", "max_bad_steps"),
    "perturbation": ("selection", "perturbation"),
    "progress": ("logging", "progress"),
    "record_every": ("logging", "record_every"),
    "on_undecided": ("logging", "on_undecided"),
    "loggers": ("logging", "loggers"),
    "distributed": ("execution", "distributed"),
    "initial_state": ("execution", "initial_state"),
    "precision": ("execution", "precision"),
    "compile": ("execution", "compile"),
}
_GROUPS = {
    "budget": CostSettings,
    "resilience": ResilienceSettings,
    "selection": SelectionSettings,
    "logging": LoggingSettings,
    "execution": ExecutionSettings,
}


def resolve_settings(
    optim: Union[BilevelConfig, dict, None], groups: Mapping[str, Any], keywords: Mapping[str, Any]
) -> FitSettings:
    """The groups of a call: each given group (or its defaults), with the legacy `keywords` applied
    to their fields. `groups` maps group name -> the group or None; a str as `selection` is its mode.
    A keyword whose group was also given with another value for that field is an error."""
    unknown = sorted(set(keywords) - set(LEGACY_KEYWORDS))
    if unknown:
        raise TypeError(f"fit_supernet() got an unexpected keyword argument {unknown[0]!r}")
    fields: dict[str, dict[str, Any]] = {name: {} for name in _GROUPS}
    for keyword, value in keywords.items():
        group, name = LEGACY_KEYWORDS[keyword]
        fields[group][name] = value
    resolved = {}
    for name, cls in _GROUPS.items():
        given = groups.get(name)
        if name == "selection" and isinstance(given, str):
            fields[name].setdefault("mode", given)  # selection="perturbation": the mode, as before the groups
            given = None
        resolved[name] = _merged(name, cls, given, fields[name])
    return FitSettings(optim=BilevelConfig.from_any(optim), **resolved)


def _merged(group: str, cls: type, given: Any, overrides: dict[str, Any]) -> Any:
    if given is None:
        return cls(**overrides)
    if not isinstance(given, cls):
        raise TypeError(f"{group} must be a {cls.__name__} or None, got {type(given).__name__}")
    for name, value in overrides.items():
        if name == "perturbation" and value is not None:
            value = PerturbationSettings.from_any(value)  # a dict of its fields is the same settings
        if name == "loggers":
            value = tuple(check_loggers(value))  # a list of the same loggers is the same setting
        if not _same(getattr(given, name), value):
            keyword = next(k for k, (g, f) in LEGACY_KEYWORDS.items() if (g, f) == (group, name))
            current = f"{cls.__name__}({name}={getattr(given, name)!r})"
            raise ValueError(
                f"{keyword}={value!r} conflicts with {group}={current}: "
                f"pass the setting once, in {group}= or as {keyword}="
            )
    return given


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except (RuntimeError, TypeError, ValueError):  # e.g. dicts of tensors
        return False
