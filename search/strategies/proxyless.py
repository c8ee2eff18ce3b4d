"""ProxylessNAS (Cai et al., 2019), gradient-based: binary gates, one or two options in memory.

Weight step: each switch samples one option from p = softmax(alpha) and its ChoiceOps run only
that option (gate 1, no other path computed or kept). Architecture step: each switch samples two
distinct options from p, and its ChoiceOps run both, with binary gates g over the pair: g is the
one-hot of a draw from the renormalised pair probabilities q = softmax(alpha[pair]), carrying the
gradient of q (`g = one_hot + (q - q.detach())`). Backpropagation then gives exactly the paper's
binary-gate estimate dL/dalpha_i = sum_j dL/dg_j q_j (delta_ij - q_i) on the pair. After the
optimizer step, the logits of the unsampled options are restored and those of the pair are shifted
so that their logsumexp is unchanged: the unsampled options keep their probabilities, as in the
paper. In eval mode the argmax option runs alone. The latency loss is not implemented.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from supernet import Mixture
from supernet.mixture import Phase, phase_of

from ..bilevel import Batch, BilevelOptimizer
from .base import Strategy


class BinaryGateMixture(Mixture):
    """Two sampled paths in architecture steps, one in every other training pass.

    `paths` (a hyper-parameter, None by default) forces 1 or 2 paths in every training pass."""

    hyperparameters = ("paths",)

    def __init__(self) -> None:
        self.paths: Optional[int] = None
        self.sampled: dict[str, list[int]] = {}  # switch id -> the pair of its last two-path draw

    def weights(
        self, alpha: torch.Tensor, training: bool, sid: Optional[str] = None, phase: Optional[Phase] = None
    ) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        if not training:
            index = int(torch.argmax(alpha))
            return _one_hot(alpha, index), [index]
        p = torch.softmax(alpha.detach(), dim=-1) + 1e-12
        generator = self.generator(alpha.device)
        paths = self.paths
        if paths is None:  # by phase: two paths to compare in architecture steps, one elsewhere
            paths = 2 if phase_of(training, phase) is Phase.ARCHITECTURE_STEP else 1
        if paths == 1 or len(alpha) == 1:
            index = int(torch.multinomial(p, 1, generator=generator))
            return _one_hot(alpha, index), [index]
        pair = torch.multinomial(p, 2, replacement=False, generator=generator)
        q = torch.softmax(alpha[pair], dim=-1)
        draw = torch.zeros_like(q)
        draw[int(torch.multinomial(q.detach(), 1, generator=generator))] = 1.0
        gates = torch.zeros_like(alpha).index_put((pair,), draw + (q - q.detach()))
        if sid is not None:
            self.sampled[sid] = pair.tolist()
        return gates, pair.tolist()

    def probabilities(self, alpha: torch.Tensor, sid: Optional[str] = None) -> torch.Tensor:
        return torch.softmax(alpha.detach(), dim=-1)


def _one_hot(alpha: torch.Tensor, index: int) -> torch.Tensor:
    gates = torch.zeros_like(alpha.detach())
    gates[index] = 1.0
    return gates


class Proxyless(Strategy):
    """Binary gates: 1 path per weight step, 2 per architecture step, rescaled logits."""

    name = "proxyless"
    fixed_graph = False  # a sampled path per step

    def mixture(self) -> Mixture:
        return BinaryGateMixture()

    def architecture_step(
        self, bilevel: BilevelOptimizer, train_batch: Batch, val_batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        supernet = bilevel.supernet
        mixture = supernet.mixture
        before = {sid: a.detach().clone() for sid, a in supernet.alphas.items()}
        mixture.sampled = {}
        result = super().architecture_step(bilevel, train_batch, val_batch)  # two paths: an architecture step
        with torch.no_grad():
            for sid, alpha in supernet.alphas.items():
                old = before[sid]
                pair = mixture.sampled.get(sid)
                if pair is None:
                    alpha.copy_(old)
                    continue
                new = alpha[pair].clone()
                new -= torch.logsumexp(new, 0) - torch.logsumexp(old[pair], 0)
                alpha.copy_(old)
                alpha[pair] = new
        return result
