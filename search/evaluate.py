"""Evaluating any sub-architecture of a trained supernet with the weights it inherits.

`PathEvaluator` builds the supernet of a search result once, loads its trained weights and runs
one architecture at a time through them (a `FixedPathMixture`: the chosen option of every switch
and value choice alone, gate 1), so that evolution can score thousands of candidates without
building a network for each. Before an architecture is scored, BatchNorm statistics are
re-estimated for it on training batches (`search.recalibration`); the result's own weights and
statistics are never modified. The metrics equal those of `result.export(inherit_weights=True)`
given the same re-estimated statistics (up to float rounding: the supernet masks weights it
allocated at the largest value choice, the export cuts them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

import torch

from supernet import SupernetExecutor

from .loaders import Data, as_loader, move
from .precision import MixedPrecision, check_precision
from .recalibration import recalibrate_statistics, recalibration_batches
from .strategies.paths import FixedPathMixture

if TYPE_CHECKING:  # pragma: no cover
    import torchmetrics

    from .result import SearchResult


@torch.no_grad()
def evaluate_module(
    model: torch.nn.Module,
    data: Data,
    batch_size: int = 256,
    device: Optional[torch.device] = None,
    precision: str = "32",
) -> dict[str, float]:
    """Top-1 accuracy and mean cross-entropy of a classifier (in eval mode) on `data`, its forward
    passes at `precision` ("32", "bf16-mixed", "16-mixed": search.precision; the loss in float32)."""
    import torchmetrics  # here, not with `search`: it loads matplotlib

    device = device or torch.device("cpu")
    amp = MixedPrecision(check_precision(precision, device), torch.device(device).type)
    loader = as_loader(data, batch_size, shuffle=False, seed=0, argument="data")
    model.eval()
    metric: Optional[torchmetrics.Metric] = None
    loss, count = 0.0, 0
    for batch in loader:
        x, y = move(batch, device)
        with amp.autocast():
            logits = model(x).float()
        if metric is None:
            metric = torchmetrics.classification.MulticlassAccuracy(num_classes=logits.shape[-1], average="micro").to(
                logits.device
            )
        metric.update(logits, y)
        loss += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
        count += len(y)
    if metric is None:
        raise ValueError("data yields no batch to evaluate on")
    return {"accuracy": float(metric.compute()), "loss": loss / count, "samples": count}


class PathEvaluator:
    """The trained supernet of a search result, running one architecture at a time."""

    def __init__(
        self, result: "SearchResult", device: Union[str, torch.device, None] = None, precision: str = "32"
    ) -> None:
        if result.space is None:
            raise ValueError(
                "this result has no search space attached: SearchResult.load(path, space=...) to evaluate it"
            )
        if result.supernet_state is None:
            raise ValueError("this result holds no supernet weights to evaluate architectures with")
        self.result = result
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.precision = check_precision(precision, self.device)
        self.mixture = FixedPathMixture()
        self.supernet = SupernetExecutor(result.space, mixture=self.mixture, seed=0)
        own = {k for k in self.supernet.state_dict() if not k.startswith("arch.")}
        missing = sorted(own - set(result.supernet_state))
        if missing:
            raise KeyError(f"the result's supernet weights lack {missing[:3]} (saved from another space?)")
        self.state = {k: result.supernet_state[k] for k in own}
        self.supernet.load_state_dict(self.state, strict=False)
        self.supernet.to(self.device).eval()
        self.values = self.supernet.option_values()

    def architecture(self, architecture: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """The full architecture: the result's own choices, overridden by `architecture`'s."""
        chosen = {**self.result.architecture, **dict(architecture or {})}
        unknown = sorted(k for k in chosen if k not in self.values)
        if unknown:
            raise KeyError(
                f"architecture names {unknown[:3]}, which the supernet does not search; it searches {sorted(self.values)[:5]}..."
            )
        for key, value in chosen.items():
            if value not in self.values[key]:
                raise ValueError(f"architecture picks {value!r} for {key}, which allows {self.values[key]}")
        missing = sorted(k for k in self.values if k not in chosen)
        if missing:  # never a silent first option
            raise ValueError(
                f"the architecture chooses nothing for {missing[:3]}{' ...' if len(missing) > 3 else ''} ({len(missing)} "
                "switches or parameters); a weights-only search (spos, fairnas) selects no architecture: "
                "name every choice, or take one from search.evolve"
            )
        return chosen

    def set_architecture(self, architecture: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
        """Make the supernet run `architecture` (completed by the result's choices); returns it."""
        chosen = self.architecture(architecture)
        self.mixture.set_path({key: self.values[key].index(value) for key, value in chosen.items()})
        return chosen

    def evaluate(
        self,
        data: Data,
        architecture: Optional[Mapping[str, Any]] = None,
        *,
        recalibrate_bn: bool = True,
        batches: Optional[int] = None,
        train: Optional[Data] = None,
        batch_size: int = 256,
        seed: int = 0,
    ) -> dict[str, Any]:
        """Metrics of `architecture` on `data` (see `evaluate`)."""
        chosen = self.set_architecture(architecture)
        recalibrated = 0
        if recalibrate_bn:
            source = train if train is not None else data
            with MixedPrecision(self.precision, self.device.type).autocast():
                recalibrated = recalibrate_statistics(
                    self.supernet, recalibration_batches(source, batch_size, batches, seed), self.device
                )
        else:  # the trained statistics, whatever an earlier recalibration left
            self.supernet.load_state_dict(self.state, strict=False)
        metrics = evaluate_module(self.supernet, data, batch_size, self.device, self.precision)
        return {**metrics, "recalibration_batches": recalibrated, "architecture": chosen}


def evaluate(
    result: "SearchResult",
    data: Data,
    architecture: Optional[Mapping[str, Any]] = None,
    *,
    recalibrate_bn: bool = True,
    batches: Optional[int] = None,
    train: Optional[Data] = None,
    batch_size: int = 256,
    seed: int = 0,
    device: Union[str, torch.device, None] = None,
    precision: str = "32",
) -> dict[str, Any]:
    """Accuracy and loss on `data` of `architecture` (switch id -> option index, value-parameter id
    -> value; ids left out keep the result's choices; None: the result's own architecture) run with
    the trained supernet's shared weights, for results of any strategy.

    With `recalibrate_bn` (the default), BatchNorm statistics are first re-estimated for that
    architecture on `batches` batches (None: all) of a seeded shuffle of `train` (None: of `data`'s
    inputs, whose labels are never used; pass the training data for a strict held-out score): the
    statistics the supernet kept average over every path it trained, which misjudges any single
    one. `precision` ("32", "bf16-mixed", "16-mixed"): the forward passes under that autocast, as in
    `fit_supernet`. Returns {"accuracy", "loss", "samples", "recalibration_batches", "architecture"}.
    """
    return PathEvaluator(result, device, precision).evaluate(
        data,
        architecture,
        recalibrate_bn=recalibrate_bn,
        batches=batches,
        train=train,
        batch_size=batch_size,
        seed=seed,
    )
