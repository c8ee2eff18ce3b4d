"""Which rewrite passes the execution plan applies: `PlanOptions`, one switch per pass.

`SupernetExecutor(optimize=...)` takes True (every pass), False (none: the reference interpreter,
every node a step of its own and every ChoiceOp mixed by `Mixture.combine`) or a `PlanOptions`.
A pass whose prerequisite is off does nothing (`effective`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Union

#: pass -> the passes it builds on
_REQUIRES = {
    "sum_folding": ("fused_mixtures",),
    "affine_folding": ("fused_mixtures",),
    "deferral": ("fused_mixtures", "detaching"),
    "recompute": ("fused_mixtures",),
}


@dataclass(frozen=True)
class PlanOptions:
    """One switch per rewrite of the plan (all on by default; `none()` is the reference).

    common_subexpressions: pure ops of one type, attributes and operands run once.
    fused_mixtures: a ChoiceOp's weighted sum is one fused accumulation (`LinearCombination`);
        a sampled gate that is exactly one adds its option as it is.
    sum_folding: a ChoiceOp whose only consumer is a declared sum becomes terms of that sum.
    affine_folding: an option ending in a declared affine op absorbs its mixing weight.
    detaching: nodes no gradient reaches (options of an exactly-zero gate) run without autograd.
    deferral: an option of an exactly-zero gate that nothing else needs runs in the backward pass only.
    recompute: terms of ops that keep their input in backward are computed again there, not kept.
    channels_last: 2-D convolution graphs of layout-agnostic ops run channels-last on CPU.
    plain_weights: when no gradient reaches the architecture, mixing weights are Python floats and,
        in eval mode, options weighted exactly zero leave the plan (in training they still run: the
        reference updates their BatchNorm statistics).
    """

    common_subexpressions: bool = True
    fused_mixtures: bool = True
    sum_folding: bool = True
    affine_folding: bool = True
    detaching: bool = True
    deferral: bool = True
    recompute: bool = True
    channels_last: bool = True
    plain_weights: bool = True

    @staticmethod
    def passes() -> tuple[str, ...]:
        """The names of the switches, in the order the plan applies them."""
        return tuple(f.name for f in fields(PlanOptions))

    @staticmethod
    def none() -> "PlanOptions":
        """Every pass off: the reference interpreter."""
        return PlanOptions(**{name: False for name in PlanOptions.passes()})

    @staticmethod
    def of(optimize: Union[bool, "PlanOptions"]) -> "PlanOptions":
        """The options an `optimize=` argument means."""
        if isinstance(optimize, PlanOptions):
            return optimize
        if not isinstance(optimize, bool):
            raise TypeError(f"optimize must be a bool or PlanOptions, got {type(optimize).__name__}")
        return PlanOptions() if optimize else PlanOptions.none()

    def without(self, name: str) -> "PlanOptions":
        """These options with pass `name` off."""
        return replace(self, **{self._checked(name): False})

    def but(self, name: str) -> "PlanOptions":
        """These options with pass `name` and its prerequisites on."""
        return replace(self, **{n: True for n in (self._checked(name), *_REQUIRES.get(name, ()))})

    def effective(self, name: str) -> bool:
        """Whether pass `name` is on and so are the passes it builds on."""
        return getattr(self, name) and all(getattr(self, n) for n in _REQUIRES.get(name, ()))

    @property
    def rewrites(self) -> bool:
        """Whether any pass is on (False: the reference interpreter)."""
        return any(getattr(self, name) for name in self.passes())

    def _checked(self, name: str) -> str:
        if name not in self.passes():
            raise ValueError(f"unknown plan pass {name!r}; known: {list(self.passes())}")
        return name
