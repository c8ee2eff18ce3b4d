"""The execution plan IR and its interpreter: a straight-line program over numbered value slots.

A `Plan` is a list of steps. Every step reads the values in some slots (`reads`), writes one slot
(`out`), may run without autograd (`detached`) and releases the slots it is the last to read
(`frees`). What a step computes is its kind:

- `LoadWeight`: a weight or buffer, sliced to its current shape, times its value-choice mask;
- `CallOp`: an op on its operands (`CallContiguous`: on contiguous copies, inside a channels-last
  plan; `CallReshaping`: an op changing its 4-D input's shape there, its input's gradient kept
  channels-last; `CallScaledAffine`: an affine op with a mixing weight folded into its weight and bias);
- `FeedOptions` / `CallRouted`: what a mixture feeds the options of a ChoiceOp instead of their
  input (`Mixture.option_input`, e.g. PC-DARTS's partial channels), and an op reading it;
- `Accumulate`: a fused weighted sum of option outputs (`LinearCombination`); `Combine`: a ChoiceOp
  through its mixture's own `combine`; `ChoiceOutput`: `Mixture.choice_output`.

`Plan.run` is the one interpreter: a loop over the steps reading and writing a list. The passes in
`passes.py` build plans; the reference (`PlanOptions.none()`) is a plan with no rewrite pass, one
step per node. The mixing weights reach the steps as coefficients, `coefs[switch][position]`: 0-d
tensor views of the weights (differentiable), or Python floats when no gradient can reach them.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence

import torch

from .axis_role import is_kernel
from .combination import Constant, LinearCombination, OffGate, ScaledGradient, Unit, Weighted, linear_combination
from .mixture import Mixture
from .node import Node, Op

Ref = Optional[tuple[int, int]]  # (switch number, position in its weights); None: coefficient 1


class Context:
    """What the steps of one forward pass read besides the slots."""

    __slots__ = ("coefs", "weights", "training", "mixture", "values")

    def __init__(
        self,
        coefs: Sequence[Sequence[Any]],
        weights: dict[str, torch.Tensor],
        training: bool,
        mixture: Mixture,
        values: Optional[Sequence[Sequence[float]]] = None,
    ) -> None:
        self.coefs, self.weights, self.training, self.mixture = coefs, weights, training, mixture
        self.values = values  # the coefficients as floats, when they were read (sampled gates)


class Step:
    """Writes slot `out` from slots `reads`; `frees`: slots it is the last to read; `detached`:
    runs without autograd; `node`: the graph node it computes (None for plan-made steps)."""

    __slots__ = ("out", "reads", "frees", "detached", "node")

    def __init__(self, node: Optional[Node], reads: tuple[int, ...], out: int) -> None:
        self.node, self.reads, self.out, self.frees, self.detached = node, reads, out, (), False

    def run(self, vals: list, ctx: Context) -> None:
        raise NotImplementedError


class LoadWeight(Step):
    """A weight or buffer, sliced to its current shape, times its value-choice mask."""

    __slots__ = ("store", "name", "index", "mask")

    def __init__(self, node: Node, store: dict, name: str, index: Optional[tuple], mask: Any, out: int) -> None:
        super().__init__(node, (), out)
        self.store, self.name, self.index, self.mask = store, name, index, mask

    def run(self, vals: list, ctx: Context) -> None:
        weight = self.store[self.name]
        if self.index is not None:
            weight = weight[self.index]
        if self.mask is not None:
            weight = weight * self.mask(ctx.weights)
        vals[self.out] = weight


class CallOp(Step):
    """An op on its operands' values (`Op.compute`, in the pass's mode)."""

    __slots__ = ()

    def run(self, vals: list, ctx: Context) -> None:
        vals[self.out] = self.node.compute(*[vals[i] for i in self.reads], training=ctx.training)


class CallContiguous(CallOp):
    """An op that refuses channels-last inputs (`Op.accepts_channels_last`) inside a channels-last
    plan: it runs on contiguous copies of its 4-D operands, and its output goes back to channels-last."""

    __slots__ = ()

    def run(self, vals: list, ctx: Context) -> None:
        out = self.node.compute(*[_contiguous(vals[i]) for i in self.reads], training=ctx.training)
        vals[self.out] = out.contiguous(memory_format=torch.channels_last) if _is_image(out) else out


class CallReshaping(CallOp):
    """An op whose output's shape differs from its 4-D data operands' (a slice, a pooling to 1x1, a
    flatten) inside a channels-last plan: its backward may hand those operands a contiguous
    gradient (slice_backward and adaptive_avg_pool2d_backward do), and bfloat16 BatchNorm backward
    on CPU loses precision when its gradient's layout differs from its input's (measured: 16x the
    per-channel error of the input gradient's sum). The gradients of `images` (positions in `reads`)
    are handed back channels-last."""

    __slots__ = ("images",)

    def __init__(self, node: Node, reads: tuple[int, ...], images: tuple[int, ...], out: int) -> None:
        super().__init__(node, reads, out)
        self.images = images

    def run(self, vals: list, ctx: Context) -> None:
        args = [vals[i] for i in self.reads]
        for i in self.images:
            if isinstance(args[i], torch.Tensor) and args[i].requires_grad:
                args[i] = ChannelsLastGradient.apply(args[i])
        vals[self.out] = self.node.compute(*args, training=ctx.training)


class ChannelsLastGradient(torch.autograd.Function):
    """`apply(x)`: x itself (no copy) in the forward pass, the gradient in channels-last memory
    format in the backward pass (no copy when it is already)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last) if grad.dim() == 4 else grad


def _is_image(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 4


def _contiguous(value: Any) -> Any:
    return value.contiguous() if _is_image(value) else value


class AffineArguments(NamedTuple):
    """Where an op whose output is `weight * f(x) + bias` takes `weight` and `bias` (positions in
    its `Op.compute` call). `append_axis`: the op has no affine parameters; a scale of
    the size of its input's `append_axis` (and no bias) is passed at those positions instead."""

    weight: int
    bias: int
    append_axis: Optional[int]


class CallScaledAffine(Step):
    """An option's last op `weight * f(x) + bias` with its mixing weight folded into weight and bias
    (or, for an op without affine parameters, passed as its weight)."""

    __slots__ = ("affine", "coef")

    def __init__(
        self, node: Op, reads: tuple[int, ...], affine: AffineArguments, coef: tuple[int, int], out: int
    ) -> None:
        super().__init__(node, reads, out)
        self.affine, self.coef = affine, coef

    def run(self, vals: list, ctx: Context) -> None:
        args = [vals[i] for i in self.reads]
        c = ctx.coefs[self.coef[0]][self.coef[1]]
        if type(c) is not float or c != 1.0:
            axis = self.affine.append_axis
            if axis is None:
                args[self.affine.weight] = args[self.affine.weight] * c
                args[self.affine.bias] = args[self.affine.bias] * c
            else:  # contiguous: BatchNorm's channels-last backward miscomputes with a stride-0 weight
                n = args[0].shape[axis]
                # at least float32: a scale standing in for parameters (float32 under autocast's bf16 x)
                dtype = torch.promote_types(args[0].dtype, torch.float32)
                args += [args[0].new_full((n,), c, dtype=dtype) if type(c) is float else c.expand(n).contiguous(), None]
        vals[self.out] = self.node.compute(*args, training=ctx.training)


class FeedOptions(Step):
    """What the mixture feeds the options of a ChoiceOp instead of their input x (`option_input`)."""

    __slots__ = ("choice",)

    def __init__(self, choice: Node, source: int, out: int) -> None:
        super().__init__(None, (source,), out)
        self.choice = choice

    def run(self, vals: list, ctx: Context) -> None:
        vals[self.out] = ctx.mixture.option_input(self.choice, vals[self.reads[0]])


class CallRouted(Step):
    """An op inside an option, on what the mixture feeds the options (`FeedOptions`) in place of
    their input. With C' of the input's C channels fed, its weights are narrowed to their leading
    entries on every axis (kernel axes excepted) whose size scales to a whole number by C'/C, and
    an op whose `groups` equals its input's channel count (depthwise) runs one group per channel.
    `reads`: the operands (the input replaced by the fed value), then the input and the fed value;
    `roles[i]`: the axis roles of operand i when it is a weight, else None. `contiguous`: the op refuses
    channels-last inputs inside a channels-last plan (as `CallContiguous`)."""

    __slots__ = ("roles", "choice_id", "depthwise", "contiguous")

    def __init__(
        self,
        node: Op,
        reads: tuple[int, ...],
        roles: tuple,
        choice_id: str,
        depthwise: bool,
        contiguous: bool,
        out: int,
    ) -> None:
        super().__init__(node, reads, out)
        self.roles, self.choice_id, self.depthwise, self.contiguous = roles, choice_id, depthwise, contiguous

    def run(self, vals: list, ctx: Context) -> None:
        node = self.node
        *args, full, narrow = [vals[i] for i in self.reads]
        full, narrow = full.shape[1], narrow.shape[1]
        if full != narrow:
            args = [a if role is None else _narrow(a, role, full, narrow) for a, role in zip(args, self.roles)]
        groups = args[0].shape[1] if self.depthwise and full != narrow else None
        if self.contiguous:
            args = [_contiguous(a) for a in args]
        try:
            out = node.compute(*args, training=ctx.training, groups=groups)
            vals[self.out] = (
                out.contiguous(memory_format=torch.channels_last) if self.contiguous and _is_image(out) else out
            )
        except RuntimeError as err:
            raise RuntimeError(
                f"{type(ctx.mixture).__name__} feeds the options of {self.choice_id} {narrow} of their {full} "
                f"channels, but {node.id} cannot run on them: {err}"
            ) from err


def _narrow(weight: torch.Tensor, roles: tuple, full: int, narrow: int) -> torch.Tensor:
    """The leading `size * narrow / full` entries of every axis where that is a whole number
    (kernel axes excepted, by their declared roles): C -> C', and C/2 -> C'/2 as well (e.g. FactorizedReduce)."""
    index = tuple(
        slice(0, size * narrow // full) if (size * narrow) % full == 0 and not is_kernel(role) else slice(None)
        for size, role in zip(weight.shape, roles)
    )
    return weight[index]


class Deferred:
    """Steps computing a value only in the backward pass (without autograd): an option whose gate
    is exactly zero, or a term computed again rather than kept. `inputs`: the slots it reads."""

    __slots__ = ("steps", "inputs", "output", "size")

    def __init__(self, steps: list[Step], inputs: tuple[int, ...], output: int) -> None:
        self.steps, self.inputs, self.output, self.size = steps, inputs, output, 0

    def bind(self, vals: list, ctx: Context) -> Callable[[], torch.Tensor]:
        """A function computing the value from the inputs as they are now."""
        captured = [vals[s] for s in self.inputs]

        def compute() -> torch.Tensor:
            local: list = [None] * self.size
            for slot, value in zip(self.inputs, captured):
                local[slot] = value
            with torch.no_grad():
                for step in self.steps:
                    step.run(local, ctx)
            return local[self.output]

        return compute


class Accumulate(Step):
    """sum_t coef_t * value_t in one buffer: one fused kernel per term (`add_`, `addcmul_`).

    `terms`: (slot, coefficient, recompute) per term computed in the forward pass; `off_gates`:
    (Deferred, coefficient) per term whose coefficient is an exact, differentiable zero, computed
    in the backward pass only. With coefficients that need a gradient (outside `torch.compile`),
    the sum is one autograd node (`LinearCombination`); each term's gradient is scaled by a
    `ScaledGradient` in front of it, when that term's own backward runs. A coefficient known to be
    exactly 1 (a sampled gate that is on) adds its term as it is."""

    __slots__ = ("terms", "off_gates")

    def __init__(
        self,
        node: Node,
        terms: tuple[tuple[int, Ref, Optional[Deferred]], ...],
        off_gates: tuple[tuple[Deferred, Ref], ...],
        out: int,
    ) -> None:
        reads = tuple(s for s, _, _ in terms) + tuple(r for _, _, d in terms if d for r in d.inputs)
        super().__init__(node, reads + tuple(r for d, _ in off_gates for r in d.inputs), out)
        self.terms, self.off_gates = terms, off_gates

    def run(self, vals: list, ctx: Context) -> None:
        coefs = ctx.coefs
        ys = [vals[slot] for slot, _, _ in self.terms]
        cs = [None if ref is None else coefs[ref[0]][ref[1]] for _, ref, _ in self.terms]
        if not (
            torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
            and (self.off_gates or any(isinstance(c, torch.Tensor) and c.requires_grad for c in cs))
        ):
            vals[self.out] = linear_combination(ys, cs)  # off-gate terms are exact zeros
            return
        known = ctx.values
        types, tensors = [], []
        for t, ((_, ref, recompute), c) in enumerate(zip(self.terms, cs)):
            if c is None or type(c) is float:
                types.append(Unit() if c is None else Constant(c))
                continue
            unit = known is not None and known[ref[0]][ref[1]] == 1.0
            if not unit and ys[t].requires_grad:
                ys[t] = ScaledGradient.apply(ys[t], c.detach())
            types.append(Weighted(not unit, None if recompute is None else recompute.bind(vals, ctx)))
            tensors.append(c)
        for deferred, ref in self.off_gates:
            types.append(OffGate(deferred.bind(vals, ctx)))
            tensors.append(coefs[ref[0]][ref[1]])
        vals[self.out] = LinearCombination.apply(tuple(types), *ys, *tensors)


class Combine(Step):
    """A ChoiceOp through its mixture's own `combine` (the reference, and mixtures that override it)."""

    __slots__ = ("sid", "positions")

    def __init__(self, node: Node, sid: str, options: tuple[tuple[int, int], ...], out: int) -> None:
        super().__init__(node, tuple(s for _, s in options), out)
        self.sid, self.positions = sid, tuple(j for j, _ in options)

    def run(self, vals: list, ctx: Context) -> None:
        outputs = {j: vals[s] for j, s in zip(self.positions, self.reads)}
        vals[self.out] = ctx.mixture.combine(ctx.weights[self.sid], outputs)


class ChoiceOutput(Step):
    """A ChoiceOp's output from its mixed options and its option input (`Mixture.choice_output`)."""

    __slots__ = ()

    def run(self, vals: list, ctx: Context) -> None:
        x = vals[self.reads[1]] if len(self.reads) > 1 else None
        vals[self.out] = ctx.mixture.choice_output(self.node, vals[self.reads[0]], x)


class Plan:
    """Steps over numbered slots; `run` binds the inputs and returns the output's value."""

    def __init__(
        self,
        steps: list[Step],
        slots: int,
        inputs: list[int],
        output: int,
        elided: list[Node],
        channels_last: bool,
        counts: dict[str, int],
    ) -> None:
        self.steps, self.slots, self.inputs, self.output = steps, slots, inputs, output
        self.elided = elided  # nodes whose own call the plan saves: recompile if one gets patched
        self.channels_last = channels_last
        self.counts = counts  # what compiling did (merged ops, folded choices...), for tests and reports

    def stale(self) -> bool:
        """Whether a node the plan merged or folded away has been given its own implementation since."""
        return any(isinstance(node, Op) and node.has_own_implementation() for node in self.elided)

    def run(self, inputs: Sequence[torch.Tensor], ctx: Context) -> Any:
        """The one interpreter: every step in order, each slot released after its last reader."""
        vals: list = [None] * self.slots
        for slot, value in zip(self.inputs, inputs):
            if self.channels_last and value.dim() == 4 and value.device.type == "cpu" and value.is_floating_point():
                value = value.contiguous(memory_format=torch.channels_last)
            vals[slot] = value
        for step in self.steps:
            if step.detached:
                with torch.no_grad():
                    step.run(vals, ctx)
            else:
                step.run(vals, ctx)
            for slot in step.frees:
                vals[slot] = None
        out = vals[self.output]
        if self.channels_last and isinstance(out, torch.Tensor) and out.dim() == 4:
            out = out.contiguous()
        return out
