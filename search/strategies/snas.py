"""SNAS (Xie et al., 2019): relaxed Gumbel-softmax mixing weights, every option runs.

Each switch's weights are a fresh sample of softmax((log_softmax(alpha) + g) / tau), g ~ Gumbel,
at every training forward pass (deterministic softmax(alpha) in eval mode); the gradient reaches
alpha through the sample (reparameterisation). tau starts at 1 and decays exponentially per epoch
(x0.97, floor 0.03). As in the paper, weights and architecture are trained on the same data (one
objective, no bilevel split): the architecture step uses the training batch (`arch_data="val"`
uses the validation batch instead). SNAS's resource constraint is not implemented.
"""

from __future__ import annotations

from typing import Any

import torch

from supernet import Mixture

from ..bilevel import Batch, BilevelOptimizer
from .base import Strategy
from .gdas import GumbelMixture
from .schedules import exponential


class SNAS(Strategy):
    """Relaxed Gumbel-softmax, tau = max(tau_min, tau0 * tau_decay ** epoch)."""

    name = "snas"

    def __init__(
        self,
        tau0: float = 1.0,
        tau_decay: float = 0.97,
        tau_min: float = 0.03,
        arch_data: str = "train",
        warmup_epochs: int = 0,
    ) -> None:
        if arch_data not in ("train", "val"):
            raise ValueError(f"arch_data must be 'train' or 'val', got {arch_data!r}")
        super().__init__(warmup_epochs=warmup_epochs, temperature=tau0)
        self.tau0, self.tau_decay, self.tau_min, self.arch_data = tau0, tau_decay, tau_min, arch_data

    def mixture(self) -> Mixture:
        return GumbelMixture(self.temperature, hard=False)

    def schedule(self, epoch: int, epochs: int) -> dict[str, Any]:
        return {"temperature": exponential(self.tau0, self.tau_decay, epoch, floor=self.tau_min)}

    def architecture_step(
        self, bilevel: BilevelOptimizer, train_batch: Batch, val_batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return super().architecture_step(bilevel, train_batch, train_batch if self.arch_data == "train" else val_batch)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "tau0": self.tau0,
            "tau_decay": self.tau_decay,
            "tau_min": self.tau_min,
            "arch_data": self.arch_data,
        }
