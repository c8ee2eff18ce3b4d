"""How the supernet combines the options of a ChoiceOp: the mixing weights drawn from its logits.

`SoftmaxMixture` is DARTS: every option runs, weighted by softmax(alpha / temperature). Other
strategies subclass `Mixture`: sampling one path (return the sampled indices as `active`), gates,
Dirichlet draws... The executor runs only the options listed as active, and never runs a `Zero`
option when another one runs (its contribution is exactly zero).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch


class Mixture:
    """Turns one switch's logits into mixing weights, and combines the options' outputs."""

    temperature: float = 1.0

    def weights(self, alpha: torch.Tensor, training: bool) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        """Mixing weights (one per option) and the indices of the options to run (None: all)."""
        raise NotImplementedError

    def probabilities(self, alpha: torch.Tensor) -> torch.Tensor:
        """The architecture distribution the logits encode (for history, argmax and plots)."""
        return torch.softmax(alpha.detach() / self.temperature, dim=-1)

    def combine(self, weights: torch.Tensor, outputs: dict[int, torch.Tensor]) -> torch.Tensor:
        """The ChoiceOp's output from the weights and the outputs of the options that ran."""
        items = iter(outputs.items())
        i, out = next(items)
        total = weights[i] * out
        for i, out in items:
            total = total + weights[i] * out
        return total


class SoftmaxMixture(Mixture):
    """DARTS: sum_i softmax(alpha / T)_i * option_i(x), every option runs."""

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def weights(self, alpha: torch.Tensor, training: bool) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        return torch.softmax(alpha / self.temperature, dim=-1), None
