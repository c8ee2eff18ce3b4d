"""DrNAS (Chen et al., 2021): mixing weights drawn from a Dirichlet over the options.

The concentration of switch s is beta_s = elu(alpha_s) + 1 (positive; all ones at alpha = 0),
raised to 1 / T by the mixture's temperature T. Every training forward pass draws
w ~ Dir(beta_s ** (1/T)) with `rsample`, the pathwise (implicit reparameterisation) gradient, so
alpha learns through the random draw; in eval mode the weights are the Dirichlet mean,
deterministic, and so are `probabilities`. The architecture loss adds a regulariser on the
concentration: `reg_scale * sum_s KL(Dir(beta_s) || Dir(1))` ("kl", the reference code's default,
scale 1e-3) or `reg_scale * sum_s ||beta_s||^2` ("l2"). DrNAS's progressive partial-channel and
pruning schedule is not part of this strategy (see `pcdarts` for partial channels). The default
architecture learning rate follows the step count (`step_scaled_lr`), as GDAS's does.

Decision phase (ours, on by default): over the last 30% of the epochs (`schedules.sharpening_start`;
only when epochs remain before it) the alphas are frozen and T falls geometrically from 1 to
`final_temperature` (0.02) at the last epoch (`schedules.geometric_tail`) while the weights keep
training. The power 1/T keeps the order of the options and raises their ratios to 1/T
(p_i ∝ beta_i ** (1/T): an option 10% less concentrated than the winner ends at 0.9 ** 50 = 0.5%
of its weight), so the supernet turns into the network that will be exported, gradually, and its
final validation accuracy is that network's with the shared weights. The phase commits; it does
not add evidence: `result.confidence[sid]["evidence"]` holds each choice's probability and margin
when it began, and a choice counts as decided only if the evidence decided it (search.confidence).
Why frozen: with the alphas still learning, an edge whose options perform alike stays a mixture
(the optimiser keeps two near-equal options balanced; measured on the oracle benchmark, p 0.56-0.67
at T = 0.02). The architecture learning rate is set from the steps before the phase.
`final_temperature=1` turns the phase off.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence

from supernet import Mixture, SupernetExecutor
from supernet.mixture import Phase

from .base import Strategy
from .schedules import DECISION_TEMPERATURE, geometric_tail, sharpening_start, step_scaled_lr


# a draw from Dir(c) with every c_i this large is its mean within 1e-2: sharper is only overflow
MAX_CONCENTRATION = 1e4
MIN_CONCENTRATION = 1e-8  # Dir needs c > 0; exp underflows to 0 below ~1e-45


class _DirichletDraw(torch.autograd.Function):
    """w ~ Dir(c) from `generator`, with torch's pathwise gradient (`Dirichlet.rsample` draws the
    same from the global generator and takes no generator)."""

    @staticmethod
    def forward(ctx: Any, c: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        x = torch._sample_dirichlet(c, generator=generator)
        ctx.save_for_backward(x, c)
        return x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, c = ctx.saved_tensors
        total = c.sum(-1, True).expand_as(c)
        return torch._dirichlet_grad(x, c, total) * (grad - (x * grad).sum(-1, True)), None


def dirichlet_rsample(c: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A reparameterised draw from Dir(c) (as `Dirichlet(c).rsample()`), from `generator`
    (None: torch's global generator)."""
    return _DirichletDraw.apply(c, generator)


def concentration(alpha: torch.Tensor) -> torch.Tensor:
    """The Dirichlet concentration of a logit vector: elu(alpha) + 1 > 0."""
    return F.elu(alpha) + 1.0


class DirichletMixture(Mixture):
    """Training: w ~ Dir((elu(alpha) + 1) ** (1 / temperature)) (rsample); eval: its mean."""

    hyperparameters = ("temperature",)

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def concentration(self, alpha: torch.Tensor) -> torch.Tensor:
        """The (sharpened) Dirichlet concentration the mixture draws from: beta ** (1/T), computed
        in logs and scaled down (ratios kept) where its largest entry would pass MAX_CONCENTRATION
        (float32 overflows at 3e38, which beta ** 50 reaches), never below MIN_CONCENTRATION."""
        beta = concentration(alpha)
        if self.temperature == 1.0:
            return beta
        log_c = beta.clamp_min(MIN_CONCENTRATION).log() / self.temperature  # elu(a) + 1 is 0.0 in float32 below a = -17
        excess = (log_c.max() - math.log(MAX_CONCENTRATION)).clamp_min(0.0)
        return (log_c - excess).exp().clamp_min(MIN_CONCENTRATION)

    def weights(
        self, alpha: torch.Tensor, training: bool, sid: Optional[str] = None, phase: Optional[Phase] = None
    ) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        if training:
            return dirichlet_rsample(self.concentration(alpha), self.generator(alpha.device)), None
        return self.distribution(alpha), None

    def distribution(self, alpha: torch.Tensor, sid: Optional[str] = None) -> torch.Tensor:
        log_beta = concentration(alpha).clamp_min(MIN_CONCENTRATION).log()
        return torch.softmax(log_beta / self.temperature, dim=-1)  # beta ** (1/T), normalised


class DrNAS(Strategy):
    """Dirichlet mixture with pathwise gradients and a concentration regulariser."""

    name = "drnas"

    def __init__(
        self,
        reg_type: str = "kl",
        reg_scale: float = 1e-3,
        warmup_epochs: int = 0,
        final_temperature: float = DECISION_TEMPERATURE,
    ) -> None:
        if reg_type not in ("kl", "l2"):
            raise ValueError(f"reg_type must be 'kl' or 'l2', got {reg_type!r}")
        if (
            isinstance(final_temperature, bool)
            or not isinstance(final_temperature, (int, float))
            or not 0 < final_temperature <= 1
        ):
            raise ValueError(
                f"final_temperature must be a number in (0, 1] (1: no decision phase), got {final_temperature!r}"
            )
        super().__init__(warmup_epochs=warmup_epochs)
        self.reg_type, self.reg_scale = reg_type, reg_scale
        self.epochs = 0  # set by plan()
        self.final_temperature = float(final_temperature)

    def mixture(self) -> Mixture:
        return DirichletMixture(self.temperature)

    def schedule(self, epoch: int, epochs: int) -> dict[str, Any]:
        phase = self.decision_start(epochs) is not None
        return {"temperature": geometric_tail(epoch, epochs, self.final_temperature) if phase else 1.0}

    def plan(self, epochs: int, steps_per_epoch: int) -> None:
        super().plan(epochs, steps_per_epoch)
        self.epochs = epochs

    def decision_start(self, epochs: int) -> Optional[int]:
        """The first epoch of the decision phase (None: no such phase, or no epoch would learn
        the architecture before it)."""
        start = sharpening_start(epochs)
        return start if self.final_temperature < 1.0 and start > self.warmup_epochs else None

    def architecture_steps(self, epochs: int) -> int:
        start = self.decision_start(epochs)
        return max(0, (epochs if start is None else start) - self.warmup_epochs) * self.steps_per_epoch

    def searches_architecture(self, epoch: int) -> bool:
        start = self.decision_start(self.epochs) if self.epochs else None
        return super().searches_architecture(epoch) and (start is None or epoch < start)

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
        return {
            **super().config(),
            "reg_type": self.reg_type,
            "reg_scale": self.reg_scale,
            "final_temperature": self.final_temperature,
        }
