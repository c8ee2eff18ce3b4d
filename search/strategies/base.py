"""The strategy interface: how options are mixed and how the architecture is stepped and chosen."""

from __future__ import annotations

from typing import Any, Optional, Union

import torch

from supernet import Mixture, SoftmaxMixture, SupernetExecutor

from ..bilevel import DEFAULT_ARCH_LR, Batch, BilevelOptimizer
from .schedules import linear, sharpening, sharpening_start


class Strategy:
    """Base strategy = first-order DARTS. Subclasses override the few hooks they change.

    - `mixture()`: the Mixture the supernet uses (softmax, Gumbel samples, gates...); strategies
      whose mixture holds state return a new one per call, and their other hooks reach it as
      `supernet.mixture`;
    - `regularizer(supernet)`: a term added to the architecture loss (None: nothing);
    - `plan(epochs, steps_per_epoch)`: called once before the search, with its length;
    - `default_arch_lr(steps)`: the architecture learning rate unless `optim` gives one;
    - `schedule(epoch, epochs)`: the mixture's hyper-parameters for the epoch (temperature
      annealing...), applied at the epoch's start with `Mixture.configure`, the one way a
      strategy changes its mixture;
    - `on_epoch_start(epoch, epochs, supernet)`: applies `schedule`; override it (calling super)
      for state of the strategy's own (a regulariser's weight);
    - `searches_architecture(epoch)`: False during the `warmup_epochs` (weights only) and a
      strategy's own frozen phases (DrNAS's decision phase);
    - `decision_start(epochs)`: the first epoch of a final phase that commits (None: none);
    - `architecture_step(bilevel, train_batch, val_batch)`: the alpha update;
    - `weight_step(bilevel, train_batch)`: the weight update (default: one pass, one step);
    - `select(supernet)`: the discrete architecture (default: argmax per switch);
    - `config()`: the hyper-parameters, recorded in the SearchResult;
    - `state_dict()` / `load_state_dict(state)`: what changes during a search (checkpoints restore
      it; the constructor's hyper-parameters are not in it). Extend both for state of your own.

    The mixture learns each step's phase (weight step, architecture step, evaluation) and the
    switch id of the logits it mixes from the executor (`Mixture.weights`); the search loop runs
    `BilevelOptimizer.weight_step` and `.architecture_step` in those phases.

    `learns_architecture = False` declares a strategy that trains the shared weights only (SPOS,
    FairNAS): the search then makes no architecture step. `derives_architecture = True` declares a
    `select` that is a derivation of its own (FairDARTS's threshold): the space's derivation rule
    (search.derivation, DARTS's top-2 inputs per node) is then not applied to its pick. `scaled_gradients = False` declares one
    whose steps do not run through `BilevelOptimizer`'s scaled backward (precision "16-mixed"
    refuses it); `fixed_graph = False` one whose mixture samples the path each step runs
    (`compile=True` refuses it: every path is a new graph).
    """

    name = "darts"
    learns_architecture = True
    derives_architecture = False
    scaled_gradients = True
    fixed_graph = True

    def __init__(self, warmup_epochs: int = 0, temperature: Union[float, tuple[float, float], str] = 1.0) -> None:
        """`warmup_epochs`: epochs of weight training before the first architecture step.
        `temperature`: of the softmax; a (start, end) pair anneals it linearly over the epochs;
        "sharpen" keeps 1, then lowers it over the last 30% of the epochs to steps / 20,000
        (`schedules.sharpening`). Not the default: measured, it makes short searches lock in
        early leaders (see the README's Strategies section)."""
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if isinstance(temperature, str) and temperature != "sharpen":
            raise ValueError(f"temperature must be a number, a (start, end) pair or 'sharpen', got {temperature!r}")
        if isinstance(temperature, (tuple, list)):
            if len(temperature) != 2:
                raise ValueError(f"temperature must be a number or a (start, end) pair, got {temperature!r}")
            temperature = (float(temperature[0]), float(temperature[1]))
        self.warmup_epochs = warmup_epochs
        self.initial_temperature = temperature
        # the current one
        self.temperature = (
            temperature[0] if isinstance(temperature, tuple) else 1.0 if temperature == "sharpen" else temperature
        )
        self.steps_per_epoch = 0  # set by plan()
        self._mixture: Optional[Mixture] = None

    def mixture(self) -> Mixture:
        if self._mixture is None:
            self._mixture = SoftmaxMixture(self.temperature)
        return self._mixture

    def regularizer(self, supernet: SupernetExecutor) -> Optional[torch.Tensor]:
        return None

    def plan(self, epochs: int, steps_per_epoch: int) -> None:
        """The search's length, known before its first epoch (schedules set from the step count)."""
        self.steps_per_epoch = steps_per_epoch

    def architecture_steps(self, epochs: int) -> int:
        """How many architecture steps a search of `epochs` epochs makes (warm-up excluded)."""
        return max(0, epochs - self.warmup_epochs) * self.steps_per_epoch

    def default_arch_lr(self, steps: int) -> float:
        """The architecture learning rate when the search's `optim` sets none, for `steps`
        architecture steps: DARTS's 3e-4 (the softmax strategies sharpen by temperature instead)."""
        return DEFAULT_ARCH_LR

    def schedule(self, epoch: int, epochs: int) -> dict[str, Any]:
        """The mixture's hyper-parameters for `epoch` of `epochs` (names of its
        `Mixture.hyperparameters`; {}: none change): the softmax temperature's annealing."""
        if isinstance(self.initial_temperature, tuple):
            return {"temperature": linear(*self.initial_temperature, epoch, epochs)}
        if self.initial_temperature == "sharpen":
            return {"temperature": sharpening(epoch, epochs, self.architecture_steps(epochs))}
        return {}

    def on_epoch_start(self, epoch: int, epochs: int, supernet: SupernetExecutor) -> None:
        """Set the mixture's hyper-parameters to this epoch's `schedule`."""
        settings = self.schedule(epoch, epochs)
        supernet.mixture.configure(**settings)
        self.temperature = settings.get("temperature", self.temperature)

    def decision_start(self, epochs: int) -> Optional[int]:
        """The first epoch of a final phase that sharpens the mixture until it commits (None: the
        strategy has none). Confidence then also reports the evidence at the phase's start."""
        return sharpening_start(epochs) if self.initial_temperature == "sharpen" else None

    def searches_architecture(self, epoch: int) -> bool:
        """Whether the alphas are updated in this epoch (not during warm-up)."""
        return epoch >= self.warmup_epochs

    def architecture_penalty(self, bilevel: BilevelOptimizer) -> Optional[torch.Tensor]:
        """Everything added to the architecture loss: this strategy's regularizer and the search's
        own terms (the hardware cost of `fit_supernet(cost=...)`)."""
        terms = [self.regularizer(bilevel.supernet), bilevel.penalty() if bilevel.penalty is not None else None]
        terms = [t for t in terms if t is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def architecture_step(
        self, bilevel: BilevelOptimizer, train_batch: Batch, val_batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = val_batch
        return bilevel.architecture_step(x, y, regularizer=lambda: self.architecture_penalty(bilevel))

    def weight_step(self, bilevel: BilevelOptimizer, train_batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One update of the shared weights on a training batch; returns (loss, logits) detached."""
        return bilevel.weight_step(*train_batch)

    def select(self, supernet: SupernetExecutor) -> dict[str, int]:
        return supernet.architecture()

    def state_dict(self) -> dict[str, Any]:
        """What the search changed in the strategy (plain data, for checkpoints)."""
        return {"temperature": self.temperature}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.temperature = state["temperature"]

    def config(self) -> dict[str, Any]:
        """The strategy's hyper-parameters (plain values, for results)."""
        temperature = self.initial_temperature
        return {
            "name": self.name,
            "warmup_epochs": self.warmup_epochs,
            "temperature": list(temperature) if isinstance(temperature, tuple) else temperature,
        }
