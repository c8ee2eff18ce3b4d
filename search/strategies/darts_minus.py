"""DARTS- (Chu et al., 2021): an auxiliary skip connection outside the softmax, decaying to zero.

Every ChoiceOp whose output has its option input's shape outputs
`sum_i softmax(alpha)_i * option_i(x) + beta * x`. The auxiliary skip takes over the role of a
residual path, so the skip option no longer wins the softmax just by easing optimisation; beta is
not an architecture parameter, it decays linearly per epoch, beta_e = beta0 * (1 - e / epochs) (as
in the reference code's linear schedule, beta0 = 1), and the exported architecture has no
auxiliary skip. ChoiceOps whose options change the shape (reductions) get no auxiliary skip.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from supernet import ChoiceOp, Mixture, SoftmaxMixture, SupernetExecutor

from .base import Strategy


class AuxiliarySkipMixture(SoftmaxMixture):
    """Softmax mixture + `skip_weight` * option input."""

    uses_option_input = True
    hyperparameters = ("temperature", "skip_weight")

    def __init__(self, skip_weight: float = 1.0) -> None:
        super().__init__()
        self.skip_weight = skip_weight

    def choice_output(self, choice: ChoiceOp, mixed: torch.Tensor, x: Optional[torch.Tensor]) -> torch.Tensor:
        if x is None or self.skip_weight == 0 or x.shape != mixed.shape:
            return mixed
        return mixed + self.skip_weight * x


class DARTSMinus(Strategy):
    """Auxiliary skip with a linearly decaying weight outside the softmax."""

    name = "darts-"

    def __init__(self, skip_weight: float = 1.0, warmup_epochs: int = 0) -> None:
        super().__init__(warmup_epochs=warmup_epochs)
        self.skip_weight0 = skip_weight
        self.skip_weight = skip_weight

    def mixture(self) -> Mixture:
        return AuxiliarySkipMixture(self.skip_weight)

    def schedule(self, epoch: int, epochs: int) -> dict[str, Any]:
        return {**super().schedule(epoch, epochs), "skip_weight": self.skip_weight0 * max(0.0, 1.0 - epoch / epochs)}

    def on_epoch_start(self, epoch: int, epochs: int, supernet: SupernetExecutor) -> None:
        super().on_epoch_start(epoch, epochs, supernet)
        self.skip_weight = supernet.mixture.skip_weight

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "skip_weight": self.skip_weight}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.skip_weight = state["skip_weight"]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "skip_weight": self.skip_weight0}
