"""How the supernet combines the options of a ChoiceOp: the mixing weights drawn from its logits.

`SoftmaxMixture` is DARTS: every option runs, weighted by softmax(alpha / temperature). Other
strategies subclass `Mixture`: sampling one path (return the sampled indices as `active`), gates,
Dirichlet draws... The executor runs only the options listed as active, and never runs a `Zero`
option when another one runs (its contribution is exactly zero).

Mixtures that need more than the weights (partial channels, an auxiliary skip, edge weights) set
`uses_option_input`: the executor then finds each ChoiceOp's option input, the one node all of its
options read, feeds the options `option_input(choice, x)` instead of it, and outputs
`choice_output(choice, mixed, x)`. `bind(supernet)` runs once, when the executor is built, e.g. to
add architecture parameters of its own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .choice import ChoiceOp


class Mixture:
    """Turns one switch's logits into mixing weights, and combines the options' outputs."""

    temperature: float = 1.0
    #: True: the executor calls `option_input` and `choice_output` for every ChoiceOp
    uses_option_input: bool = False

    def bind(self, supernet: Any) -> None:
        """Called once by the SupernetExecutor this mixture drives, at the end of its construction."""

    def weights(self, alpha: torch.Tensor, training: bool) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        """Mixing weights (one per option) and the indices of the options to run (None: all)."""
        raise NotImplementedError

    def distribution(self, alpha: torch.Tensor) -> torch.Tensor:
        """The architecture distribution the logits encode, differentiable (e.g. for cost terms)."""
        return torch.softmax(alpha / self.temperature, dim=-1)

    def probabilities(self, alpha: torch.Tensor) -> torch.Tensor:
        """The architecture distribution the logits encode (for history, argmax and plots)."""
        return self.distribution(alpha.detach())

    def combine(self, weights: torch.Tensor, outputs: dict[int, torch.Tensor]) -> torch.Tensor:
        """The ChoiceOp's output from the weights and the outputs of the options that ran."""
        items = iter(outputs.items())
        i, out = next(items)
        total = weights[i] * out
        for i, out in items:
            total = total + weights[i] * out
        return total

    def option_input(self, choice: "ChoiceOp", x: torch.Tensor) -> torch.Tensor:
        """What the options of `choice` receive instead of their input `x` (only with
        `uses_option_input`). With fewer channels than `x` (the leading ones), the options'
        weights are narrowed to match (see supernet_executor)."""
        return x

    def choice_output(self, choice: "ChoiceOp", mixed: torch.Tensor, x: Optional[torch.Tensor]) -> torch.Tensor:
        """The ChoiceOp's output from the combined options and the option input `x` (None when the
        options do not read one single node); only with `uses_option_input`."""
        return mixed


class SoftmaxMixture(Mixture):
    """DARTS: sum_i softmax(alpha / T)_i * option_i(x), every option runs."""

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def weights(self, alpha: torch.Tensor, training: bool) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        return torch.softmax(alpha / self.temperature, dim=-1), None
