"""The execution plan of a SupernetExecutor: a straight-line program, compiled once per active set.

Compiling walks the graph once: it keeps the nodes the active options need (never a `Zero` option
while another one runs), merges common subexpressions, folds ChoiceOps into the sum that consumes
them and mixing weights into affine option outputs (see `fusion`), numbers every value with a slot
and records, per step, the slots it reads, the slot it writes and the slots it is the last to read.
Running it is a loop over steps reading and writing a list: no graph walk, expression evaluation,
node dictionary or shape check. A value is dropped as soon as its last reader has run.

The mixing weights reach the steps as coefficients, `coefs[switch][position]`: 0-d tensor views of
the weights (differentiable), or Python floats when no gradient can reach the architecture (weight
steps, `torch.no_grad()`): exact zeros then drop their options from the plan, exact ones turn a
weighted term into a plain addition. A differentiable coefficient that is exactly zero (a sampled
gate that is off, ProxylessNAS) passes no gradient to its option, only needs the option's value
for its own gradient: the nodes serving that option alone run in the backward pass, without
autograd (`Deferred`), and other nodes that no gradient reaches run without autograd. A pooling
term is computed again there too, rather than kept (`fusion.recomputable`), and a coefficient that
is exactly one (a sampled gate that is on) adds its term as it is.

Compiled against the parameters' current values (shapes, attributes): the executor recompiles when
one of them changes.
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, Optional, Sequence

import torch

from .choice import ChoiceOp, exclusive_ancestors
from .combination import LinearCombination, ScaledGradient, linear_combination
from .executor import shared_slice
from .expression import lazy
from .fusion import (
    ScaleSlots, common_subexpressions, is_sum, is_zero_option, patched, prefers_channels_last, recomputable,
    scale_slots,
)
from .mixture import Mixture
from .node import Node, Op, Tensor
from .plan_options import PlanOptions

if TYPE_CHECKING:  # pragma: no cover
    from .supernet_executor import SupernetExecutor

Ref = Optional[tuple[int, int]]  # (switch number, position in its weights); None: coefficient 1


class Context:
    """What the steps of one forward pass read besides the slots."""

    __slots__ = ("coefs", "weights", "training", "mixture", "values")

    def __init__(self, coefs: Sequence[Sequence[Any]], weights: dict[str, torch.Tensor], training: bool, mixture: Mixture,
                 values: Optional[Sequence[Sequence[float]]] = None) -> None:
        self.coefs, self.weights, self.training, self.mixture = coefs, weights, training, mixture
        self.values = values  # the coefficients as floats, when they were read (sampled gates)


class Step:
    """Writes slot `out`; `free`: slots it is the last to read; `detached`: runs without autograd."""

    __slots__ = ("out", "free", "detached")

    def run(self, vals: list, ctx: Context) -> None:
        raise NotImplementedError


class LoadWeight(Step):
    """A weight or buffer, sliced to its current shape, times its value-choice mask."""

    __slots__ = ("store", "name", "index", "mask")

    def __init__(self, store: dict, name: str, index: Optional[tuple], mask: Any, out: int) -> None:
        self.store, self.name, self.index, self.mask, self.out = store, name, index, mask, out

    def run(self, vals: list, ctx: Context) -> None:
        weight = self.store[self.name]
        if self.index is not None:
            weight = weight[self.index]
        if self.mask is not None:
            weight = weight * self.mask(ctx.weights)
        vals[self.out] = weight


class CallOp(Step):
    """An op on its operands' values, through its own `_forward_implementation`."""

    __slots__ = ("node", "args")

    def __init__(self, node: Op, args: tuple[int, ...], out: int) -> None:
        self.node, self.args, self.out = node, args, out

    def run(self, vals: list, ctx: Context) -> None:
        node = self.node
        node.training = ctx.training
        vals[self.out] = node._forward_implementation(*[vals[i] for i in self.args])


class CallContiguous(CallOp):
    """An op that refuses channels-last inputs (`Op.accepts_channels_last`) inside a channels-last
    plan: it runs on contiguous copies of its 4-D operands, and its output goes back to channels-last."""

    __slots__ = ()

    def run(self, vals: list, ctx: Context) -> None:
        node = self.node
        node.training = ctx.training
        out = node._forward_implementation(*[_contiguous(vals[i]) for i in self.args])
        vals[self.out] = out.contiguous(memory_format=torch.channels_last) if _is_image(out) else out


def _is_image(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == 4


def _contiguous(value: Any) -> Any:
    return value.contiguous() if _is_image(value) else value


class CallScaledAffine(Step):
    """An option's last op `weight * f(x) + bias` with its mixing weight folded into weight and bias
    (or, for an op without affine parameters, passed as its weight)."""

    __slots__ = ("node", "args", "slots", "coef")

    def __init__(self, node: Op, args: tuple[int, ...], slots: ScaleSlots, coef: tuple[int, int], out: int) -> None:
        self.node, self.args, self.slots, self.coef, self.out = node, args, slots, coef, out

    def run(self, vals: list, ctx: Context) -> None:
        node = self.node
        node.training = ctx.training
        args = [vals[i] for i in self.args]
        c = ctx.coefs[self.coef[0]][self.coef[1]]
        if type(c) is not float or c != 1.0:
            axis = self.slots.append_axis
            if axis is None:
                args[self.slots.weight] = args[self.slots.weight] * c
                args[self.slots.bias] = args[self.slots.bias] * c
            else:  # contiguous: BatchNorm's channels-last backward miscomputes with a stride-0 weight
                n = args[0].shape[axis]
                args += [args[0].new_full((n,), c) if type(c) is float else c.expand(n).contiguous(), None]
        vals[self.out] = node._forward_implementation(*args)


class Accumulate(Step):
    """sum_t coef_t * value_t in one buffer: one fused kernel per term (`add_`, `addcmul_`).

    With coefficients that need a gradient (outside `torch.compile`), the whole sum is one autograd
    node (`LinearCombination`): its backward hands every coefficient the dot product of the grad
    with its term, without materialising their product, and every term the grad, scaled by a
    `ScaledGradient` in front of the term when that term's own backward runs (one scaled gradient
    alive at a time). A coefficient known to be exactly 1 (a sampled gate that is on) adds its term
    as it is. `deferred` terms have an exactly zero coefficient: their value is
    only computed in the backward pass, for that dot product. Terms with a `Deferred` of their own
    (`terms[t][2]`, a pure op) are computed again there instead of being kept for it."""

    __slots__ = ("terms", "deferred")

    def __init__(self, terms: tuple[tuple[int, Ref, Optional["Deferred"]], ...], deferred: tuple[tuple["Deferred", Ref], ...], out: int) -> None:
        self.terms, self.deferred, self.out = terms, deferred, out

    def run(self, vals: list, ctx: Context) -> None:
        coefs = ctx.coefs
        ys = [vals[slot] for slot, _, _ in self.terms]
        cs = [None if ref is None else coefs[ref[0]][ref[1]] for _, ref, _ in self.terms]
        if (torch.is_grad_enabled() and not torch.compiler.is_compiling()
                and (self.deferred or any(isinstance(c, torch.Tensor) and c.requires_grad for c in cs))):
            known = ctx.values
            kinds, extras, tensors = [], [], []
            for t, ((_, ref, again), c) in enumerate(zip(self.terms, cs)):
                if c is None or type(c) is float:
                    kinds.append(0 if c is None else 1)
                    extras.append(c)
                    continue
                kinds.append(2)
                recompute = None if again is None else again.bind(vals, ctx)
                unit = known is not None and known[ref[0]][ref[1]] == 1.0
                if not unit and ys[t].requires_grad:
                    ys[t] = ScaledGradient.apply(ys[t], c.detach())
                extras.append((not unit, recompute))
                tensors.append(c)
            for deferred, ref in self.deferred:
                kinds.append(3)
                extras.append(deferred.bind(vals, ctx))
                tensors.append(coefs[ref[0]][ref[1]])
            vals[self.out] = LinearCombination.apply(tuple(kinds), tuple(extras), *ys, *tensors)
        else:  # deferred terms are exact zeros
            vals[self.out] = linear_combination(ys, cs)


class Deferred:
    """The steps computing an option whose gate is exactly zero, run in the backward pass only
    (without autograd) when the gate's gradient needs the option's value."""

    __slots__ = ("steps", "inputs", "output", "size")

    def __init__(self, steps: list[Step], inputs: tuple[int, ...], output: int) -> None:
        self.steps, self.inputs, self.output, self.size = steps, inputs, output, 0

    def bind(self, vals: list, ctx: Context) -> Any:
        """A function computing the option's value from the inputs it reads now."""
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


class Combine(Step):
    """A ChoiceOp through its mixture's own `combine` (mixtures that override it)."""

    __slots__ = ("sid", "options")

    def __init__(self, sid: str, options: tuple[tuple[int, int], ...], out: int) -> None:
        self.sid, self.options, self.out = sid, options, out

    def run(self, vals: list, ctx: Context) -> None:
        vals[self.out] = ctx.mixture.combine(ctx.weights[self.sid], {j: vals[s] for j, s in self.options})


class ChoiceOutput(Step):
    """A ChoiceOp's output from its mixed options and its option input (`Mixture.choice_output`)."""

    __slots__ = ("choice", "mixed", "source")

    def __init__(self, choice: ChoiceOp, mixed: int, source: Optional[int], out: int) -> None:
        self.choice, self.mixed, self.source, self.out = choice, mixed, source, out

    def run(self, vals: list, ctx: Context) -> None:
        x = None if self.source is None else vals[self.source]
        vals[self.out] = ctx.mixture.choice_output(self.choice, vals[self.mixed], x)


class Plan:
    """Steps over numbered slots; `run` binds the inputs and returns the output's value."""

    def __init__(self, steps: list[Step], slots: int, inputs: list[int], output: int, elided: list[Node],
                 channels_last: bool, counts: dict[str, int]) -> None:
        self.steps, self.slots, self.inputs, self.output = steps, slots, inputs, output
        self.elided = elided  # nodes whose own call the plan saves: recompile if one gets patched
        self.channels_last = channels_last
        self.counts = counts  # what compiling did (merged ops, folded choices...), for tests and reports

    def stale(self) -> bool:
        """Whether a node the plan merged or folded away has been given its own implementation since."""
        return any(patched(node) for node in self.elided)

    def run(self, inputs: Sequence[torch.Tensor], ctx: Context) -> Any:
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
            for slot in step.free:
                vals[slot] = None
        out = vals[self.output]
        if self.channels_last and isinstance(out, torch.Tensor) and out.dim() == 4:
            out = out.contiguous()
        return out


def compile_plan(ex: "SupernetExecutor", active: dict[str, tuple[int, ...]],
                 zeros: Optional[dict[str, tuple[int, ...]]] = None, enabled: PlanOptions = PlanOptions()) -> Plan:
    """The plan of `ex` for the options `active` (switch id -> option indices) runs.

    Phases: the nodes the active options need; common subexpressions; which ChoiceOps fold into
    their sum and which option outputs absorb their mixing weight; the nodes a gradient flows
    through (the others run without autograd, or, for off-gate options, in the backward pass);
    one step per remaining node, over numbered slots, each releasing the slots it reads last.

    `enabled`: the rewrites to apply; `PlanOptions.none()`: every node is a step of its own and every
    ChoiceOp calls `Mixture.combine`, as written (the reference the rewrites are measured against).

    `zeros` (switch id -> active option indices): options whose mixing weight is exactly zero but
    differentiable (a sampled gate that is off). Their value still enters the gradient of the
    weight, but no gradient reaches them: every node that only they need runs without autograd
    (no backward through it, nothing kept for one)."""
    zeros = zeros or {}
    nodes, output = ex._nodes, ex._output
    runs: dict[int, list[int]] = {}

    def operands_of(node: Node) -> list[Node]:
        if isinstance(node, ChoiceOp):
            indices = active[node.switch.id]
            nonzero = [i for i in indices if not is_zero_option(node.operands[i])]
            runs[id(node)] = nonzero or list(indices[:1])
            return [node.operands[i] for i in runs[id(node)]]
        return node.operands

    needed, stack = {id(output)}, [output]
    while stack:
        for operand in operands_of(stack.pop()):
            if id(operand) not in needed:
                needed.add(id(operand))
                stack.append(operand)
    order = [n for n in nodes if id(n) in needed]

    rep = common_subexpressions(order) if enabled.common_subexpressions else {}

    def canon(node: Node) -> Node:
        return rep.get(id(node), node)

    live = [n for n in order if id(n) not in rep]
    users: dict[int, list[Node]] = defaultdict(list)
    for node in live:
        for operand in (operands_of(node) if isinstance(node, ChoiceOp) else node.operands):
            users[id(canon(operand))].append(node)

    switch_number = {sid: k for k, sid in enumerate(ex.switches)}
    position = {sid: {index: j for j, index in enumerate(ex._slots[sid])} for sid in ex.switches}
    default_combine = enabled.fused_mixtures and type(ex.mixture).combine is Mixture.combine
    # mixtures with `uses_option_input` (that feed the options their input unchanged): choice_output
    sources = ex._option_inputs if ex.mixture.uses_option_input else None

    def terms_of(choice: ChoiceOp) -> list[tuple[Node, tuple[int, int], bool]]:
        """(option value, coefficient, whether the coefficient is an exact, differentiable zero)."""
        sid = choice.switch.id
        off = zeros.get(sid, ())
        return [(canon(choice.operands[i]), (switch_number[sid], position[sid][i]), i in off) for i in runs[id(choice)]]

    def sole_user(node: Node) -> Optional[Node]:
        found = users.get(id(node), [])
        return found[0] if found and node is not output and all(u is found[0] for u in found) else None

    folded: set[int] = set()  # ChoiceOps that are terms of the sum consuming them
    scaled: dict[int, tuple[int, int]] = {}  # affine option outputs -> coefficient they absorb
    elided: list[Node] = [n for n in order if id(n) in rep] + list({id(r): r for r in rep.values()}.values())
    if default_combine:
        for node in live:
            if not isinstance(node, ChoiceOp):
                continue
            user = sole_user(node)
            if enabled.sum_folding and sources is None and user is not None and is_sum(user) and not patched(user) and _same_shapes(user):
                folded.add(id(node))
                elided.append(user)
            for option, ref, zero in terms_of(node):
                if enabled.affine_folding and not zero and id(option) not in scaled and sole_user(option) is node and scale_slots(option) is not None:
                    scaled[id(option)] = ref
                    elided.append(option)

    differentiable = {id(canon(output))}  # nodes a gradient flows through
    for node in reversed(live):
        if id(node) not in differentiable:
            continue
        if isinstance(node, ChoiceOp) and default_combine and enabled.detaching:
            inputs = [option for option, _, zero in terms_of(node) if not zero]
        else:
            inputs = [canon(o) for o in (operands_of(node) if isinstance(node, ChoiceOp) else node.operands)]
        if isinstance(node, ChoiceOp) and sources is not None and sources[node] is not None:
            inputs.append(canon(sources[node]))
        differentiable.update(id(i) for i in inputs)

    # off-gate options whose nodes serve them alone: computed in the backward pass only
    groups = _deferrable(live, differentiable, users, canon, terms_of) if zeros and default_combine and enabled.effective("deferral") else {}
    member_of = {id(n): key for key, group in groups.items() for n in group}

    slot_of: dict[Any, int] = {}

    def slot(node: Node) -> int:
        return slot_of.setdefault(id(canon(node)), len(slot_of))

    def mixed_slot(choice: ChoiceOp) -> int:
        """Where a ChoiceOp's mixture goes: its own slot, or one for `choice_output` to read."""
        return slot(choice) if sources is None else slot_of.setdefault(("mixed", id(choice)), len(slot_of))

    recomputed: list[Deferred] = []

    def term(node: Node, ref: Ref) -> tuple[int, Ref, Optional[Deferred]]:
        """(slot, coefficient, how to compute the value again for the coefficient's gradient)."""
        if id(node) in scaled or ref is None:
            return slot(node), None, None
        again = None
        if enabled.recompute and recomputable(node):
            args = tuple(slot(o) for o in node.operands)
            again = Deferred([CallOp(node, args, slot(node))], args, slot(node))
            recomputed.append(again)
        return slot(node), ref, again

    channels_last = enabled.channels_last and prefers_channels_last(order)
    deferred = {key: Deferred([], (), slot(group[-1])) for key, group in groups.items()}
    steps: list[Step] = []
    reads: list[tuple[int, ...]] = []
    owners: list[Node] = []  # the node each step computes
    previous: Optional[Node] = None
    for node in live:
        owners += [previous] * (len(steps) - len(owners))
        previous = node
        if id(node) in folded:
            continue
        if isinstance(node, Tensor):
            if node.role == "weight":
                steps.append(_load_weight(ex, node, slot(node)))
                steps[-1].detached = False
                reads.append(())
            else:
                slot(node)
            continue
        if isinstance(node, ChoiceOp) and not default_combine:
            sid = node.switch.id
            options = tuple((position[sid][i], slot(node.operands[i])) for i in runs[id(node)])
            steps.append(Combine(sid, options, mixed_slot(node)))
            reads.append(tuple(s for _, s in options))
        elif isinstance(node, ChoiceOp) or (is_sum(node) and any(id(o) in folded for o in node.operands)):
            options = terms_of(node) if isinstance(node, ChoiceOp) else []
            for operand in ([] if isinstance(node, ChoiceOp) else node.operands):
                options += terms_of(operand) if id(operand) in folded else [(canon(operand), None, False)]
            terms = tuple(term(o, ref) for o, ref, _ in options if id(o) not in groups)
            later = tuple((deferred[id(o)], ref) for o, ref, _ in options if id(o) in groups)
            steps.append(Accumulate(terms, later, mixed_slot(node) if isinstance(node, ChoiceOp) else slot(node)))
            reads.append(tuple(s for s, _, _ in terms) + tuple(r for _, _, again in terms if again for r in again.inputs))
        else:
            args = tuple(slot(o) for o in node.operands)
            if id(node) in scaled:
                steps.append(CallScaledAffine(node, args, scale_slots(node), scaled[id(node)], slot(node)))
            else:
                call = CallContiguous if channels_last and not node.accepts_channels_last() else CallOp
                steps.append(call(node, args, slot(node)))
            reads.append(args)
        steps[-1].detached = id(node) not in differentiable
        if isinstance(node, ChoiceOp) and sources is not None:
            source = None if sources[node] is None else slot(sources[node])
            steps.append(ChoiceOutput(node, mixed_slot(node), source, slot(node)))
            steps[-1].detached = id(node) not in differentiable
            reads.append((mixed_slot(node),) if source is None else (mixed_slot(node), source))

    owners += [previous] * (len(steps) - len(owners))
    if groups:
        steps, reads = _move_deferred(steps, reads, owners, member_of, deferred, len(slot_of))
    out_slot = slot(output)
    _release(steps, reads, out_slot)
    for again in recomputed:
        again.size = len(slot_of)

    counts = {
        "steps": len(steps), "merged": len(rep), "folded_choices": len(folded), "scaled_outputs": len(scaled),
        "op_calls": sum(isinstance(s, (CallOp, CallScaledAffine)) for s in steps),
        "detached_steps": sum(s.detached for s in steps), "deferred_options": len(groups), "recomputed_terms": len(recomputed),
        "channels_last": int(channels_last),
        "contiguous_steps": sum(isinstance(s, CallContiguous) for s in steps),
    }
    return Plan(steps, len(slot_of), [slot(t) for t in ex._inputs], out_slot, elided, channels_last, counts)


def _move_deferred(steps: list[Step], reads: list[tuple[int, ...]], owners: list[Optional[Node]], member_of: dict[int, int],
                   deferred: dict[int, Deferred], size: int) -> tuple[list[Step], list[tuple[int, ...]]]:
    """Take the steps of deferred options out of the forward pass into their `Deferred`; the sums
    reading them keep the deferred inputs alive until they run."""
    kept: list[tuple[Step, tuple[int, ...]]] = []
    for step, read, owner in zip(steps, reads, owners):
        key = member_of.get(id(owner))
        if key is None:
            kept.append((step, read))
            continue
        group = deferred[key]
        group.steps.append(step)
        group.inputs += tuple(r for r in read if r not in group.inputs)
    for group in deferred.values():
        written = {step.out for step in group.steps}
        group.inputs = tuple(r for r in group.inputs if r not in written)
        group.size = size
    return [step for step, _ in kept], [read + tuple(r for d, _ in getattr(step, "deferred", ()) for r in d.inputs) for step, read in kept]


def _release(steps: list[Step], reads: list[tuple[int, ...]], keep: int) -> None:
    """Give every step the slots it is the last to read (all but `keep`, the output)."""
    last_read: dict[int, int] = {}
    for number, read in enumerate(reads):
        for s in read:
            last_read[s] = number
    frees: list[list[int]] = [[] for _ in steps]
    for s, number in last_read.items():
        if s != keep:
            frees[number].append(s)
    for step, free in zip(steps, frees):
        step.free = tuple(free)


def _deferrable(live: list[Node], differentiable: set[int], users: dict[int, list[Node]], canon: Any,
                terms_of: Any) -> dict[int, list[Node]]:
    """id(option) -> the nodes (in execution order, the option last) that compute an off-gate option
    and nothing else, for options in sums that have other terms and whose nodes draw no random
    numbers (their draws would move to the backward pass)."""
    position = {id(n): i for i, n in enumerate(live)}
    groups: dict[int, list[Node]] = {}
    for choice in live:
        if not isinstance(choice, ChoiceOp):
            continue
        terms = terms_of(choice)
        if all(zero for _, _, zero in terms):
            continue
        for option, _, zero in terms:
            if not zero or not isinstance(option, Op) or id(option) in differentiable or id(option) in groups:
                continue
            if any(u is not choice for u in users.get(id(option), [])):
                continue
            group = exclusive_ancestors(option, position, lambda n: users.get(id(n), []),
                                        lambda n: [canon(o) for o in n.operands], excluded=differentiable)
            if all(not isinstance(n, Op) or (n.traits.draws_nothing and not patched(n)) for n in group):
                groups[id(option)] = group
    return groups


def _same_shapes(node: Node) -> bool:
    shapes = {tuple(lazy(o.shape())) for o in node.operands}
    return len(shapes) == 1


def _load_weight(ex: "SupernetExecutor", tensor: Tensor, out: int) -> LoadWeight:
    *path, leaf = tensor.id.split(".")
    module = ex
    for segment in path:
        module = module._modules[segment]
    store = module._parameters if tensor.trainable else module._buffers
    current, allocated = tuple(lazy(tensor.shape())), ex._allocated[tensor.id]
    index = None if current == allocated else shared_slice(tensor.id, allocated, current, tensor.axis)
    return LoadWeight(store, leaf, index, ex._masks.get(tensor.id), out)
