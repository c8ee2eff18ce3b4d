"""A metric fed class-probability targets through their argmax (imported when such a search starts:
torchmetrics loads matplotlib, and `import search` must stay fast)."""

from __future__ import annotations

from typing import Any

import torch
import torchmetrics
from torchmetrics.wrappers.abstract import WrapperMetric


class OnArgmaxTargets(WrapperMetric):
    """`metric` fed class-probability targets: it sees their argmax over axis 1, the likeliest class."""

    def __init__(self, metric: torchmetrics.Metric) -> None:
        super().__init__()
        self.metric = metric

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self.metric.update(preds, target.argmax(dim=1))

    def compute(self) -> Any:
        return self.metric.compute()

    def reset(self) -> None:
        self.metric.reset()
        super().reset()
