"""beta-DARTS (Ye et al., 2022): the Beta-Decay regulariser on the architecture logits.

The architecture loss adds `lambda * mean_s logsumexp(alpha_s)` (the smooth maximum of each
switch's logits, averaged over switches), which keeps the softmax's inputs from running away.
lambda grows linearly per epoch, lambda_e = lambda_max * min(1, e / ramp_epochs); the defaults
(50, 100) are the reference code's `50 * epoch / 100`; `ramp_epochs=None` ramps over the run.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from supernet import SupernetExecutor

from .base import Strategy


class BetaDARTS(Strategy):
    """DARTS with the logsumexp (Beta-Decay) regulariser, linearly increasing weight."""

    name = "beta-darts"

    def __init__(self, lambda_max: float = 50.0, ramp_epochs: Optional[int] = 100, warmup_epochs: int = 0) -> None:
        super().__init__(warmup_epochs=warmup_epochs)
        self.lambda_max, self.ramp_epochs = lambda_max, ramp_epochs
        self.weight = 0.0

    def on_epoch_start(self, epoch: int, epochs: int, supernet: SupernetExecutor) -> None:
        super().on_epoch_start(epoch, epochs, supernet)
        ramp = self.ramp_epochs if self.ramp_epochs is not None else epochs
        self.weight = self.lambda_max * min(1.0, epoch / max(1, ramp))

    def regularizer(self, supernet: SupernetExecutor) -> Optional[torch.Tensor]:
        smooth_max = torch.stack([torch.logsumexp(a, dim=-1) for a in supernet.alphas.values()])
        return self.weight * smooth_max.mean()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "weight": self.weight}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.weight = state["weight"]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "lambda_max": self.lambda_max, "ramp_epochs": self.ramp_epochs}
