"""Perturbation-based selection: each choice takes the option whose removal hurts the supernet most.

After Wang et al., "Rethinking Architecture Selection in Differentiable NAS" (ICLR 2021,
DARTS-PT): the magnitude of an architecture logit need not say how much its option matters, so
the selection measures it. For every undecided choice (a switch of ChoiceOps, or a value
parameter, which the supernet mixes the same way) and each of its options, the supernet is scored
on a fixed set of validation batches with that option removed from the mixture (its weight zeroed,
the others rescaled to the same total: renormalised for a softmax). The drop in the score against
the unperturbed supernet is the option's effect. Then, sequentially as in DARTS-PT:

1. the choice whose largest drop is the largest of all is decided first, on the option of that
   drop (ties between options: the more probable one; between choices: the first id);
2. its mixture becomes one-hot on the winner for the rest of the selection;
3. optionally `fine_tune_steps` weight steps of the strategy on the following training batches
   (the choice kept fixed), then the remaining choices are measured again.

The score is accuracy (class-index or class-probability labels), else minus the loss. Mixing
weights are those the mixture uses in evaluation (`SupernetExecutor.mixing_weights`), except for
mixtures that run a single path there (GDAS hard, Proxyless: one-hot weights) whose distribution
is mixed instead. With `batch_statistics` (the default, as DARTS-PT evaluates) BatchNorm uses the
batch's statistics, so that a perturbed mixture is not judged with the running statistics of
another one; buffers are left as they were. The supernet's weights, buffers and the weight
optimizer are restored afterwards: the result keeps the search's weights. Deterministic: the
batches are the first `batches` of the validation stream and the fine-tuning batches follow the
training stream, both fixed by the search's seed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import torch

from supernet import SupernetExecutor

from .bilevel import Batch, frozen_buffers
from .loaders import BatchStream, move
from .validation import INDICES, Targets

SELECTIONS = ("argmax", "perturbation")


@dataclass(frozen=True)
class PerturbationSettings:
    """`batches`: validation batches each measurement scores (None: one pass of the validation
    loader); `fine_tune_steps`: weight steps after each decision (0: none, as measured cheapest;
    DARTS-PT tunes for epochs); `batch_statistics`: BatchNorm on the batch's statistics (True) or
    its running ones."""

    batches: Optional[int] = 8
    fine_tune_steps: int = 0
    batch_statistics: bool = True

    def __post_init__(self) -> None:
        if self.batches is not None and (
            isinstance(self.batches, bool) or not isinstance(self.batches, int) or self.batches < 1
        ):
            raise ValueError(f"perturbation batches must be a positive int or None (one pass), got {self.batches!r}")
        if (
            isinstance(self.fine_tune_steps, bool)
            or not isinstance(self.fine_tune_steps, int)
            or self.fine_tune_steps < 0
        ):
            raise ValueError(f"perturbation fine_tune_steps must be an int >= 0, got {self.fine_tune_steps!r}")

    @classmethod
    def from_any(cls, value: Union["PerturbationSettings", Mapping[str, Any], None]) -> "PerturbationSettings":
        """Settings from themselves, a dict of their fields, or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise ValueError(
                    f"perturbation: unknown setting(s) {unknown}; known: {[f.name for f in dataclasses.fields(cls)]}"
                )
            return cls(**value)
        raise TypeError(f"perturbation must be a PerturbationSettings, a dict or None, got {type(value).__name__}")


def check_selection(selection: Any, learns_architecture: bool, strategy: str, distributed: bool) -> None:
    """Raise for a `selection` that is unknown or that this search cannot make."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    if selection == "perturbation" and not learns_architecture:
        raise ValueError(
            f"selection='perturbation' needs a supernet that mixes its options, but strategy {strategy!r} learns "
            "no architecture (it trains single paths); pick architectures with search.evolve instead"
        )
    if selection == "perturbation" and distributed:
        raise ValueError(
            "selection='perturbation' is not supported in a distributed search (each process would score its "
            "own shard); run the search on one process, or select by argmax"
        )


class PerturbationSelection:
    """The sequential perturbation selection on a trained supernet (see the module docstring).

    `val_loader` and `train_loader` are the search's loaders; `weight_step(batch)` is one weight
    update (the strategy's); `train_position` the number of training batches the search drew, so
    that fine-tuning continues the training stream; `loss` scores non-classification targets.
    """

    def __init__(
        self,
        supernet: SupernetExecutor,
        settings: PerturbationSettings,
        val_loader: Any,
        *,
        targets: Targets = Targets(),
        loss: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
        train_loader: Any = None,
        train_position: int = 0,
        weight_step: Optional[Callable[[Batch], Any]] = None,
        weight_optimizer: Optional[torch.optim.Optimizer] = None,
        device: torch.device = torch.device("cpu"),
    ) -> None:
        if settings.fine_tune_steps and (train_loader is None or weight_step is None):
            raise ValueError("fine_tune_steps > 0 needs train_loader and weight_step")
        self.supernet, self.settings, self.device = supernet, settings, device
        self.targets, self.loss = targets, loss
        self.train_loader, self.train_position = train_loader, train_position
        self.weight_step, self.weight_optimizer = weight_step, weight_optimizer
        count = settings.batches if settings.batches is not None else len(val_loader)
        stream = BatchStream(val_loader, 0, "val")
        self.batches = [move(next(stream), device) for _ in range(count)]

    def select(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """(architecture: id -> option value, record: id -> {drops (per option, in option order),
        base_score, order (0 = decided first), position and option (label) of the winner}), the
        supernet left as it was."""
        supernet = self.supernet
        values, names = supernet.option_values(), supernet.option_names()
        probabilities = supernet.probabilities()
        base = self._base_weights()
        fixed: dict[str, torch.Tensor] = {}
        record: dict[str, dict[str, Any]] = {}
        architecture: dict[str, Any] = {}
        with self._restored():
            while len(fixed) < len(base):
                remaining = [sid for sid in base if sid not in fixed]
                reference = self.score({**base, **fixed})
                drops = {
                    sid: [
                        reference - self.score({**base, **fixed, sid: removed(base[sid], j)})
                        for j in range(len(base[sid]))
                    ]
                    for sid in remaining
                }
                sid = max(remaining, key=lambda s: (max(drops[s]), -remaining.index(s)))
                winner = max(range(len(drops[sid])), key=lambda j: (drops[sid][j], probabilities[sid][j], -j))
                fixed[sid] = torch.nn.functional.one_hot(torch.tensor(winner), len(base[sid])).to(base[sid])
                architecture[sid] = values[sid][winner]
                record[sid] = {
                    "drops": [float(d) for d in drops[sid]],
                    "base_score": float(reference),
                    "order": len(record),
                    "position": winner,
                    "option": names[sid][winner] if sid in names else str(values[sid][winner]),
                }
                if len(fixed) < len(base):
                    self._fine_tune(fixed)
        return {sid: architecture[sid] for sid in base}, {sid: record[sid] for sid in base}

    def score(self, weights: Mapping[str, torch.Tensor]) -> float:
        """The supernet's score (accuracy, or minus the mean loss) on the batches, mixed with `weights`."""
        supernet = self.supernet
        correct, total, loss_sum = 0.0, 0, 0.0
        training = supernet.training
        supernet.train(self.settings.batch_statistics)
        try:
            with torch.no_grad(), frozen_buffers(supernet), supernet.overridden_weights(weights):
                for x, y in self.batches:
                    logits = supernet(x)
                    if self.targets.classification:
                        labels = y if self.targets.kind == INDICES else y.argmax(1)
                        correct += float((logits.argmax(1) == labels).sum())
                        total += labels.numel()
                    else:
                        loss_sum += float(self.loss(logits, y)) * len(x)
                        total += len(x)
        finally:
            supernet.train(training)
        return correct / total if self.targets.classification else -loss_sum / total

    def _base_weights(self) -> dict[str, torch.Tensor]:
        """Id -> the unperturbed mixing weights: the evaluation weights, or the distribution where
        the mixture runs a single path in evaluation."""
        mixture = self.supernet.mixture
        distributions = {sid: mixture.probabilities(alpha, sid) for sid, alpha in self.supernet.alphas.items()}
        return {
            sid: (w if run is None else distributions[sid]).detach().clone()
            for sid, (w, run) in self.supernet.mixing_weights().items()
        }

    def _fine_tune(self, fixed: Mapping[str, torch.Tensor]) -> None:
        if not self.settings.fine_tune_steps:
            return
        stream = BatchStream(self.train_loader, self.train_position, "train")
        with self.supernet.overridden_weights(fixed):
            for _ in range(self.settings.fine_tune_steps):
                self.weight_step(move(next(stream), self.device))
        self.train_position = stream.position

    @contextlib.contextmanager
    def _restored(self) -> Iterator[None]:
        """Weights, buffers and the weight optimizer as they were before the selection (fine-tuning
        changes them only to measure the next choices)."""
        if not self.settings.fine_tune_steps:
            yield
            return
        state = copy.deepcopy(self.supernet.state_dict())
        optimizer = copy.deepcopy(self.weight_optimizer.state_dict()) if self.weight_optimizer is not None else None
        try:
            yield
        finally:
            self.supernet.load_state_dict(state)
            if optimizer is not None:
                self.weight_optimizer.load_state_dict(optimizer)


def removed(weights: torch.Tensor, position: int) -> torch.Tensor:
    """`weights` with entry `position` zeroed and the others rescaled to the same total (all zero
    when nothing else had weight)."""
    out = weights.clone()
    out[position] = 0.0
    rest = float(out.sum())
    return out * (float(weights.sum()) / rest) if rest > 0 else out


def perturbation_rows(
    record: Mapping[str, Mapping[str, Any]],
    option_names: Mapping[str, Sequence[str]],
    label: Callable[[str], str] = str,
) -> str:
    """A plain-text table of the recorded drops: one row per choice in decision order, each
    option's drop (the selected one marked *)."""
    lines = []
    for sid, entry in sorted(record.items(), key=lambda item: item[1]["order"]):
        names = option_names.get(sid) or [str(j) for j in range(len(entry["drops"]))]
        cells = [
            f"{'*' if j == entry['position'] else ''}{name} {drop:+.4f}"
            for j, (name, drop) in enumerate(zip(names, entry["drops"]))
        ]
        lines.append(f"  {entry['order'] + 1}. {label(sid)} (score {entry['base_score']:.4f}): " + ", ".join(cells))
    return "\n".join(lines)
