"""The strategy interface: how options are mixed and how the architecture is stepped and chosen."""
from __future__ import annotations

from typing import Any, Optional

import torch

from supernet import Mixture, SoftmaxMixture, SupernetExecutor


class Strategy:
    """Base strategy = first-order DARTS. Subclasses override the few hooks they change.

    - `mixture()`: the Mixture the supernet uses (softmax, Gumbel samples, gates...);
    - `regularizer(supernet)`: a term added to the architecture loss (None: nothing);
    - `on_epoch_start(epoch, epochs, supernet)`: schedules (temperature annealing...);
    - `architecture_step(bilevel, train_batch, val_batch)`: the alpha update;
    - `select(supernet)`: the discrete architecture (default: argmax per switch).
    """

    name = "darts"

    def __init__(self, warmup_epochs: int = 0, temperature: float = 1.0) -> None:
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        self.warmup_epochs = warmup_epochs
        self.temperature = temperature
        self._mixture: Optional[Mixture] = None

    def mixture(self) -> Mixture:
        if self._mixture is None:
            self._mixture = SoftmaxMixture(self.temperature)
        return self._mixture

    def regularizer(self, supernet: SupernetExecutor) -> Optional[torch.Tensor]:
        return None

    def on_epoch_start(self, epoch: int, epochs: int, supernet: SupernetExecutor) -> None:
        pass

    def searches_architecture(self, epoch: int) -> bool:
        """Whether the alphas are updated in this epoch (not during warm-up)."""
        return epoch >= self.warmup_epochs

    def architecture_step(self, bilevel: Any, train_batch: tuple, val_batch: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = val_batch
        return bilevel.architecture_step(x, y, regularizer=lambda: self.regularizer(bilevel.supernet))

    def select(self, supernet: SupernetExecutor) -> dict[str, int]:
        return supernet.architecture()

    def config(self) -> dict[str, Any]:
        """The strategy's hyper-parameters (plain values, for results)."""
        return {"name": self.name, "warmup_epochs": self.warmup_epochs, "temperature": self.temperature}
