"""The metrics a search logs per epoch: the user's torchmetrics objects, or accuracy for classification."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from .validation import PROBABILITIES, Targets

if TYPE_CHECKING:  # pragma: no cover
    import torchmetrics

# torchmetrics is imported when a search starts, not with `search`: it loads matplotlib (about 2 s)
Metrics = Union[Sequence["torchmetrics.Metric"], Mapping[str, "torchmetrics.Metric"]]


def metric_set(metrics: Optional[Metrics], targets: Targets) -> dict[str, torchmetrics.Metric]:
    """Name -> metric. A mapping keeps its names; a sequence is named after the metric classes
    (MulticlassAccuracy -> "accuracy"), repeated names numbered ("accuracy", "accuracy_2").
    Without `metrics`, classification labels get accuracy. Metrics of class-probability labels
    see the argmax class."""
    import torchmetrics

    if metrics is None:
        if not targets.classification:
            return {}
        metrics = {
            "accuracy": torchmetrics.classification.MulticlassAccuracy(num_classes=targets.num_classes, average="micro")
        }
    named = dict(metrics) if isinstance(metrics, Mapping) else _named(metrics)
    for name, metric in named.items():
        if not isinstance(metric, torchmetrics.Metric):
            raise TypeError(f"metrics: {name!r} is {type(metric).__name__}, not a torchmetrics.Metric")
    if targets.kind == PROBABILITIES:
        from .argmax_targets import OnArgmaxTargets

        return {name: OnArgmaxTargets(metric) for name, metric in named.items()}
    return named


def metric_name(metric: Any) -> str:
    """The snake-case class name without its task prefix: MulticlassF1Score -> "f1_score"."""
    name = re.sub(r"^(Multiclass|Binary|Multilabel)", "", type(metric).__name__)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _named(metrics: Sequence[Any]) -> dict[str, Any]:
    named: dict[str, Any] = {}
    for metric in metrics:
        base = metric_name(metric)
        name, count = base, 1
        while name in named:
            count += 1
            name = f"{base}_{count}"
        named[name] = metric
    return named
