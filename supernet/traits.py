"""What an op declares about its computation: the facts the execution plan's rewrites rely on.

Every `Op` subclass carries `traits: ClassVar[OpTraits]`. The plan rewrites an op only as far as
its traits allow, and the defaults allow nothing: an op that declares nothing is never merged with
another, computed again, deferred to the backward pass, folded into a sum or a mixing weight, or
run channels-last. The core never recognises an op by its class name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Affine:
    """An op's output is `scale * f(x) + shift`, per feature along `axis` of its input, where scale
    and shift are the owned weights at operand positions `scale` and `shift` (BatchNorm: 3 and 4,
    after the running statistics). Built without them, the op has fewer operands and takes, at those
    positions of its call, a per-feature scale of the size of that axis and None for the shift."""

    axis: int
    scale: int
    shift: int


@dataclass(frozen=True)
class OpTraits:
    """Declared properties of an op class (conservative defaults: nothing is assumed).

    pure: the output is a deterministic function of the operands and attributes alone (no random
        draws, no state): two such ops on the same operands may be merged (common subexpressions),
        and the op may be run again in the backward pass.
    deterministic: no random draws: run later on the same inputs, the op computes the same output
        (it may update buffers of its own, as BatchNorm's statistics), so an option whose gate is
        exactly zero may be computed in the backward pass only. Implied by `pure`.
    keeps_input: the op's own backward keeps its input anyway, so computing its output again
        there costs no memory, where keeping it would (poolings).
    affine: the output is `scale * f(x) + shift` through two owned weights (`Affine`: where they
        are, along which axis of the input they apply). None: not affine.
    layout_agnostic: accepts a 4-D input in any memory format and keeps it (channels-last runs
        through it); `Op.accepts_channels_last` may refuse it for some configurations.
    zero: the output is all zeros (its mixture term vanishes; it never needs to run). Implies
        `data_independent`.
    data_independent: the output carries nothing of the operands' values (a constant): no path of
        information runs through the op, so an architecture whose every path does is a dead network.
    sum: the output is the plain sum of the operands (mixtures feeding it fold into it).
    """

    pure: bool = False
    deterministic: bool = False
    keeps_input: bool = False
    affine: Optional["Affine"] = None
    layout_agnostic: bool = False
    zero: bool = False
    data_independent: bool = False
    sum: bool = False

    @property
    def carries_no_data(self) -> bool:
        """Whether the output is independent of the operands' values (declared, or implied by `zero`)."""
        return self.zero or self.data_independent

    @property
    def draws_nothing(self) -> bool:
        """Whether the op is deterministic (declared, or implied by `pure`)."""
        return self.pure or self.deterministic
