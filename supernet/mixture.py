"""How the supernet combines the options of a ChoiceOp: the mixing weights drawn from its logits.

`SoftmaxMixture` is DARTS: every option runs, weighted by softmax(alpha / temperature). Other
strategies subclass `Mixture`: sampling one path (return the sampled indices as `active`), gates,
Dirichlet draws... The executor runs only the options listed as active, and never runs a `Zero`
option when another one runs (its contribution is exactly zero).

The contract, in both directions:
- the executor tells `weights` whose logits it mixes (`sid`, the switch or value-parameter id) and
  the `phase` the forward pass runs in (a weight step, an architecture step, another training-mode
  pass, or evaluation; the optimizer declares the steps with `SupernetExecutor.in_phase`), so a
  mixture needs no map from tensors back to ids and no flag set from outside;
- a strategy's schedule sets the mixture's `hyperparameters` (e.g. the temperature) through
  `configure`, the one way to change them;
- `state_dict()` / `load_state_dict()` hold what a checkpoint must restore (by default the
  hyper-parameters; mixtures with schedules of their own add them).

Mixtures that need more than the weights (partial channels, an auxiliary skip, edge weights) set
`uses_option_input`: the executor then finds each ChoiceOp's option input, the one node all of its
options read, feeds the options `option_input(choice, x)` instead of it, and outputs
`choice_output(choice, mixed, x)`. `bind(supernet)` runs once, when the executor is built, e.g. to
add architecture parameters of its own.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Sequence

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .choice import ChoiceOp


class Phase(enum.Enum):
    """What a forward pass is for; the mixture is told it with every call of `Mixture.weights`."""

    WEIGHT_STEP = "weight step"  # the shared weights learn from this pass
    ARCHITECTURE_STEP = "architecture step"  # the logits learn from this pass
    TRAINING = "training"  # any other pass in training mode (e.g. the validation metrics of a warm-up)
    EVALUATION = "evaluation"  # eval mode


def phase_of(training: bool, phase: Optional[Phase]) -> Phase:
    """`phase`, or the one a call without it implies: TRAINING in training mode, else EVALUATION."""
    if phase is not None:
        return phase
    return Phase.TRAINING if training else Phase.EVALUATION


class Mixture:
    """Turns one switch's logits into mixing weights, and combines the options' outputs."""

    temperature: float = 1.0
    #: True: the executor calls `option_input` and `choice_output` for every ChoiceOp
    uses_option_input: bool = False
    #: the names `configure` may set (a strategy's schedule), also the default checkpointed state
    hyperparameters: ClassVar[tuple[str, ...]] = ()
    #: device -> the generator the mixture's random draws on it take (set by `draw_from`)
    generators: Optional[Callable[[torch.device], torch.Generator]] = None

    def bind(self, supernet: Any) -> None:
        """Called once by the SupernetExecutor this mixture drives, at the end of its construction."""

    def draw_from(self, generators: Optional[Callable[[torch.device], torch.Generator]]) -> None:
        """Take every random draw from `generators(device)` (a search's own generators, so that
        concurrent searches do not share a stream); None: torch's global generator."""
        self.generators = generators

    def generator(self, device: torch.device) -> Optional[torch.Generator]:
        """The generator of a draw on `device`: pass it as `generator=` to every sampling call."""
        return self.generators(device) if self.generators is not None else None

    def weights(
        self, alpha: torch.Tensor, training: bool, sid: Optional[str] = None, phase: Optional[Phase] = None
    ) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        """Mixing weights (one per option) and the indices of the options to run (None: all).

        `sid`: the switch or value-parameter id `alpha` belongs to (None when called without one);
        `phase`: what the pass is for (None: implied by `training`, see `phase_of`)."""
        raise NotImplementedError

    def configure(self, **values: Any) -> None:
        """Set hyper-parameters by name (those listed in `hyperparameters`); how a strategy's
        schedule changes the mixture (`Strategy.schedule`). An unknown name is an error."""
        unknown = sorted(set(values) - set(self.hyperparameters))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} has no hyper-parameter {unknown[0]!r}; "
                f"it has {list(self.hyperparameters) or 'none'}"
            )
        for name, value in values.items():
            setattr(self, name, value)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint restores: the hyper-parameters (mixtures with state of their own add it)."""
        return {name: getattr(self, name) for name in self.hyperparameters}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.configure(**state)

    def distribution(self, alpha: torch.Tensor, sid: Optional[str] = None) -> torch.Tensor:
        """The architecture distribution the logits of `sid` encode, differentiable (e.g. for cost terms)."""
        return torch.softmax(alpha / self.temperature, dim=-1)

    def probabilities(self, alpha: torch.Tensor, sid: Optional[str] = None) -> torch.Tensor:
        """The architecture distribution the logits of `sid` encode (for history, argmax and plots)."""
        return self.distribution(alpha.detach(), sid)

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

    hyperparameters = ("temperature",)

    def __init__(self, temperature: float = 1.0) -> None:
        self.temperature = temperature

    def weights(
        self, alpha: torch.Tensor, training: bool, sid: Optional[str] = None, phase: Optional[Phase] = None
    ) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        return torch.softmax(alpha / self.temperature, dim=-1), None
