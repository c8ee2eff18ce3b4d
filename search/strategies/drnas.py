"""DrNAS (Chen et al., 2021): mixing weights drawn from a Dirichlet over the options.

The concentration of switch s is beta_s = elu(alpha_s) + 1 (positive; all ones at alpha = 0).
Every training forward pass draws w ~ Dir(beta_s) with `rsample`, the pathwise (implicit
reparameterisation) gradient, so alpha learns through the random draw; in eval mode the weights are
the Dirichlet mean beta / sum(beta), deterministic. The architecture loss adds a regulariser on the
concentration: `reg_scale * sum_s KL(Dir(beta_s) || Dir(1))` ("kl", the reference code's default,
scale 1e-3) or `reg_scale * sum_s ||beta_s||^2` ("l2"). DrNAS's progressive partial-channel and
pruning schedule is not part of this strategy (see `pcdarts` for partial channels). The default
architecture learning rate follows the step count (`step_scaled_lr`), as GDAS's does.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence

from supernet import Mixture, SupernetExecutor

from .base import Strategy
from .schedules import step_scaled_lr


def concentration(alpha: torch.Tensor) -> torch.Tensor:
    """The Dirichlet concentration of a logit vector: elu(alpha) + 1 > 0."""
    return F.elu(alpha) + 1.0


class DirichletMixture(Mixture):
    """Training: w ~ Dir(elu(alpha) + 1) (rsample); eval: its mean."""

    def weights(self, alpha: torch.Tensor, training: bool) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        beta = concentration(alpha)
        if training:
            return Dirichlet(beta).rsample(), None
        return beta / beta.sum(), None

    def probabilities(self, alpha: torch.Tensor) -> torch.Tensor:
        beta = concentration(alpha.detach())
        return beta / beta.sum()


class DrNAS(Strategy):
    """Dirichlet mixture with pathwise gradients and a concentration regulariser."""

    name = "drnas"

    def __init__(self, reg_type: str = "kl", reg_scale: float = 1e-3, warmup_epochs: int = 0) -> None:
        if reg_type not in ("kl", "l2"):
            raise ValueError(f"reg_type must be 'kl' or 'l2', got {reg_type!r}")
        super().__init__(warmup_epochs=warmup_epochs)
        self.reg_type, self.reg_scale = reg_type, reg_scale

    def mixture(self) -> Mixture:
        return DirichletMixture()

    def default_arch_lr(self, steps: int) -> float:
        # a random mixture learns its logits from noisy samples, as GDAS does: the same step rule
        return step_scaled_lr(steps)

    def regularizer(self, supernet: SupernetExecutor) -> Optional[torch.Tensor]:
        terms = []
        for alpha in supernet.alphas.values():
            beta = concentration(alpha)
            if self.reg_type == "kl":
                terms.append(kl_divergence(Dirichlet(beta), Dirichlet(torch.ones_like(beta))))
            else:
                terms.append((beta**2).sum())
        return self.reg_scale * torch.stack(terms).sum()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "reg_type": self.reg_type, "reg_scale": self.reg_scale}
