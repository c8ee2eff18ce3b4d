"""Compiling a plan: named passes over the supernet's `Graph`, in the order of `PASSES`.

Each pass is a function of what earlier passes produced (its parameters are their names: `view`,
`active` and `off_gates` are given) and returns its own result, a frozen value or a step list;
nothing is shared or mutated between passes. `PASSES` is the pass list: a rewrite pass runs when
its `PlanOptions` switch is on (and those it builds on), and otherwise stands for its `off` value,
so that every pass can be read, tested and switched off alone. With every switch off, every node is
one step and every ChoiceOp calls `Mixture.combine` (the reference).

1. `select_nodes`: the nodes the active options need (a `Zero` option never runs beside another).
2. `merge_common_subexpressions`: pure ops of one type, attributes and operands run once.
3. `trace_readers`: who reads what among the nodes that run (the `Dataflow` later passes read).
4. `fuse_mixtures`: ChoiceOps mix through fused sums (`Accumulate`) rather than `Mixture.combine`.
5. `fold_mixtures_into_sums`: a ChoiceOp read by one declared sum alone becomes terms of that sum.
6. `fold_affine_outputs`: an option ending in a declared affine op absorbs its mixing weight.
7. `mark_gradients`: the nodes a gradient flows through (the others run without autograd).
8. `defer_off_gate_options`: options of an exactly-zero gate run in the backward pass only.
9. `mark_recomputed_terms`: terms cheaper to compute again in the backward pass than to keep.
10. `choose_layout`: channels-last for 2-D convolution graphs of layout-agnostic ops.
11. `emit_steps`: one step per remaining node, over numbered value slots.
12. `move_deferred_steps`: the steps of deferred options leave the forward pass.
13. `release_slots`: every step frees the slots it is the last to read.

The `plain_weights` switch acts where the mixing weights are made, once per forward pass:
`weight_handling` turns the switches into the executor's `WeightHandling`.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

from .choice import ChoiceOp
from .expression import lazy
from .fusion import (
    affine_arguments,
    common_subexpressions,
    has_weights,
    is_sum,
    is_zero_option,
    patched,
    prefers_channels_last,
    recomputable,
)
from .graph import Graph, exclusive_ancestors
from .mixture import Mixture
from .node import Node, Op, Tensor
from .plan import (
    Accumulate,
    CallContiguous,
    CallOp,
    CallReshaping,
    CallRouted,
    CallScaledAffine,
    ChoiceOutput,
    Combine,
    Deferred,
    FeedOptions,
    LoadWeight,
    Plan,
    Ref,
    Step,
)
from .plan_options import PlanOptions

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class GraphView:
    """What compiling reads of a supernet (built by the executor; no private fields read across).

    graph: the supernet's `Graph` (built once); positions: switch id -> option index -> position in
    the switch's mixing weights (the one option-position map); numbers: switch id -> its row in
    the coefficients; option_inputs: with `mixture.uses_option_input`, each ChoiceOp's option
    input (None: its options read several nodes); routed: op inside an option -> (ChoiceOp,
    option input), for mixtures that feed the options something else (`option_input`); weights:
    weight id -> (store, name, index, mask)."""

    graph: Graph
    inputs: tuple[Tensor, ...]
    positions: Mapping[str, Mapping[int, int]]
    numbers: Mapping[str, int]
    mixture: Mixture
    option_inputs: Optional[Mapping[ChoiceOp, Optional[Node]]]
    routed: Mapping[Node, tuple[ChoiceOp, Node]]
    weights: Mapping[str, tuple[dict, str, Optional[tuple], Any]]

    @property
    def output(self) -> Node:
        return self.graph.output


def running_options(choice: ChoiceOp, active: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The option indices of `choice` that run: the active ones but declared zeros (the first
    active option when all are zeros)."""
    indices = active[choice.switch.id]
    nonzero = tuple(i for i in indices if not is_zero_option(choice.operands[i]))
    return nonzero or tuple(indices[:1])


# --- the results of the passes ------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The nodes that run, in topological order, and the options each ChoiceOp runs."""

    order: tuple[Node, ...]
    runs: Mapping[ChoiceOp, tuple[int, ...]]

    def operands(self, node: Node) -> list[Node]:
        """What `node` reads: for a ChoiceOp, its running options."""
        if isinstance(node, ChoiceOp):
            return [node.operands[i] for i in self.runs[node]]
        return node.operands


@dataclass(frozen=True)
class Merging:
    """canonical: merged node -> the node computing its value; elided: the nodes whose own call
    the plan saves (the merged ones and their representatives)."""

    canonical: Mapping[Node, Node] = field(default_factory=lambda: _EMPTY)
    elided: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Dataflow:
    """Who reads what among the nodes that run: `live` (the selected nodes no other computes),
    `users` (canonical node -> the live nodes reading it, once per use)."""

    output: Node
    selection: Selection
    canonical: Mapping[Node, Node]
    live: tuple[Node, ...]
    users: Mapping[Node, tuple[Node, ...]]
    off_gates: Mapping[str, tuple[int, ...]]
    positions: Mapping[str, Mapping[int, int]]
    numbers: Mapping[str, int]

    def canon(self, node: Node) -> Node:
        return self.canonical.get(node, node)

    def operands(self, node: Node) -> list[Node]:
        return self.selection.operands(node)

    def readers(self, node: Node) -> tuple[Node, ...]:
        return self.users.get(node, ())

    def terms(self, choice: ChoiceOp) -> list[tuple[Node, tuple[int, int], bool]]:
        """(option value, coefficient, whether the coefficient is an exact, differentiable zero)."""
        sid = choice.switch.id
        off = self.off_gates.get(sid, ())
        number, positions = self.numbers[sid], self.positions[sid]
        return [(self.canon(choice.operands[i]), (number, positions[i]), i in off) for i in self.selection.runs[choice]]

    def sole_user(self, node: Node) -> Optional[Node]:
        found = self.readers(node)
        return found[0] if found and node is not self.output and all(u is found[0] for u in found) else None


@dataclass(frozen=True)
class Folding:
    """choices: ChoiceOps that are terms of their sum; elided: those sums."""

    choices: frozenset = frozenset()
    elided: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Scaling:
    """refs: affine option output -> its coefficient (folded into its weight and bias)."""

    refs: Mapping[Node, tuple[int, int]] = field(default_factory=lambda: _EMPTY)

    @property
    def elided(self) -> tuple[Node, ...]:
        return tuple(self.refs)


@dataclass(frozen=True)
class Emission:
    """The steps of the plan, the node each step computes, and its value slots: `slots` (node or
    plan-made key -> slot), `inputs` and `output` (slots), `deferred` (off-gate option -> the
    `Deferred` its steps move into), `recomputes` (terms computed again in the backward pass)."""

    steps: tuple[Step, ...]
    owners: tuple[Node, ...]
    slots: Mapping[Any, int]
    inputs: tuple[int, ...]
    output: int
    deferred: Mapping[Node, Deferred] = field(default_factory=lambda: _EMPTY)
    recomputes: tuple[Deferred, ...] = ()


# --- the passes ---------------------------------------------------------------------------------


def select_nodes(view: GraphView, active: Mapping[str, tuple[int, ...]]) -> Selection:
    """The nodes the active options need, in topological order, and the options each ChoiceOp
    runs: never a declared `zero` option beside another."""
    runs = {node: running_options(node, active) for node in view.graph.nodes if isinstance(node, ChoiceOp)}
    selection = Selection((), MappingProxyType(runs))
    needed, stack = {view.output}, [view.output]
    while stack:
        for operand in selection.operands(stack.pop()):
            if operand not in needed:
                needed.add(operand)
                stack.append(operand)
    return Selection(tuple(n for n in view.graph.nodes if n in needed), selection.runs)


def merge_common_subexpressions(view: GraphView, selection: Selection) -> Merging:
    """Pure ops of one type, with equal attributes and the same operands, compute one value: only
    the first runs (e.g. the ReLU in front of every convolution option of the edges leaving one
    cell node). Ops fed by a mixture's `option_input` are left alone."""
    canonical = common_subexpressions([n for n in selection.order if n not in view.routed])
    representatives = list(dict.fromkeys(canonical.values()))
    merged = [n for n in selection.order if n in canonical]
    return Merging(MappingProxyType(canonical), tuple(merged + representatives))


def trace_readers(
    view: GraphView, selection: Selection, merging: Merging, off_gates: Mapping[str, tuple[int, ...]]
) -> Dataflow:
    """The live nodes (selected, computed by no other) and, for each, the live nodes reading it."""
    canonical = merging.canonical
    live = tuple(n for n in selection.order if n not in canonical)
    users: dict[Node, list[Node]] = {}
    for node in live:
        for operand in selection.operands(node):
            users.setdefault(canonical.get(operand, operand), []).append(node)
    return Dataflow(
        view.output,
        selection,
        canonical,
        live,
        MappingProxyType({k: tuple(v) for k, v in users.items()}),
        MappingProxyType(dict(off_gates)),
        view.positions,
        view.numbers,
    )


def fuse_mixtures(view: GraphView) -> bool:
    """Whether ChoiceOps mix through fused sums (`Accumulate`): unless the mixture combines its
    options itself (`Mixture.combine` overridden)."""
    return type(view.mixture).combine is Mixture.combine


def fold_mixtures_into_sums(view: GraphView, flow: Dataflow, fused: bool) -> Folding:
    """A ChoiceOp whose only reader is a declared sum (of operands of one shape) is not
    materialised: its weighted options become terms of the sum's one accumulation."""
    if not fused or view.option_inputs is not None:
        return Folding()
    folded, sums = [], []
    for node in flow.live:
        user = flow.sole_user(node) if isinstance(node, ChoiceOp) else None
        if (
            user is not None
            and is_sum(user)
            and not patched(user)
            and len({tuple(lazy(o.shape())) for o in user.operands}) == 1
        ):
            folded.append(node)
            sums.append(user)
    return Folding(frozenset(folded), tuple(sums))


def fold_affine_outputs(view: GraphView, flow: Dataflow, fused: bool) -> Scaling:
    """An option whose output op is `weight * f(x) + bias` (declared `OpTraits.affine`) and read by
    its ChoiceOp alone absorbs the mixing weight into weight and bias (`w * BN(x) = BN'(x)`): its
    term becomes a plain addition, and the weight's gradient comes out of the op's own backward."""
    if not fused:
        return Scaling()
    scaled: dict[Node, tuple[int, int]] = {}
    for choice in flow.live:
        if not isinstance(choice, ChoiceOp):
            continue
        for option, ref, zero in flow.terms(choice):
            if zero or option in scaled or option in view.routed or flow.sole_user(option) is not choice:
                continue
            if affine_arguments(option) is not None:
                scaled[option] = ref
    return Scaling(MappingProxyType(scaled))


def mark_gradients(view: GraphView, flow: Dataflow, fused: bool) -> frozenset:
    """The nodes a gradient flows through, from the output back: the options of an exactly-zero
    gate are not among them, and the nodes only they need run without autograd (no backward
    through them, nothing kept for one). Off: every live node."""
    sources = view.option_inputs
    differentiable = {flow.canon(view.output)}
    for node in reversed(flow.live):
        if node not in differentiable:
            continue
        if isinstance(node, ChoiceOp) and fused:
            inputs = [option for option, _, zero in flow.terms(node) if not zero]
        else:
            inputs = [flow.canon(o) for o in flow.operands(node)]
        if isinstance(node, ChoiceOp) and sources is not None and sources[node] is not None:
            inputs.append(flow.canon(sources[node]))
        if node in view.routed:
            inputs.append(flow.canon(view.routed[node][1]))
        differentiable.update(inputs)
    return frozenset(differentiable)


def every_live_node(flow: Dataflow) -> frozenset:
    """`mark_gradients` switched off: a gradient may reach every node."""
    return frozenset(flow.live)


def defer_off_gate_options(
    view: GraphView, flow: Dataflow, fused: bool, differentiable: frozenset, off_gates: Mapping[str, tuple[int, ...]]
) -> Mapping[Node, tuple[Node, ...]]:
    """An option of an exactly-zero gate (a sampled gate that is off) in a sum with other terms,
    computed by nodes that serve it alone and draw no random numbers, is computed in the backward
    pass only, for the gate's gradient: option -> its nodes, in order, the option last."""
    if not (off_gates and fused):
        return _EMPTY
    position = {n: i for i, n in enumerate(flow.live)}
    groups: dict[Node, tuple[Node, ...]] = {}
    for choice in flow.live:
        if not isinstance(choice, ChoiceOp) or all(zero for _, _, zero in flow.terms(choice)):
            continue
        for option, _, zero in flow.terms(choice):
            if not zero or not isinstance(option, Op) or option in differentiable or option in groups:
                continue
            if any(u is not choice for u in flow.readers(option)):
                continue
            group = exclusive_ancestors(
                option, position, flow.readers, lambda n: [flow.canon(o) for o in n.operands], excluded=differentiable
            )
            if all(
                not isinstance(n, Op) or (n.traits.draws_nothing and not patched(n) and n not in view.routed)
                for n in group
            ):
                groups[option] = tuple(group)
    return MappingProxyType(groups)


def mark_recomputed_terms(view: GraphView, flow: Dataflow, fused: bool, scaling: Scaling) -> frozenset:
    """Terms of ops that keep their input for their own backward anyway (declared `keeps_input`,
    pure: poolings) are computed again in the backward pass for their weight's gradient, not kept."""
    if not fused:
        return frozenset()
    return frozenset(n for n in flow.live if n not in view.routed and n not in scaling.refs and recomputable(n))


def choose_layout(selection: Selection) -> bool:
    """Channels-last on CPU for graphs that convolve in 2-D and whose ops all declare themselves
    layout-agnostic (oneDNN convolutions and poolings are several times faster there)."""
    return prefers_channels_last(selection.order)


@dataclass
class _Emitter:
    """The slots and steps `emit_steps` builds (local to that pass)."""

    view: GraphView
    flow: Dataflow
    fused: bool
    folding: Folding
    scaling: Scaling
    deferrals: Mapping[Node, tuple[Node, ...]]
    recomputed: frozenset
    channels_last: bool
    slots: dict[Any, int] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    deferred: dict[Node, Deferred] = field(default_factory=dict)
    recomputes: list[Deferred] = field(default_factory=list)
    fed: dict[ChoiceOp, int] = field(default_factory=dict)

    def slot(self, key: Any) -> int:
        """The slot of a node's value (of its canonical node), or of a plan-made value (a tuple key)."""
        key = key if isinstance(key, tuple) else self.flow.canon(key)
        return self.slots.setdefault(key, len(self.slots))

    def mixed_slot(self, choice: ChoiceOp) -> int:
        """Where a ChoiceOp's mixture goes: its own slot, or one for `choice_output` to read."""
        return self.slot(choice) if self.view.option_inputs is None else self.slot(("mixed", choice))

    def emit(self, node: Node) -> None:
        view, flow = self.view, self.flow
        if isinstance(node, Tensor):
            if node.role == "weight":
                self.steps.append(LoadWeight(node, *view.weights[node.id], self.slot(node)))
            else:
                self.slot(node)
            return
        if isinstance(node, ChoiceOp) and not self.fused:
            options = tuple(
                (view.positions[node.switch.id][i], self.slot(node.operands[i])) for i in flow.selection.runs[node]
            )
            self.steps.append(Combine(node, node.switch.id, options, self.mixed_slot(node)))
        elif isinstance(node, ChoiceOp) or (is_sum(node) and any(o in self.folding.choices for o in node.operands)):
            self.steps.append(self.accumulate(node))
        elif node in view.routed:
            self.steps.append(self.routed(node))
        elif node in self.scaling.refs:
            reads = tuple(self.slot(o) for o in node.operands)
            self.steps.append(
                CallScaledAffine(node, reads, affine_arguments(node), self.scaling.refs[node], self.slot(node))
            )
        else:
            reads = tuple(self.slot(o) for o in node.operands)
            images = _reshaped_images(node) if self.channels_last else ()
            if self.channels_last and not node.accepts_channels_last():
                self.steps.append(CallContiguous(node, reads, self.slot(node)))
            elif images:
                self.steps.append(CallReshaping(node, reads, images, self.slot(node)))
            else:
                self.steps.append(CallOp(node, reads, self.slot(node)))
        if isinstance(node, ChoiceOp) and view.option_inputs is not None:
            source = view.option_inputs[node]
            reads = (self.mixed_slot(node),) if source is None else (self.mixed_slot(node), self.slot(source))
            self.steps.append(ChoiceOutput(node, reads, self.slot(node)))

    def accumulate(self, node: Node) -> Accumulate:
        """The fused sum of a ChoiceOp's terms, or of a sum's operands with its folded ChoiceOps' terms."""
        if isinstance(node, ChoiceOp):
            options = self.flow.terms(node)
        else:
            options = []
            for operand in node.operands:
                folded = operand in self.folding.choices
                options += self.flow.terms(operand) if folded else [(self.flow.canon(operand), None, False)]
        terms = tuple(self.term(o, ref) for o, ref, _ in options if o not in self.deferrals)
        off = tuple(
            (self.deferred.setdefault(o, Deferred([], (), self.slot(o))), ref)
            for o, ref, _ in options
            if o in self.deferrals
        )
        return Accumulate(node, terms, off, self.mixed_slot(node) if isinstance(node, ChoiceOp) else self.slot(node))

    def term(self, node: Node, ref: Ref) -> tuple[int, Ref, Optional[Deferred]]:
        """(slot, coefficient, how to compute the value again for the coefficient's gradient)."""
        if node in self.scaling.refs or ref is None:
            return self.slot(node), None, None
        recompute = None
        if node in self.recomputed:
            reads = tuple(self.slot(o) for o in node.operands)
            recompute = Deferred([CallOp(node, reads, self.slot(node))], reads, self.slot(node))
            self.recomputes.append(recompute)
        return self.slot(node), ref, recompute

    def routed(self, node: Op) -> CallRouted:
        """An op inside an option, reading what the mixture feeds the options (fed once per ChoiceOp)."""
        choice, source = self.view.routed[node]
        if choice not in self.fed:
            self.fed[choice] = self.slot(("fed", choice))
            self.steps.append(FeedOptions(choice, self.slot(source), self.fed[choice]))
        reads, roles = [], []
        for operand in node.operands:
            reads.append(self.fed[choice] if operand is source else self.slot(operand))
            roles.append(operand.axis_roles if isinstance(operand, Tensor) and operand.role == "weight" else None)
        groups = node.channel_groups()
        depthwise = groups is not None and lazy(groups) == lazy(node.operands[0].shape()[1])
        contiguous = self.channels_last and not node.accepts_channels_last()
        return CallRouted(
            node,
            tuple(reads) + (self.slot(source), self.fed[choice]),
            tuple(roles),
            choice.id,
            depthwise,
            contiguous,
            self.slot(node),
        )


def _reshaped_images(node: Node) -> tuple[int, ...]:
    """Positions of the 4-D data operands of `node` whose shape its output does not keep (their
    gradient may come back contiguous from its backward; see `CallReshaping`). Ops owning weights
    (convolutions) are left alone: their backward keeps the input's layout."""
    if has_weights(node):
        return ()
    shape = lazy(node.shape())
    return tuple(
        i
        for i, o in enumerate(node.operands)
        if not (isinstance(o, Tensor) and o.role == "weight") and len(o.shape()) == 4 and lazy(o.shape()) != shape
    )


def emit_steps(
    view: GraphView,
    flow: Dataflow,
    fused: bool,
    folding: Folding,
    scaling: Scaling,
    differentiable: frozenset,
    deferrals: Mapping[Node, tuple[Node, ...]],
    recomputed: frozenset,
    channels_last: bool,
) -> Emission:
    """One step (or two, with `choice_output` or a routed input) per live node but folded ChoiceOps;
    steps of nodes no gradient reaches run detached."""
    out = _Emitter(view, flow, fused, folding, scaling, deferrals, recomputed, channels_last)
    owners: list[Node] = []
    for node in flow.live:
        if node in folding.choices:
            continue
        first = len(out.steps)
        out.emit(node)
        for step in out.steps[first:]:
            step.detached = not isinstance(step, (LoadWeight, FeedOptions)) and node not in differentiable
        owners += [node] * (len(out.steps) - first)
    inputs = tuple(out.slot(t) for t in view.inputs)
    output = out.slot(view.output)
    return Emission(
        tuple(out.steps),
        tuple(owners),
        MappingProxyType(out.slots),
        inputs,
        output,
        MappingProxyType(out.deferred),
        tuple(out.recomputes),
    )


def move_deferred_steps(emission: Emission, deferrals: Mapping[Node, tuple[Node, ...]]) -> Emission:
    """The steps of deferred options leave the forward pass for their `Deferred`; the sums reading
    them keep the deferred inputs alive until they run."""
    if not deferrals:
        return emission
    member_of = {n: key for key, group in deferrals.items() for n in group}
    kept, owners = [], []
    for step, owner in zip(emission.steps, emission.owners):
        key = member_of.get(owner)
        if key is None:
            kept.append(step)
            owners.append(owner)
            continue
        group = emission.deferred[key]
        group.steps.append(step)
        group.inputs += tuple(r for r in step.reads if r not in group.inputs)
    for group in emission.deferred.values():
        written = {step.out for step in group.steps}
        group.inputs = tuple(r for r in group.inputs if r not in written)
    for step in kept:
        if isinstance(step, Accumulate) and step.off_gates:
            step.reads += tuple(r for d, _ in step.off_gates for r in d.inputs)
    return Emission(
        tuple(kept),
        tuple(owners),
        emission.slots,
        emission.inputs,
        emission.output,
        emission.deferred,
        emission.recomputes,
    )


def release_slots(scheduled: Emission) -> tuple[Step, ...]:
    """Every step frees the slots it is the last to read (all but the output's)."""
    last_read: dict[int, int] = {}
    for number, step in enumerate(scheduled.steps):
        for s in step.reads:
            last_read[s] = number
    frees: list[list[int]] = [[] for _ in scheduled.steps]
    for s, number in last_read.items():
        if s != scheduled.output:
            frees[number].append(s)
    for step, free in zip(scheduled.steps, frees):
        step.frees = tuple(free)
    for deferred in (*scheduled.deferred.values(), *scheduled.recomputes):
        deferred.size = len(scheduled.slots)
    return scheduled.steps


# --- the pass list ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pass:
    """One entry of the pass list: `function`'s result is known to later passes as `produces`;
    `switch`: the `PlanOptions` switch that turns it off (None: it always runs), in which case
    `off` (a function of earlier results, by name, like `function`) stands for its result."""

    function: Callable[..., Any]
    produces: str
    switch: Optional[str] = None
    off: Optional[Callable[..., Any]] = None

    def run(self, results: Mapping[str, Any], options: PlanOptions) -> Any:
        on = self.switch is None or options.effective(self.switch)
        function = self.function if on else self.off
        names = _parameters(function)
        missing = [name for name in names if name not in results]
        if missing:
            raise TypeError(f"pass {self.function.__name__} reads {missing}, which no earlier pass produces")
        return function(**{name: results[name] for name in names})


@functools.cache
def _parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    """The names a pass function reads (its parameters), looked up once per function."""
    return tuple(inspect.signature(function).parameters)


PASSES: tuple[Pass, ...] = (
    Pass(select_nodes, "selection"),
    Pass(merge_common_subexpressions, "merging", "common_subexpressions", lambda: Merging()),
    Pass(trace_readers, "flow"),
    Pass(fuse_mixtures, "fused", "fused_mixtures", lambda: False),
    Pass(fold_mixtures_into_sums, "folding", "sum_folding", lambda: Folding()),
    Pass(fold_affine_outputs, "scaling", "affine_folding", lambda: Scaling()),
    Pass(mark_gradients, "differentiable", "detaching", every_live_node),
    Pass(defer_off_gate_options, "deferrals", "deferral", lambda: _EMPTY),
    Pass(mark_recomputed_terms, "recomputed", "recompute", lambda: frozenset()),
    Pass(choose_layout, "channels_last", "channels_last", lambda: False),
    Pass(emit_steps, "emission"),
    Pass(move_deferred_steps, "scheduled"),
    Pass(release_slots, "steps"),
)


def run_passes(
    view: GraphView,
    active: Mapping[str, tuple[int, ...]],
    off_gates: Optional[Mapping[str, tuple[int, ...]]] = None,
    options: PlanOptions = PlanOptions(),
    until: Optional[str] = None,
) -> dict[str, Any]:
    """Every pass's result by name (`Pass.produces`), the passes of `PASSES` in order, up to the
    one producing `until` (None: all). The only place that reads the compile-time switches."""
    results: dict[str, Any] = {"view": view, "active": active, "off_gates": off_gates or {}}
    for compile_pass in PASSES:
        results[compile_pass.produces] = compile_pass.run(results, options)
        if compile_pass.produces == until:
            break
    return results


def compile_plan(
    view: GraphView,
    active: Mapping[str, tuple[int, ...]],
    off_gates: Optional[Mapping[str, tuple[int, ...]]] = None,
    options: PlanOptions = PlanOptions(),
) -> Plan:
    """The plan running the options `active` (switch id -> option indices) of the graph `view`:
    the passes of `PASSES` in order, those `options` switch on rewriting. `off_gates` (switch id
    -> active option indices): options whose mixing weight is an exact, differentiable zero."""
    r = run_passes(view, active, off_gates, options)
    steps, scheduled = r["steps"], r["scheduled"]
    counts = {
        "steps": len(steps),
        "merged": len(r["merging"].canonical),
        "folded_choices": len(r["folding"].choices),
        "scaled_outputs": len(r["scaling"].refs),
        "op_calls": sum(isinstance(s, (CallOp, CallScaledAffine, CallRouted)) for s in steps),
        "detached_steps": sum(s.detached for s in steps),
        "deferred_options": len(r["deferrals"]),
        "recomputed_terms": len(scheduled.recomputes),
        "channels_last": int(r["channels_last"]),
        "contiguous_steps": sum(
            isinstance(s, CallContiguous) or (isinstance(s, CallRouted) and s.contiguous) for s in steps
        ),
    }
    elided = [*r["merging"].elided, *r["folding"].elided, *r["scaling"].elided]
    return Plan(
        list(steps), len(scheduled.slots), list(scheduled.inputs), scheduled.output, elided, r["channels_last"], counts
    )


@dataclass(frozen=True)
class WeightHandling:
    """How a forward pass hands the mixing weights to the plan, from the switches: `plain`
    (`plain_weights`: when no gradient reaches the architecture, the weights are made without
    autograd and enter the plan as Python floats; in eval mode, options weighted exactly zero leave
    it; in training they still run, as the reference updates their BatchNorm statistics),
    `reads_gates` (`detaching` or `deferral`: sampled weights are read once to find gates that are
    exactly zero), `fused` (`fused_mixtures`: the plan reads coefficients rather than only
    `Mixture.combine`)."""

    plain: bool
    reads_gates: bool
    fused: bool

    def without_autograd(self, architecture_frozen: bool) -> bool:
        """Whether the mixing weights are made without autograd (weight steps)."""
        return self.plain and architecture_frozen

    def as_numbers(self, architecture_frozen: bool, grad_enabled: bool) -> bool:
        """Whether no gradient reaches the mixing weights, so that they enter the plan as floats."""
        return self.plain and (architecture_frozen or not grad_enabled)

    def finds_off_gates(self, sampled: bool) -> bool:
        """Whether the sampled weights are read for exact zeros (the gates that are off)."""
        return sampled and self.reads_gates


def weight_handling(options: PlanOptions) -> WeightHandling:
    """The run-time side of the pass list: what the `plain_weights`, `detaching`, `deferral` and
    `fused_mixtures` switches mean where the mixing weights are made."""
    return WeightHandling(
        options.effective("plain_weights"),
        options.effective("detaching") or options.effective("deferral"),
        options.effective("fused_mixtures"),
    )
