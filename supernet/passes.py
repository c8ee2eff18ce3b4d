"""Compiling a plan: named passes over one `PlanState`, in the order of `PASSES`.

Each pass reads a plain view of the supernet's graph (`GraphView`, built by the executor) and what
earlier passes decided, and records its own decision; `emit_steps` turns the decisions into the
steps of a `Plan` (plan.py). A rewrite pass does nothing when its switch in `PlanOptions` is off;
with all off, every node is one step and every ChoiceOp calls `Mixture.combine` (the reference).

1. `select_nodes`: the nodes the active options need (a `Zero` option never runs beside another).
2. `merge_common_subexpressions`: pure ops of one type, attributes and operands run once.
3. `fold_mixtures_into_sums`: a ChoiceOp read by one declared sum alone becomes terms of that sum.
4. `fold_affine_outputs`: an option ending in a declared affine op absorbs its mixing weight.
5. `mark_gradients`: the nodes a gradient flows through (the others run without autograd).
6. `defer_off_gate_options`: options of an exactly-zero gate run in the backward pass only.
7. `mark_recomputed_terms`: terms cheaper to compute again in the backward pass than to keep.
8. `choose_layout`: channels-last for 2-D convolution graphs of layout-agnostic ops.
9. `emit_steps`: one step per remaining node, over numbered value slots.
10. `move_deferred_steps`: the steps of deferred options leave the forward pass.
11. `release_slots`: every step frees the slots it is the last to read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .choice import ChoiceOp, exclusive_ancestors
from .expression import lazy
from .fusion import affine_arguments, common_subexpressions, is_sum, is_zero_option, patched, prefers_channels_last, recomputable
from .mixture import Mixture
from .node import Node, Op, Tensor
from .plan import (
    Accumulate, CallContiguous, CallOp, CallRouted, CallScaledAffine, ChoiceOutput, Combine, Deferred, FeedOptions,
    LoadWeight, Plan, Ref, Step,
)
from .plan_options import PlanOptions


@dataclass
class GraphView:
    """What compiling reads of a supernet (built by the executor; no private fields read across).

    positions: switch id -> option index -> position in the switch's mixing weights (the one
    option-position map); numbers: switch id -> its row in the coefficients; option_inputs: with
    `mixture.uses_option_input`, each ChoiceOp's option input (None: its options read several
    nodes); routed: id(op inside an option) -> (ChoiceOp, option input), for mixtures that feed
    the options something else (`option_input`); weights: weight id -> (store, name, index, mask)."""

    nodes: list[Node]
    output: Node
    inputs: list[Tensor]
    positions: dict[str, dict[int, int]]
    numbers: dict[str, int]
    mixture: Mixture
    option_inputs: Optional[dict[ChoiceOp, Optional[Node]]]
    routed: dict[int, tuple[ChoiceOp, Node]]
    weights: dict[str, tuple[dict, str, Optional[tuple], Any]]


def running_options(choice: ChoiceOp, active: dict[str, tuple[int, ...]]) -> list[int]:
    """The option indices of `choice` that run: the active ones but declared zeros (the first
    active option when all are zeros)."""
    indices = active[choice.switch.id]
    nonzero = [i for i in indices if not is_zero_option(choice.operands[i])]
    return nonzero or list(indices[:1])


@dataclass
class PlanState:
    """The decisions of the passes so far (ids are `id(node)`)."""

    view: GraphView
    active: dict[str, tuple[int, ...]]
    off_gates: dict[str, tuple[int, ...]]  # switch id -> active options whose weight is an exact, differentiable zero
    enabled: PlanOptions
    order: list[Node] = field(default_factory=list)  # the nodes that run, in topological order
    runs: dict[int, list[int]] = field(default_factory=dict)  # ChoiceOp -> option indices that run
    canonical: dict[int, Node] = field(default_factory=dict)  # merged node -> the node computing its value
    users: dict[int, list[Node]] = field(default_factory=dict)  # canonical node -> live nodes reading it
    folded: set[int] = field(default_factory=set)  # ChoiceOps that are terms of their sum
    scaled: dict[int, tuple[int, int]] = field(default_factory=dict)  # affine option output -> its coefficient
    differentiable: set[int] = field(default_factory=set)
    groups: dict[int, list[Node]] = field(default_factory=dict)  # off-gate option -> its nodes, run in backward only
    recomputed: set[int] = field(default_factory=set)
    channels_last: bool = False
    slots: dict[Any, int] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    owners: list[Node] = field(default_factory=list)  # the node each step computes
    deferred: dict[int, Deferred] = field(default_factory=dict)
    recomputes: list[Deferred] = field(default_factory=list)
    fed: dict[int, int] = field(default_factory=dict)  # ChoiceOp -> slot of what its options are fed
    elided: list[Node] = field(default_factory=list)

    @property
    def fused(self) -> bool:
        """Whether ChoiceOps mix through fused sums (`Accumulate`) rather than `Mixture.combine`."""
        return self.enabled.fused_mixtures and type(self.view.mixture).combine is Mixture.combine

    @property
    def live(self) -> list[Node]:
        return [n for n in self.order if id(n) not in self.canonical]

    def canon(self, node: Node) -> Node:
        return self.canonical.get(id(node), node)

    def operands(self, node: Node) -> list[Node]:
        """What `node` reads: for a ChoiceOp, its running options."""
        if isinstance(node, ChoiceOp):
            return [node.operands[i] for i in self.runs[id(node)]]
        return node.operands

    def terms(self, choice: ChoiceOp) -> list[tuple[Node, tuple[int, int], bool]]:
        """(option value, coefficient, whether the coefficient is an exact, differentiable zero)."""
        sid = choice.switch.id
        off = self.off_gates.get(sid, ())
        number, positions = self.view.numbers[sid], self.view.positions[sid]
        return [(self.canon(choice.operands[i]), (number, positions[i]), i in off) for i in self.runs[id(choice)]]

    def sole_user(self, node: Node) -> Optional[Node]:
        found = self.users.get(id(node), [])
        return found[0] if found and node is not self.view.output and all(u is found[0] for u in found) else None

    def slot(self, key: Any) -> int:
        """The slot of a node's value (of its canonical node), or of a plan-made value (a tuple key)."""
        key = key if isinstance(key, tuple) else id(self.canon(key))
        return self.slots.setdefault(key, len(self.slots))

    def mixed_slot(self, choice: ChoiceOp) -> int:
        """Where a ChoiceOp's mixture goes: its own slot, or one for `choice_output` to read."""
        return self.slot(choice) if self.view.option_inputs is None else self.slot(("mixed", id(choice)))


def select_nodes(p: PlanState) -> None:
    """The nodes the active options need, in topological order (`order`), and the options each
    ChoiceOp runs (`runs`): never a declared `zero` option beside another."""
    for node in p.view.nodes:
        if isinstance(node, ChoiceOp):
            p.runs[id(node)] = running_options(node, p.active)
    needed, stack = {id(p.view.output)}, [p.view.output]
    while stack:
        for operand in p.operands(stack.pop()):
            if id(operand) not in needed:
                needed.add(id(operand))
                stack.append(operand)
    p.order = [n for n in p.view.nodes if id(n) in needed]


def merge_common_subexpressions(p: PlanState) -> None:
    """Pure ops of one type, with equal attributes and the same operands, compute one value: only
    the first runs (e.g. the ReLU in front of every convolution option of the edges leaving one
    cell node). Ops fed by a mixture's `option_input` are left alone. Then: who reads what."""
    if p.enabled.common_subexpressions:
        p.canonical = common_subexpressions([n for n in p.order if id(n) not in p.view.routed])
        p.elided += [n for n in p.order if id(n) in p.canonical] + list({id(r): r for r in p.canonical.values()}.values())
    for node in p.live:
        for operand in p.operands(node):
            p.users.setdefault(id(p.canon(operand)), []).append(node)


def fold_mixtures_into_sums(p: PlanState) -> None:
    """A ChoiceOp whose only reader is a declared sum (of operands of one shape) is not
    materialised: its weighted options become terms of the sum's one accumulation."""
    if not (p.enabled.effective("sum_folding") and p.fused and p.view.option_inputs is None):
        return
    for node in p.live:
        user = p.sole_user(node) if isinstance(node, ChoiceOp) else None
        if user is not None and is_sum(user) and not patched(user) and len({tuple(lazy(o.shape())) for o in user.operands}) == 1:
            p.folded.add(id(node))
            p.elided.append(user)


def fold_affine_outputs(p: PlanState) -> None:
    """An option whose output op is `weight * f(x) + bias` (declared `OpTraits.affine`) and read by its
    ChoiceOp alone absorbs the mixing weight into weight and bias (`w * BN(x) = BN'(x)`): its term
    becomes a plain addition, and the weight's gradient comes out of the op's own backward."""
    if not (p.enabled.effective("affine_folding") and p.fused):
        return
    for choice in p.live:
        if not isinstance(choice, ChoiceOp):
            continue
        for option, ref, zero in p.terms(choice):
            if zero or id(option) in p.scaled or id(option) in p.view.routed or p.sole_user(option) is not choice:
                continue
            if affine_arguments(option) is not None:
                p.scaled[id(option)] = ref
                p.elided.append(option)


def mark_gradients(p: PlanState) -> None:
    """The nodes a gradient flows through, from the output back (`differentiable`); with
    `detaching`, the options of an exactly-zero gate are not among them, and the nodes only they
    need run without autograd (no backward through them, nothing kept for one)."""
    sources = p.view.option_inputs
    p.differentiable = {id(p.canon(p.view.output))}
    for node in reversed(p.live):
        if id(node) not in p.differentiable:
            continue
        if isinstance(node, ChoiceOp) and p.fused and p.enabled.detaching:
            inputs = [option for option, _, zero in p.terms(node) if not zero]
        else:
            inputs = [p.canon(o) for o in p.operands(node)]
        if isinstance(node, ChoiceOp) and sources is not None and sources[node] is not None:
            inputs.append(p.canon(sources[node]))
        if id(node) in p.view.routed:
            inputs.append(p.canon(p.view.routed[id(node)][1]))
        p.differentiable.update(id(i) for i in inputs)


def defer_off_gate_options(p: PlanState) -> None:
    """An option of an exactly-zero gate (a sampled gate that is off) in a sum with other terms,
    computed by nodes that serve it alone and draw no random numbers, is computed in the backward
    pass only, for the gate's gradient (`groups`: the option's nodes, in order, the option last)."""
    if not (p.off_gates and p.fused and p.enabled.effective("deferral")):
        return
    position = {id(n): i for i, n in enumerate(p.live)}
    for choice in p.live:
        if not isinstance(choice, ChoiceOp) or all(zero for _, _, zero in p.terms(choice)):
            continue
        for option, _, zero in p.terms(choice):
            if not zero or not isinstance(option, Op) or id(option) in p.differentiable or id(option) in p.groups:
                continue
            if any(u is not choice for u in p.users.get(id(option), [])):
                continue
            group = exclusive_ancestors(option, position, lambda n: p.users.get(id(n), []),
                                        lambda n: [p.canon(o) for o in n.operands], excluded=p.differentiable)
            if all(not isinstance(n, Op) or (n.traits.draws_nothing and not patched(n) and id(n) not in p.view.routed) for n in group):
                p.groups[id(option)] = group


def mark_recomputed_terms(p: PlanState) -> None:
    """Terms of ops that keep their input for their own backward anyway (declared `keeps_input`,
    pure: poolings) are computed again in the backward pass for their weight's gradient, not kept."""
    if not (p.enabled.effective("recompute") and p.fused):
        return
    p.recomputed = {id(n) for n in p.live if id(n) not in p.view.routed and id(n) not in p.scaled and recomputable(n)}


def choose_layout(p: PlanState) -> None:
    """Channels-last on CPU for graphs that convolve in 2-D and whose ops all declare themselves
    layout-agnostic (oneDNN convolutions and poolings are several times faster there)."""
    p.channels_last = p.enabled.channels_last and prefers_channels_last(p.order)


def emit_steps(p: PlanState) -> None:
    """One step (or two, with `choice_output` or a routed input) per live node but folded ChoiceOps."""
    for node in p.live:
        if id(node) in p.folded:
            continue
        first = len(p.steps)
        _emit(p, node)
        for step in p.steps[first:]:
            step.detached = not isinstance(step, (LoadWeight, FeedOptions)) and id(node) not in p.differentiable
        p.owners += [node] * (len(p.steps) - first)


def _emit(p: PlanState, node: Node) -> None:
    if isinstance(node, Tensor):
        if node.role == "weight":
            p.steps.append(LoadWeight(node, *p.view.weights[node.id], p.slot(node)))
        else:
            p.slot(node)
        return
    if isinstance(node, ChoiceOp) and not p.fused:
        options = tuple((p.view.positions[node.switch.id][i], p.slot(node.operands[i])) for i in p.runs[id(node)])
        p.steps.append(Combine(node, node.switch.id, options, p.mixed_slot(node)))
    elif isinstance(node, ChoiceOp) or (is_sum(node) and any(id(o) in p.folded for o in node.operands)):
        p.steps.append(_accumulate(p, node))
    elif id(node) in p.view.routed:
        p.steps.append(_routed(p, node))
    elif id(node) in p.scaled:
        reads = tuple(p.slot(o) for o in node.operands)
        p.steps.append(CallScaledAffine(node, reads, affine_arguments(node), p.scaled[id(node)], p.slot(node)))
    else:
        call = CallContiguous if p.channels_last and not node.accepts_channels_last() else CallOp
        p.steps.append(call(node, tuple(p.slot(o) for o in node.operands), p.slot(node)))
    if isinstance(node, ChoiceOp) and p.view.option_inputs is not None:
        source = p.view.option_inputs[node]
        reads = (p.mixed_slot(node),) if source is None else (p.mixed_slot(node), p.slot(source))
        p.steps.append(ChoiceOutput(node, reads, p.slot(node)))


def _accumulate(p: PlanState, node: Node) -> Accumulate:
    """The fused sum of a ChoiceOp's terms, or of a sum's operands with its folded ChoiceOps' terms."""
    if isinstance(node, ChoiceOp):
        options = p.terms(node)
    else:
        options = []
        for operand in node.operands:
            options += p.terms(operand) if id(operand) in p.folded else [(p.canon(operand), None, False)]
    terms = tuple(_term(p, o, ref) for o, ref, _ in options if id(o) not in p.groups)
    off = tuple((p.deferred.setdefault(id(o), Deferred([], (), p.slot(o))), ref) for o, ref, _ in options if id(o) in p.groups)
    return Accumulate(node, terms, off, p.mixed_slot(node) if isinstance(node, ChoiceOp) else p.slot(node))


def _term(p: PlanState, node: Node, ref: Ref) -> tuple[int, Ref, Optional[Deferred]]:
    """(slot, coefficient, how to compute the value again for the coefficient's gradient)."""
    if id(node) in p.scaled or ref is None:
        return p.slot(node), None, None
    recompute = None
    if id(node) in p.recomputed:
        reads = tuple(p.slot(o) for o in node.operands)
        recompute = Deferred([CallOp(node, reads, p.slot(node))], reads, p.slot(node))
        p.recomputes.append(recompute)
    return p.slot(node), ref, recompute


def _routed(p: PlanState, node: Op) -> CallRouted:
    """An op inside an option, reading what the mixture feeds the options (fed once per ChoiceOp)."""
    choice, source = p.view.routed[id(node)]
    if id(choice) not in p.fed:
        p.fed[id(choice)] = p.slot(("fed", id(choice)))
        p.steps.append(FeedOptions(choice, p.slot(source), p.fed[id(choice)]))
    reads, roles = [], []
    for operand in node.operands:
        reads.append(p.fed[id(choice)] if operand is source else p.slot(operand))
        roles.append(operand.axis_roles if isinstance(operand, Tensor) and operand.role == "weight" else None)
    groups = node.channel_groups()
    depthwise = groups is not None and lazy(groups) == lazy(node.operands[0].shape()[1])
    contiguous = p.channels_last and not node.accepts_channels_last()
    return CallRouted(node, tuple(reads) + (p.slot(source), p.fed[id(choice)]), tuple(roles), choice.id, depthwise, contiguous,
                      p.slot(node))


def move_deferred_steps(p: PlanState) -> None:
    """The steps of deferred options leave the forward pass for their `Deferred`; the sums reading
    them keep the deferred inputs alive until they run."""
    if not p.groups:
        return
    member_of = {id(n): key for key, group in p.groups.items() for n in group}
    kept = []
    for step, owner in zip(p.steps, p.owners):
        key = member_of.get(id(owner))
        if key is None:
            kept.append(step)
            continue
        group = p.deferred[key]
        group.steps.append(step)
        group.inputs += tuple(r for r in step.reads if r not in group.inputs)
    for group in p.deferred.values():
        written = {step.out for step in group.steps}
        group.inputs = tuple(r for r in group.inputs if r not in written)
    for step in kept:
        if isinstance(step, Accumulate) and step.off_gates:
            step.reads += tuple(r for d, _ in step.off_gates for r in d.inputs)
    p.steps = kept


def release_slots(p: PlanState) -> None:
    """Every step frees the slots it is the last to read (all but the output's)."""
    last_read: dict[int, int] = {}
    for number, step in enumerate(p.steps):
        for s in step.reads:
            last_read[s] = number
    frees: list[list[int]] = [[] for _ in p.steps]
    keep = p.slot(p.view.output)
    for s, number in last_read.items():
        if s != keep:
            frees[number].append(s)
    for step, free in zip(p.steps, frees):
        step.frees = tuple(free)
    for deferred in (*p.deferred.values(), *p.recomputes):
        deferred.size = len(p.slots)


PASSES: tuple[Callable[[PlanState], None], ...] = (
    select_nodes, merge_common_subexpressions, fold_mixtures_into_sums, fold_affine_outputs, mark_gradients,
    defer_off_gate_options, mark_recomputed_terms, choose_layout, emit_steps, move_deferred_steps, release_slots,
)


def compile_plan(view: GraphView, active: dict[str, tuple[int, ...]], off_gates: Optional[dict[str, tuple[int, ...]]] = None,
                 enabled: PlanOptions = PlanOptions()) -> Plan:
    """The plan running the options `active` (switch id -> option indices) of the graph `view`:
    the passes of `PASSES` in order, those `enabled` rewriting. `off_gates` (switch id -> active
    option indices): options whose mixing weight is an exact, differentiable zero."""
    p = PlanState(view, active, off_gates or {}, enabled)
    for compile_pass in PASSES:
        compile_pass(p)
    counts = {
        "steps": len(p.steps), "merged": len(p.canonical), "folded_choices": len(p.folded), "scaled_outputs": len(p.scaled),
        "op_calls": sum(isinstance(s, (CallOp, CallScaledAffine, CallRouted)) for s in p.steps),
        "detached_steps": sum(s.detached for s in p.steps), "deferred_options": len(p.groups),
        "recomputed_terms": len(p.recomputes), "channels_last": int(p.channels_last),
        "contiguous_steps": sum(isinstance(s, CallContiguous) or (isinstance(s, CallRouted) and s.contiguous) for s in p.steps),
    }
    return Plan(p.steps, len(p.slots), [p.slot(t) for t in view.inputs], p.slot(view.output), p.elided, p.channels_last, counts)
