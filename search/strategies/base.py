"""The strategy interface: how options are mixed and how the architecture is stepped and chosen."""
from __future__ import annotations

from typing import Any, Optional, Union

import torch

from supernet import Mixture, SoftmaxMixture, SupernetExecutor

from ..bilevel import Batch, BilevelOptimizer
from .schedules import linear


class Strategy:
    """Base strategy = first-order DARTS. Subclasses override the few hooks they change.

    - `mixture()`: the Mixture the supernet uses (softmax, Gumbel samples, gates...); strategies
      whose mixture holds state return a new one per call, and their other hooks reach it as
      `supernet.mixture`;
    - `regularizer(supernet)`: a term added to the architecture loss (None: nothing);
    - `on_epoch_start(epoch, epochs, supernet)`: schedules (temperature annealing...);
    - `searches_architecture(epoch)`: False during the `warmup_epochs` (weights only);
    - `architecture_step(bilevel, train_batch, val_batch)`: the alpha update;
    - `weight_step(bilevel, train_batch)`: the weight update (default: one pass, one step);
    - `select(supernet)`: the discrete architecture (default: argmax per switch);
    - `config()`: the hyper-parameters, recorded in the SearchResult.

    `learns_architecture = False` declares a strategy that trains the shared weights only (SPOS,
    FairNAS): the search then makes no architecture step.
    """

    name = "darts"
    learns_architecture = True

    def __init__(self, warmup_epochs: int = 0, temperature: Union[float, tuple[float, float]] = 1.0) -> None:
        """`warmup_epochs`: epochs of weight training before the first architecture step.
        `temperature`: of the softmax, or (start, end) to anneal it linearly over the epochs."""
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if isinstance(temperature, (tuple, list)):
            if len(temperature) != 2:
                raise ValueError(f"temperature must be a number or a (start, end) pair, got {temperature!r}")
            temperature = (float(temperature[0]), float(temperature[1]))
        self.warmup_epochs = warmup_epochs
        self.initial_temperature = temperature
        self.temperature = temperature[0] if isinstance(temperature, tuple) else temperature  # the current one
        self._mixture: Optional[Mixture] = None

    def mixture(self) -> Mixture:
        if self._mixture is None:
            self._mixture = SoftmaxMixture(self.temperature)
        return self._mixture

    def regularizer(self, supernet: SupernetExecutor) -> Optional[torch.Tensor]:
        return None

    def on_epoch_start(self, epoch: int, epochs: int, supernet: SupernetExecutor) -> None:
        if isinstance(self.initial_temperature, tuple):
            self.temperature = linear(*self.initial_temperature, epoch, epochs)
            supernet.mixture.temperature = self.temperature

    def searches_architecture(self, epoch: int) -> bool:
        """Whether the alphas are updated in this epoch (not during warm-up)."""
        return epoch >= self.warmup_epochs

    def architecture_penalty(self, bilevel: BilevelOptimizer) -> Optional[torch.Tensor]:
        """Everything added to the architecture loss: this strategy's regularizer and the search's
        own terms (the hardware cost of `fit_supernet(cost=...)`)."""
        terms = [self.regularizer(bilevel.supernet), bilevel.penalty() if bilevel.penalty is not None else None]
        terms = [t for t in terms if t is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def architecture_step(self, bilevel: BilevelOptimizer, train_batch: Batch, val_batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = val_batch
        return bilevel.architecture_step(x, y, regularizer=lambda: self.architecture_penalty(bilevel))

    def weight_step(self, bilevel: BilevelOptimizer, train_batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One update of the shared weights on a training batch; returns (loss, logits) detached."""
        return bilevel.weight_step(*train_batch)

    def select(self, supernet: SupernetExecutor) -> dict[str, int]:
        return supernet.architecture()

    def config(self) -> dict[str, Any]:
        """The strategy's hyper-parameters (plain values, for results)."""
        temperature = self.initial_temperature
        return {"name": self.name, "warmup_epochs": self.warmup_epochs,
                "temperature": list(temperature) if isinstance(temperature, tuple) else temperature}
