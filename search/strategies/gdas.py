"""GDAS (Dong & Yang, 2019): one option sampled per ChoiceOp by a hard Gumbel-softmax.

In training, each switch draws y = softmax((log_softmax(alpha) + g) / tau), g ~ Gumbel(0, 1); its
ChoiceOps run only the option argmax(y), weighted by the straight-through gate
`one_hot + (y - y.detach())`: exactly 1 in the forward pass, the gradient of y in the backward pass,
so every logit learns from the one option that ran. The weights are trained on sampled paths too.
tau anneals linearly per epoch from `tau_max` = 10 to `tau_min` = 0.1. In eval mode the argmax
option runs alone. `probabilities` is softmax(alpha), the distribution the hard samples follow.

In architecture steps another option is active too, behind a gate of exactly 0: the forward value
is still the one sampled path (the engine runs the other option in the backward pass only), but its
gate receives the gradient of its own output, `<dL/d out, o_k>`, so the logits learn by comparing
options with each other. By default (`compared=2`) the sampled option is compared with one other drawn
uniformly, the gate being the Gumbel softmax renormalised over the pair (only their two logits learn);
`compared=None` compares every option, `dL/dalpha_j = y_j (g_j - sum_k y_k g_k) / tau` (surer, dearer).
With the sampled gate's gradient alone (`relative_gradient=False`, what the straight-through gate
gives when only the sampled option runs) an option is compared with an output of zeros: it gains
whenever more of its own output would lower the loss, which rewards an option whose output already
points along the target (a parameter-free pooling early in training) over a better one that fits
(issue 21: avg-pool on five of the demo's six edges, avgpool3 over the exact maxpool3 in 2 of 5
seeds of a 10-epoch known-optimum search). xautodl's `forward_gdas` adds the unsampled gates
themselves to the edge's sum (a constant output as the baseline); measured, that baseline fixes
the 1-D benchmark and not the 2-D one, and a zero-cost baseline (each option's running mean gate
gradient from the steps that sampled it) does not fix the known optimum (benchmarks/gdas_ablation.py).
The weight steps stay single-path. The cost is the other option's forward (no autograd) in the
backward pass of architecture steps: a GDAS step 1.09-1.26x the single-gate one (DARTS space /
NB201; `compared=None`: 1.64-1.68x; benchmarks/gdas_step_ab.py).

Two more departures from the paper, for short searches (measured on the oracle benchmark):
- options that are data-independent ops (`Zero`) are never sampled nor selected (probability 0 in
  `probabilities`; their logits still get the soft sample's gradient): under hard sampling a Zero
  option's gate gets no gradient of its own (its output is zeros), so it can only gain when the
  options that do run are penalised, and on a short budget it took over edges whose downstream was
  still noisy (exporting `none` on the one edge into a node);
- the default architecture learning rate is scaled with the step count (`step_scaled_lr`): the
  paper's 3e-4 is for 250 epochs, and one sampled path per step learns slowly.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from supernet import Mixture, SupernetExecutor
from supernet.mixture import Phase

from .base import Strategy
from .fairdarts import zero_positions
from .schedules import linear, step_scaled_lr


def gumbel_scores(alpha: torch.Tensor, temperature: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(log_softmax(alpha) + Gumbel noise) / temperature, the noise from `generator` (None: torch's
    global generator): a Gumbel softmax sample is their softmax."""
    gumbels = -torch.empty_like(alpha).exponential_(generator=generator).clamp_min(1e-20).log()
    return (torch.log_softmax(alpha, dim=-1) + gumbels) / temperature


class GumbelMixture(Mixture):
    """Gumbel-softmax weights: hard (one option runs, straight-through gradient) or relaxed."""

    hyperparameters = ("temperature",)

    def __init__(
        self,
        temperature: float = 1.0,
        hard: bool = True,
        exclude_data_independent: bool = False,
        relative_gradient: bool = False,
        compared: Optional[int] = None,
    ) -> None:
        if compared is not None and not (
            isinstance(compared, int) and not isinstance(compared, bool) and compared >= 2
        ):
            raise ValueError(f"GumbelMixture(compared=...) takes None (every option) or at least 2, got {compared!r}")
        self.compared = compared
        self.temperature = temperature
        self.hard = hard
        self.exclude_data_independent = exclude_data_independent
        # hard only: in architecture steps every option that may be sampled is active behind a gate of
        # exactly 0 (run in the backward pass only), so that every gate gets its option's gradient
        self.relative_gradient = relative_gradient
        # switch id -> additive mask of its logits (-inf on the options never sampled), from bind
        self.masks: dict[str, torch.Tensor] = {}
        self._allowed: dict[str, list[int]] = {}  # switch id -> positions that may be sampled

    def bind(self, supernet: SupernetExecutor) -> None:
        if not self.exclude_data_independent:
            return
        for sid, positions in zero_positions(supernet).items():
            alpha = supernet.alphas[sid]
            if positions and len(positions) < len(alpha):
                mask = torch.zeros(len(alpha))
                mask[sorted(positions)] = float("-inf")
                self.masks[sid] = mask

    def _masked(self, alpha: torch.Tensor, sid: Optional[str]) -> torch.Tensor:
        mask = self.masks.get(sid) if sid is not None else None
        return alpha if mask is None else alpha + mask.to(alpha)

    def _pick(self, scores: torch.Tensor, sid: Optional[str]) -> int:
        """argmax of `scores` over the options of switch `sid` that may be sampled."""
        return int(torch.argmax(self._masked(scores.detach(), sid)))

    def weights(
        self, alpha: torch.Tensor, training: bool, sid: Optional[str] = None, phase: Optional[Phase] = None
    ) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        if not training:
            if not self.hard:
                return torch.softmax(alpha, dim=-1), None
            index = self._pick(alpha, sid)
            return torch.nn.functional.one_hot(torch.tensor(index), len(alpha)).to(alpha), [index]
        generator = self.generator(alpha.device)
        scores = gumbel_scores(alpha, self.temperature, generator)
        y = torch.softmax(scores, dim=-1)
        if not self.hard:
            return y, None
        index = self._pick(y, sid)  # the excluded options are never the sampled path
        one_hot = torch.zeros_like(y)
        one_hot[index] = 1.0
        if self.relative_gradient and phase is Phase.ARCHITECTURE_STEP:
            allowed = self._allowed.get(sid) if sid is not None else list(range(len(y)))
            if allowed is None:  # once per switch: the positions that may be sampled
                mask = self.masks.get(sid)
                allowed = self._allowed[sid] = [k for k in range(len(y)) if mask is None or mask[k] == 0]
            if self.compared is None or self.compared >= len(allowed):
                return one_hot + (y - y.detach()), allowed
            # the sampled option and `compared - 1` others drawn uniformly; the gate is the Gumbel softmax
            # renormalised over them, so only their logits learn, each relative to the others drawn
            others = [k for k in allowed if k != index]
            drawn = torch.randperm(len(others), generator=generator, device=alpha.device)[: self.compared - 1]
            subset = sorted([index] + [others[int(k)] for k in drawn])
            part = torch.zeros_like(y).index_put(
                (torch.tensor(subset, device=y.device),), torch.softmax(scores[subset], -1)
            )
            return one_hot + (part - part.detach()), subset
        return one_hot + (y - y.detach()), [index]

    def distribution(self, alpha: torch.Tensor, sid: Optional[str] = None) -> torch.Tensor:
        return torch.softmax(self._masked(alpha, sid) / self.temperature, dim=-1)

    def probabilities(self, alpha: torch.Tensor, sid: Optional[str] = None) -> torch.Tensor:
        return torch.softmax(self._masked(alpha, sid).detach(), dim=-1)


class GDAS(Strategy):
    """Hard Gumbel-softmax sampling, one path per ChoiceOp, tau annealed linearly per epoch."""

    name = "gdas"
    fixed_graph = False  # a sampled path per step

    def __init__(
        self,
        tau_max: float = 10.0,
        tau_min: float = 0.1,
        warmup_epochs: int = 0,
        relative_gradient: bool = True,
        compared: Optional[int] = 2,
    ) -> None:
        super().__init__(warmup_epochs=warmup_epochs, temperature=tau_max)
        if compared is not None and not (
            isinstance(compared, int) and not isinstance(compared, bool) and compared >= 2
        ):
            raise ValueError(f"GDAS(compared=...) takes None (every option) or an integer >= 2, got {compared!r}")
        self.tau_max, self.tau_min = tau_max, tau_min
        self.relative_gradient, self.compared = relative_gradient, compared

    def mixture(self) -> Mixture:
        return GumbelMixture(
            self.temperature,
            hard=True,
            exclude_data_independent=True,
            relative_gradient=self.relative_gradient,
            compared=self.compared,
        )

    def default_arch_lr(self, steps: int) -> float:
        return step_scaled_lr(steps)

    def schedule(self, epoch: int, epochs: int) -> dict[str, Any]:
        return {"temperature": linear(self.tau_max, self.tau_min, epoch, epochs)}

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "tau_max": self.tau_max,
            "tau_min": self.tau_min,
            "relative_gradient": self.relative_gradient,
            "compared": self.compared,
        }
