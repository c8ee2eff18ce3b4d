"""SupernetExecutor: every ChoiceOp becomes a learnable weighted mixture of all of its options.

One logit vector `alpha` per switch parameter (ChoiceOps sharing a switch share it), zero at the
start. The architecture (`arch_parameters()`) lives apart from the shared weights
(`weight_parameters()`), as in the DARTS reference code; a `Mixture` decides the mixing weights.

`option_subgraphs(choice)` tells which nodes belong to each option of a ChoiceOp (the option's
output and every ancestor used by nothing else) and which single node all options read, the option
input. Mixtures with `uses_option_input` get that input (see `Mixture.option_input`): the nodes of
the options then receive what the mixture makes of it, e.g. a slice of its channels. With C' of
the input's C channels, the options' weights are narrowed to their leading entries on every axis
(kernel axes, by their declared `AxisRole`, excepted) whose size scales to a whole number by C'/C
(C -> C', C/2 -> C'/2, 6C -> 6C'), and an op whose `channel_groups()` equals its input's channel
count (a depthwise convolution) runs with one group per channel it receives (`Op.compute(groups=)`).

The supernet runs a precomputed execution plan (`plan.py`), compiled by the passes of `passes.py`
over this graph's `Graph` (built once) and a `GraphView` of its weights and mixing positions, once
per set of active options. `optimize` selects
the rewrite passes (`PlanOptions`): True (the default) all of them, False none (every node one
step, every ChoiceOp mixed through `Mixture.combine`: the reference the rewrites are measured
against). Both run through the one interpreter, `Plan.run`, for every mixture, partial channels
included (`FeedOptions`, `CallRouted` steps). Inside `frozen_architecture()` (weight steps) or
without autograd, the mixing weights are plain numbers and, in eval mode, options weighted exactly
zero do not run; options whose sampled gate is exactly zero run without autograd or only in the backward pass.

`mixing_weights()` gives the weights the mixture uses in evaluation, and inside
`overridden_weights({id: weights})` the listed switches or value parameters mix with the given
constant weights instead of their mixture's (every option runs; nothing is sampled): the hook
for measuring what one option contributes (perturbation-based selection) or fixing a choice
while the others stay mixed.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import torch
from torch import nn

from .choice import ChoiceOp, switch_values
from .executor import GraphExecutor, register_nested, shared_slice
from .expression import lazy
from .graph import exclusive_ancestors
from .mixing_check import check_mixable
from .mixture import Mixture, Phase, SoftmaxMixture
from .node import Node, Op, Tensor
from .parameters import Parameter
from .passes import GraphView, compile_plan, weight_handling
from .plan import Context, Plan
from .plan_options import PlanOptions
from .value_choice import WeightMask, searchable_value_parameters

_PLAN_CACHE = 256  # compiled plans kept per supernet (one per set of active options)


class SupernetExecutor(GraphExecutor):
    """Runs the whole supernet; ready to train once constructed."""

    def __init__(
        self,
        space: Node,
        mixture: Optional[Mixture] = None,
        seed: Optional[int] = None,
        optimize: Union[bool, PlanOptions] = True,
    ) -> None:
        super().__init__(space, seed=seed)
        self.mixture = mixture if mixture is not None else SoftmaxMixture()
        self.options = PlanOptions.of(optimize)
        self.optimize = self.options.rewrites
        self._handling = weight_handling(self.options)
        self._choices = [n for n in self._nodes if isinstance(n, ChoiceOp)]
        self.switches: dict[str, Parameter] = {}
        check_mixable(self._choices)  # options that can never share a shape cannot be summed
        for choice in self._choices:
            self.switches.setdefault(choice.switch.id, choice.switch)
            _check_option_shapes(choice)
        self.arch = nn.Module()  # alphas live here, apart from the weights
        self.alphas: dict[str, nn.Parameter] = {}
        for switch_id, switch in self.switches.items():
            alpha = nn.Parameter(torch.zeros(len(switch_values(switch))))
            register_nested(self.arch, switch_id, alpha)
            self.alphas[switch_id] = alpha
        # option index of each alpha entry, per switch (a switch may allow only some options)
        self._option_indices = {sid: switch_values(s) for sid, s in self.switches.items()}
        # value choices: parameters sizing weights (kernel sizes, widths) get logits over their values
        self.value_parameters: dict[str, Parameter] = {
            p.id: p for p in searchable_value_parameters(self._weights, exclude=self.switches)
        }
        for pid, param in self.value_parameters.items():
            alpha = nn.Parameter(torch.zeros(len(param.values())))
            register_nested(self.arch, pid, alpha)
            self.alphas[pid] = alpha
            self._option_indices[pid] = param.values()
        self._masks = self._build_masks()
        self._extra_arch: dict[str, nn.Parameter] = {}
        self._subgraphs: dict[ChoiceOp, tuple[Optional[Node], list[Optional[list[Node]]]]] = {}
        self._option_inputs, self._routed = self._routes()
        # execution plans, compiled per active set against the current values of these parameters
        excluded = {id(p) for p in (*self.switches.values(), *self.value_parameters.values())}
        found = {id(p): p for n in self._nodes for p in n.params.values() if id(p) not in excluded}
        self._plan_parameters = list(found.values())
        self._plan_snapshot: Optional[tuple] = None
        self._compiled: dict[tuple, Plan] = {}
        self._positions = {
            sid: {index: j for j, index in enumerate(self._option_indices[sid])} for sid in self.switches
        }
        self._architecture_frozen = False
        self._overrides: dict[str, torch.Tensor] = {}  # id -> constant mixing weights (overridden_weights)
        self.mixture.bind(self)
        self.plan()  # the plan with every option active, compiled now

    def _routes(self) -> tuple[Optional[dict[ChoiceOp, Optional[Node]]], dict[Node, tuple[ChoiceOp, Node]]]:
        """With `mixture.uses_option_input`: each ChoiceOp's option input, and, for mixtures that
        feed the options something else (`option_input`), op inside an option -> (ChoiceOp,
        option input), so that those ops read what the mixture feeds them."""
        if not self.mixture.uses_option_input:
            return None, {}
        option_inputs: dict[ChoiceOp, Optional[Node]] = {}
        routed: dict[Node, tuple[ChoiceOp, Node]] = {}
        feeds = type(self.mixture).option_input is not Mixture.option_input
        for choice in self._choices:
            source, options = self.option_subgraphs(choice)
            option_inputs[choice] = source
            if source is not None and feeds:
                for nodes in options:
                    routed.update((n, (choice, source)) for n in nodes or () if isinstance(n, Op))
        return option_inputs, routed

    def _build_masks(self) -> dict[str, WeightMask]:
        """A mask per trainable weight sized by value choices, at the shape it runs with (every
        value parameter at its largest value)."""
        searched = list(self.value_parameters.values())
        saved = [p.current_value for p in searched]
        try:
            for param in searched:
                param.current_value = max(param.values())
            return {
                t.id: WeightMask(t, searched, lazy(t.shape()))
                for t in self._weights
                if t.trainable and searchable_value_parameters([t], exclude=self.switches)
            }
        finally:
            for param, value in zip(searched, saved):
                param.current_value = value

    # --- the DARTS separation ------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture logits, one vector per switch id (then any the mixture added)."""
        return [*self.alphas.values(), *self._extra_arch.values()]

    def add_arch_parameter(self, name: str, value: torch.Tensor) -> nn.Parameter:
        """Register one more architecture parameter as `arch.<name>` (for a Mixture's `bind`, e.g.
        edge weights): it joins `arch_parameters()`, so build the optimizers after it."""
        param = nn.Parameter(value)
        register_nested(self.arch, name, param)
        self._extra_arch[name] = param
        return param

    @property
    def choices(self) -> list[ChoiceOp]:
        """The ChoiceOps of the space, in execution order."""
        return list(self._choices)

    def _own_nodes(self, option: Node, choice: ChoiceOp) -> Optional[list[Node]]:
        """The nodes only `option` needs, None if anything but `choice` uses `option` (a chain exit)."""
        graph = self._graph
        if any(user is not choice for user in graph.users(option)):
            return None
        return exclusive_ancestors(option, graph.position, graph.users)

    def option_subgraphs(self, choice: ChoiceOp) -> tuple[Optional[Node], list[Optional[list[Node]]]]:
        """(option input, nodes of each option) of a ChoiceOp of this space.

        The nodes of an option are its output node and every ancestor that nothing else uses (its
        ops and their weights), in execution order; None for an option whose output is used
        elsewhere too (a chain exit). The option input is the one node that all the options read,
        None when they read more than one node, or none."""
        cached = self._subgraphs.get(choice)
        if cached is None:
            options = [self._own_nodes(o, choice) for o in choice.operands]
            reads: set[int] = set()
            source: Optional[Node] = None
            for nodes in options:
                if nodes is None:
                    reads.add(-1)
                    continue
                inside = {id(n) for n in nodes}
                for node in nodes:
                    for operand in node.operands:
                        if id(operand) not in inside:
                            reads.add(id(operand))
                            source = operand
            cached = (source if len(reads) == 1 else None, options)
            self._subgraphs[choice] = cached
        return cached

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter that is not an architecture logit."""
        arch = {id(a) for a in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def named_weight_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        arch = {id(a) for a in self.arch_parameters()}
        return ((n, p) for n, p in self.named_parameters() if id(p) not in arch)

    def option_names(self) -> dict[str, list[str]]:
        """Switch or value-parameter id -> labels of the options its logits weigh."""
        names: dict[str, list[str]] = {}
        for choice in self._choices:
            labels = choice.option_names()
            names.setdefault(choice.switch.id, [labels[i] for i in self._option_indices[choice.switch.id]])
        for pid, param in self.value_parameters.items():
            names[pid] = [f"{param.name}={v}" for v in param.values()]
        return names

    def option_values(self) -> dict[str, list]:
        """Id -> what each logit entry selects: option indices for switches, values for value parameters."""
        return {sid: list(self._option_indices[sid]) for sid in self.alphas}

    def distributions(self) -> dict[str, torch.Tensor]:
        """Id -> the architecture distribution, differentiable in the logits (for cost terms)."""
        return {sid: self.mixture.distribution(a, sid) for sid, a in self.alphas.items()}

    def probabilities(self) -> dict[str, list[float]]:
        """Switch id -> the architecture distribution over its options."""
        return {sid: self.mixture.probabilities(a, sid).tolist() for sid, a in self.alphas.items()}

    def architecture(self) -> dict[str, Any]:
        """Switch id -> index of the most probable option, value-parameter id -> most probable
        value (the argmax architecture)."""
        return {
            sid: self._option_indices[sid][int(torch.argmax(self.mixture.probabilities(a, sid)))]
            for sid, a in self.alphas.items()
        }

    def set_alphas(self, values: dict[str, Any]) -> None:
        """Overwrite logits by switch id (unknown ids raise)."""
        unknown = [k for k in values if k not in self.alphas]
        if unknown:
            raise KeyError(f"unknown switch id(s) {unknown}; known: {sorted(self.alphas)}")
        with torch.no_grad():
            for k, v in values.items():
                self.alphas[k].copy_(torch.as_tensor(v, dtype=self.alphas[k].dtype))

    # --- execution --------------------------------------------------------------------------
    @contextlib.contextmanager
    def frozen_architecture(self) -> Iterator[None]:
        """Forward passes inside compute the mixing weights without autograd: for weight steps, whose
        backward needs no gradient of the architecture (the logits get none in here). Lets the
        optimized plan use the weights as plain numbers, and keeps fewer tensors for backward."""
        previous, self._architecture_frozen = self._architecture_frozen, True
        try:
            yield
        finally:
            self._architecture_frozen = previous

    _phase: Optional[Phase] = None  # the step training-mode passes belong to (`in_phase`)

    @contextlib.contextmanager
    def in_phase(self, phase: Phase) -> Iterator[None]:
        """Training-mode forward passes inside belong to `phase` (a weight or an architecture step):
        the mixture is told so with every call of `Mixture.weights`."""
        previous, self._phase = self._phase, phase
        try:
            yield
        finally:
            self._phase = previous

    def mixing_weights(self) -> dict[str, tuple[torch.Tensor, Optional[Sequence[int]]]]:
        """Id -> the mixing weights (detached, one per option) the mixture gives in evaluation mode,
        and the indices it runs there (None: all), e.g. one-hot on the argmax for single-path mixtures."""
        with torch.no_grad():
            return {sid: self.mixture.weights(a, False, sid, Phase.EVALUATION) for sid, a in self.alphas.items()}

    @contextlib.contextmanager
    def overridden_weights(self, weights: Mapping[str, Any]) -> Iterator[None]:
        """Forward passes inside mix each listed switch or value parameter (id -> one weight per
        option, in `option_values()` order) with these constant weights instead of its mixture's;
        every option of a listed switch runs (in eval mode, those weighted exactly zero do not).
        Nested uses combine, the inner one winning for an id both list."""
        unknown = sorted(k for k in weights if k not in self.alphas)
        if unknown:
            raise KeyError(
                f"overridden_weights: unknown switch or value-parameter id(s) {unknown[:3]}; known: {sorted(self.alphas)}"
            )
        fixed: dict[str, torch.Tensor] = {}
        for sid, value in weights.items():
            alpha = self.alphas[sid]
            tensor = torch.as_tensor(value, dtype=alpha.dtype).detach().to(alpha.device)
            if tensor.shape != alpha.shape:
                raise ValueError(
                    f"overridden_weights[{sid!r}]: expected {alpha.numel()} weights (one per option), "
                    f"got shape {tuple(tensor.shape)}"
                )
            fixed[sid] = tensor
        previous = self._overrides
        self._overrides = {**previous, **fixed}
        try:
            yield
        finally:
            self._overrides = previous

    @contextlib.contextmanager
    def _value_choices_at_largest(self) -> Iterator[None]:
        """Value choices run at their largest value; masks weigh the smaller ones."""
        saved = {pid: p.current_value for pid, p in self.value_parameters.items()}
        try:
            for param in self.value_parameters.values():
                param.current_value = max(param.values())
            yield
        finally:
            for pid, value in saved.items():
                self.value_parameters[pid].current_value = value

    def forward(self, *inputs: torch.Tensor, **named_inputs: torch.Tensor) -> Any:
        """Run the supernet: each ChoiceOp outputs the mixture its switch's weights define."""
        values: dict[Node, Any] = self._bind_inputs(inputs, named_inputs)
        frozen = self._handling.without_autograd(self._architecture_frozen)
        weights: dict[str, torch.Tensor] = {}
        active: dict[str, tuple[int, ...]] = {}
        sampled = False
        phase = (self._phase or Phase.TRAINING) if self.training else Phase.EVALUATION
        # the mixing weights in the alphas' float32 whatever autocast does to the ops they weigh
        with torch.no_grad() if frozen else contextlib.nullcontext(), _without_autocast(self.arch_parameters()):
            for sid, alpha in self.alphas.items():
                override = self._overrides.get(sid)
                w, run = (
                    (override, None) if override is not None else self.mixture.weights(alpha, self.training, sid, phase)
                )
                weights[sid] = w
                if sid in self.switches:
                    indices = self._option_indices[sid]
                    active[sid] = tuple(indices[j] for j in (range(len(indices)) if run is None else run))
                    sampled = sampled or run is not None
        numbers = self._handling.as_numbers(frozen, torch.is_grad_enabled())
        gates = self._handling.finds_off_gates(sampled)
        with self._value_choices_at_largest() if self.value_parameters else contextlib.nullcontext():
            return self._run_plan(values, weights, active, numbers, gates)

    def _run_plan(
        self,
        values: dict,
        weights: dict[str, torch.Tensor],
        active: dict[str, tuple[int, ...]],
        numbers: bool,
        sampled: bool,
    ) -> Any:
        """Run the compiled plan of the active options.

        `numbers`: no gradient reaches the mixing weights; they enter the plan as Python floats and,
        in eval mode, options weighted exactly zero leave it. `sampled` (the mixture picked the options to run):
        the differentiable weights are read once to find exact zeros (gates that are off), whose
        options run without autograd. Neither applies while `torch.compile` traces."""
        switch_ids = list(self.switches)
        off_gates: dict[str, tuple[int, ...]] = {}
        read = (numbers or sampled) and switch_ids and not torch.compiler.is_compiling()
        plain = self._weight_values(weights, switch_ids) if read else None
        if plain is not None:
            for sid, part in zip(switch_ids, plain):
                position = self._positions[sid]
                off = tuple(i for i in active[sid] if part[position[i]] == 0.0)
                if off and not numbers:
                    off_gates[sid] = off
                elif off and len(off) < len(active[sid]) and not self.training:
                    # in training the options still run: the reference updates their BatchNorm statistics
                    active[sid] = tuple(i for i in active[sid] if i not in off)
        if not self._handling.fused:
            coefs: list = []  # every ChoiceOp goes through `Mixture.combine`
        elif numbers and plain is not None:
            coefs = plain
        else:
            coefs = [weights[sid].unbind(0) for sid in switch_ids]
        plan = self._plan_for(active, off_gates)
        return plan.run([values[t] for t in self._inputs], Context(coefs, weights, self.training, self.mixture, plain))

    def _weight_values(self, weights: dict[str, torch.Tensor], switch_ids: list[str]) -> list[list[float]]:
        """The mixing weights of each switch as Python floats (one device synchronisation)."""
        flat = torch.cat([weights[sid].detach().reshape(-1) for sid in switch_ids]).tolist()
        parts, start = [], 0
        for sid in switch_ids:
            parts.append(flat[start : start + len(self._option_indices[sid])])
            start += len(self._option_indices[sid])
        return parts

    def _plan_for(
        self, active: dict[str, tuple[int, ...]], off_gates: Optional[dict[str, tuple[int, ...]]] = None
    ) -> Plan:
        """The compiled plan of an active set (compiled on first use; all plans are dropped when a
        parameter they were compiled against changes)."""
        off_gates = off_gates or {}
        key = (tuple(active[sid] for sid in self.switches), tuple(off_gates.get(sid, ()) for sid in self.switches))
        if torch.compiler.is_compiling():
            plan = self._compiled.get(key)
            return plan if plan is not None else compile_plan(self.graph_view(), active, off_gates, self.options)
        snapshot = (type(self.mixture), *(p.current_value for p in self._plan_parameters))
        if snapshot != self._plan_snapshot:
            self._compiled.clear()
            self._plan_snapshot = snapshot
        plan = self._compiled.get(key)
        if plan is None or plan.stale():
            if len(self._compiled) >= _PLAN_CACHE:
                self._compiled.clear()
            plan = self._compiled[key] = compile_plan(self.graph_view(), active, off_gates, self.options)
        return plan

    def graph_view(self) -> GraphView:
        """What compiling reads of this supernet, at the parameters' current values."""
        return GraphView(
            graph=self._graph,
            inputs=tuple(self._inputs),
            positions=self._positions,
            numbers={sid: k for k, sid in enumerate(self.switches)},
            mixture=self.mixture,
            option_inputs=self._option_inputs,
            routed=self._routed,
            weights={t.id: self._weight_source(t) for t in self._weights},
        )

    def _weight_source(self, tensor: Tensor) -> tuple[dict, str, Optional[tuple], Any]:
        """(store, name in it, index of the current slice or None, value-choice mask or None)."""
        *path, leaf = tensor.id.split(".")
        module: nn.Module = self
        for segment in path:
            module = module._modules[segment]
        store = module._parameters if tensor.trainable else module._buffers
        current, allocated = tuple(lazy(tensor.shape())), self._allocated[tensor.id]
        index = None
        if current != allocated:
            index = shared_slice(tensor.id, allocated, current, tensor.axis, tensor.axis_roles)
        return store, leaf, index, self._masks.get(tensor.id)

    def plan(self) -> Plan:
        """The plan with every option active."""
        with self._value_choices_at_largest():
            return self._plan_for(
                {sid: tuple(indices) for sid, indices in self._option_indices.items() if sid in self.switches}
            )


def _without_autocast(alphas: Sequence[torch.Tensor]) -> Any:
    """Autocast disabled on the alphas' device type if it is enabled there, else nothing."""
    kind = alphas[0].device.type if alphas else "cpu"
    enabled = torch.amp.is_autocast_available(kind) and torch.is_autocast_enabled(kind)
    return torch.autocast(kind, enabled=False) if enabled else contextlib.nullcontext()


def _check_option_shapes(choice: ChoiceOp) -> None:
    shapes = [tuple(lazy(option.shape())) for option in choice.operands]
    if any(s[1:] != shapes[0][1:] or len(s) != len(shapes[0]) for s in shapes):
        labels = choice.option_names()
        described = ", ".join(f"{name}: {shape}" for name, shape in zip(labels, shapes))
        raise ValueError(f"ChoiceOp {choice.id}: options must have equal output shapes to be mixed, got {described}")
