"""SupernetExecutor: every ChoiceOp becomes a learnable weighted mixture of all of its options.

One logit vector `alpha` per switch parameter (ChoiceOps sharing a switch share it), zero at the
start. The architecture (`arch_parameters()`) lives apart from the shared weights
(`weight_parameters()`), as in the DARTS reference code; a `Mixture` decides the mixing weights.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

import torch
from torch import nn

from .choice import ChoiceOp, switch_values
from .executor import GraphExecutor, register_nested
from .expression import lazy
from .mixture import Mixture, SoftmaxMixture
from .node import Node, Tensor
from .parameters import Parameter


def _is_zero_option(node: Node) -> bool:
    return type(node).__name__ == "Zero"  # core must not import ops; Zero is identified by name


class SupernetExecutor(GraphExecutor):
    """Runs the whole supernet; ready to train once constructed."""

    def __init__(self, space: Node, mixture: Optional[Mixture] = None, seed: Optional[int] = None) -> None:
        super().__init__(space, seed=seed)
        self.mixture = mixture if mixture is not None else SoftmaxMixture()
        self._choices = [n for n in self._nodes if isinstance(n, ChoiceOp)]
        self.switches: dict[str, Parameter] = {}
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
        self._slots = {sid: switch_values(s) for sid, s in self.switches.items()}
        self._plans: dict[tuple, list[Node]] = {}
        self._last_weights: dict[str, torch.Tensor] = {}

    # --- the DARTS separation ------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture logits, one vector per switch id."""
        return list(self.alphas.values())

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every trainable parameter that is not an architecture logit."""
        arch = {id(a) for a in self.alphas.values()}
        return [p for p in self.parameters() if id(p) not in arch]

    def named_weight_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        arch = {id(a) for a in self.alphas.values()}
        return ((n, p) for n, p in self.named_parameters() if id(p) not in arch)

    def option_names(self) -> dict[str, list[str]]:
        """Switch id -> labels of the options its logits weigh."""
        names: dict[str, list[str]] = {}
        for choice in self._choices:
            labels = choice.option_names()
            names.setdefault(choice.switch.id, [labels[i] for i in self._slots[choice.switch.id]])
        return names

    def probabilities(self) -> dict[str, list[float]]:
        """Switch id -> the architecture distribution over its options."""
        return {sid: self.mixture.probabilities(a).tolist() for sid, a in self.alphas.items()}

    def architecture(self) -> dict[str, int]:
        """Switch id -> option index of the most probable option (the argmax architecture)."""
        return {sid: self._slots[sid][int(torch.argmax(self.mixture.probabilities(a)))] for sid, a in self.alphas.items()}

    def set_alphas(self, values: dict[str, Any]) -> None:
        """Overwrite logits by switch id (unknown ids raise)."""
        unknown = [k for k in values if k not in self.alphas]
        if unknown:
            raise KeyError(f"unknown switch id(s) {unknown}; known: {sorted(self.alphas)}")
        with torch.no_grad():
            for k, v in values.items():
                self.alphas[k].copy_(torch.as_tensor(v, dtype=self.alphas[k].dtype))

    # --- execution --------------------------------------------------------------------------
    def _plan(self, active: dict[str, tuple[int, ...]]) -> list[Node]:
        key = tuple(active[sid] for sid in self.alphas)
        plan = self._plans.get(key)
        if plan is None:
            needed, stack = {id(self._output)}, [self._output]
            while stack:
                node = stack.pop()
                operands = [node.operands[i] for i in self._runs(node, active)] if isinstance(node, ChoiceOp) else node.operands
                for operand in operands:
                    if id(operand) not in needed:
                        needed.add(id(operand))
                        stack.append(operand)
            plan = [n for n in self._nodes if id(n) in needed]
            self._plans[key] = plan
        return plan

    def _runs(self, choice: ChoiceOp, active: dict[str, tuple[int, ...]]) -> list[int]:
        indices = active[choice.switch.id]
        nonzero = [i for i in indices if not _is_zero_option(choice.operands[i])]
        return nonzero if nonzero else list(indices[:1])

    def forward(self, *inputs: torch.Tensor, **named_inputs: torch.Tensor) -> Any:
        """Run the supernet: each ChoiceOp outputs the mixture its switch's weights define."""
        values: dict[Node, Any] = self._bind_inputs(inputs, named_inputs)
        weights: dict[str, torch.Tensor] = {}
        active: dict[str, tuple[int, ...]] = {}
        for sid, alpha in self.alphas.items():
            w, run = self.mixture.weights(alpha, self.training)
            slots = self._slots[sid]
            weights[sid] = w
            active[sid] = tuple(slots[j] for j in (range(len(slots)) if run is None else run))
        self._last_weights = weights
        for node in self._plan(active):
            if isinstance(node, Tensor):
                if node.role == "weight":
                    values[node] = self.weight(node)
            elif isinstance(node, ChoiceOp):
                sid = node.switch.id
                position = {index: j for j, index in enumerate(self._slots[sid])}
                w = weights[sid]
                outputs = {position[i]: values[node.operands[i]] for i in self._runs(node, active)}
                values[node] = self.mixture.combine(w, outputs)
            else:
                node.training = self.training
                values[node] = node._forward_implementation(*(values[o] for o in node.operands))
        return values[self._output]


def _check_option_shapes(choice: ChoiceOp) -> None:
    shapes = [tuple(lazy(option.shape())) for option in choice.operands]
    if any(s[1:] != shapes[0][1:] or len(s) != len(shapes[0]) for s in shapes):
        labels = choice.option_names()
        described = ", ".join(f"{name}: {shape}" for name, shape in zip(labels, shapes))
        raise ValueError(f"ChoiceOp {choice.id}: options must have equal output shapes to be mixed, got {described}")
