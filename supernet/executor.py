"""What every executor shares: the node order, the input Tensors and the shared weight store.

Each weight Tensor is allocated once, at the largest shape its parameters allow (interval bounds
of its shape expressions), and registered under its node id, so `state_dict()` keys are node ids.
At run time the current shape is sliced out of it: leading slices for plain axes (channels), centred
ones for axes whose declared role is `AxisRole.KERNEL`, so smaller kernels share the centre of the largest.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn

from .axis_role import AxisRole, is_batch, is_kernel
from .expression import lazy, upper_bound
from .graph import Graph, check_unique_ids, input_tensors, weight_tensors
from .node import Node, Tensor
from .seeds import optional_seed
from .space_inputs import check_inputs_used

_INITIALIZERS = {
    "zeros": lambda t, fan_in, g: t.zero_(),
    "ones": lambda t, fan_in, g: t.fill_(1.0),
    "normal": lambda t, fan_in, g: t.normal_(0.0, 0.02, generator=g),
    # torch's default for Conv/Linear: kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    "kaiming_uniform": lambda t, fan_in, g: t.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=g),
}


class GraphExecutor(nn.Module):
    """Base class: owns the weights of the graph ending at `output` and feeds its inputs."""

    def __init__(self, output: Node, seed: Optional[int] = None) -> None:
        super().__init__()
        if not isinstance(output, Node):
            raise TypeError(f"an executor needs the output node of a search space, got {type(output).__name__}")
        self._output = output
        self._seed = optional_seed(seed)  # None: torch's global generator initialises
        self._graph = Graph(output)  # built once: what every pass and walk of this executor reads
        self._nodes = list(self._graph.nodes)
        check_unique_ids(self._nodes)
        check_inputs_used(output, self._nodes)  # a space whose output ignores its input Tensor
        self._inputs = input_tensors(self._nodes)
        self._weights = weight_tensors(self._nodes)
        self._allocated: dict[str, tuple[int, ...]] = {}
        self.initialize()

    @property
    def output_node(self) -> Node:
        return self._output

    @property
    def input_nodes(self) -> list[Tensor]:
        return list(self._inputs)

    def initialize(self) -> "GraphExecutor":
        """Allocate every weight not allocated yet (idempotent: trained weights are never reset)."""
        generator = torch.Generator().manual_seed(self._seed) if self._seed is not None else None
        for tensor in self._weights:
            if tensor.id in self._allocated:
                continue
            try:
                full_shape = tuple(upper_bound(size) for size in tensor.shape())
            except (TypeError, ValueError) as err:
                raise ValueError(f"cannot size weight {tensor.id}: {err}") from err
            values = torch.empty(full_shape)
            fan_in = max(1, math.prod(full_shape[1:])) if len(full_shape) > 1 else max(1, full_shape[0])
            init = _INITIALIZERS.get(tensor.init)
            if init is None:
                raise ValueError(f"weight {tensor.id}: unknown init {tensor.init!r}; known: {sorted(_INITIALIZERS)}")
            with torch.no_grad():
                init(values, fan_in, generator)
            self._store(tensor, values)
            self._allocated[tensor.id] = full_shape
        return self

    def _store(self, tensor: Tensor, values: torch.Tensor) -> None:
        register_nested(self, tensor.id, values, trainable=tensor.trainable)

    def weight(self, tensor: Tensor) -> torch.Tensor:
        """The current slice of a weight Tensor (a view: updates reach the shared storage)."""
        full = self.get_parameter(tensor.id) if tensor.trainable else self.get_buffer(tensor.id)
        current = lazy(tensor.shape())
        if current == self._allocated[tensor.id]:
            return full
        return full[shared_slice(tensor.id, full.shape, current, tensor.axis, tensor.axis_roles)]

    def load_shared_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights by id from a state dict of a larger shared-weight executor (a supernet): each
        entry is cut to this executor's allocation the way `weight()` slices (leading channels,
        centred kernels). Every weight of this executor must be in `state`."""
        missing = [t.id for t in self._weights if t.id not in state]
        if missing:
            raise KeyError(f"the state lacks weight(s) {missing}")
        with torch.no_grad():
            for tensor in self._weights:
                target = self.get_parameter(tensor.id) if tensor.trainable else self.get_buffer(tensor.id)
                source = state[tensor.id]
                index = shared_slice(tensor.id, source.shape, tuple(target.shape), tensor.axis, tensor.axis_roles)
                target.copy_(source[index])

    def _bind_inputs(self, args: tuple, kwargs: dict) -> dict[Tensor, torch.Tensor]:
        if args and kwargs:
            raise TypeError("pass the inputs either positionally or by name, not both")
        if kwargs:
            by_name = {t.name: t for t in self._inputs} | {t.id: t for t in self._inputs}
            unknown = [k for k in kwargs if k not in by_name]
            if unknown:
                raise TypeError(f"unknown input(s) {unknown}; the inputs are {[t.id for t in self._inputs]}")
            bound = {by_name[k]: v for k, v in kwargs.items()}
        else:
            if len(args) != len(self._inputs):
                raise TypeError(
                    f"expected {len(self._inputs)} input(s) {[t.id for t in self._inputs]}, got {len(args)}"
                )
            bound = dict(zip(self._inputs, args))
        missing = [t.id for t in self._inputs if t not in bound]
        if missing:
            raise TypeError(f"missing input(s) {missing}")
        for tensor, value in bound.items():
            check_input(tensor, value)
        return bound


def shared_slice(
    tensor_id: str, allocated: tuple, size: tuple, axes: tuple, roles: tuple[Optional[AxisRole], ...]
) -> tuple[slice, ...]:
    """The index that cuts a `size` weight out of its `allocated` storage: leading entries of
    plain axes (channels), centred entries of kernel axes (`roles`); `axes` name them in errors."""
    index = []
    for want, cap, axis, role in zip(size, allocated, axes, roles):
        if want > cap:
            raise ValueError(f"weight {tensor_id}: axis {axis!r} needs {want} but only {cap} were allocated")
        start = (cap - want) // 2 if is_kernel(role) else 0
        index.append(slice(start, start + want))
    return tuple(index)


def register_nested(root: nn.Module, dotted_id: str, values: torch.Tensor, trainable: bool = True) -> None:
    """Register `values` under `root` at the module path its dotted id spells (state_dict key == id)."""
    *path, leaf = dotted_id.split(".")
    module = container(root, dotted_id)
    if hasattr(module, leaf):
        raise ValueError(f"id {dotted_id} clashes with an existing attribute or weight")
    if trainable:
        module.register_parameter(leaf, values if isinstance(values, nn.Parameter) else nn.Parameter(values))
    else:
        module.register_buffer(leaf, values)


def container(root: nn.Module, dotted_id: str) -> nn.Module:
    """The module under `root` that holds the last segment of `dotted_id`, at the path its other
    segments spell, creating plain nn.Module containers on the way."""
    module = root
    for segment in dotted_id.split(".")[:-1]:
        child = module._modules.get(segment)
        if child is None:
            if hasattr(module, segment):
                raise ValueError(f"id {dotted_id}: segment {segment!r} clashes with a module attribute")
            child = nn.Module()
            module.add_module(segment, child)
        module = child
    return module


def check_input(tensor: Tensor, value: Any) -> None:
    """Raise if `value` does not fit the declared shape of input `tensor` (any size on its batch axis)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"input {tensor.id} must be a torch.Tensor, got {type(value).__name__}")
    expected = lazy(tensor.shape())
    if value.dim() != len(expected):
        raise ValueError(
            f"input {tensor.id} expects {len(expected)} dims {tuple(expected)} (axes {tensor.axis}), got shape {tuple(value.shape)}"
        )
    for axis, role, want, got in zip(tensor.axis, tensor.axis_roles, expected, value.shape):
        if not is_batch(role) and want != got:
            raise ValueError(f"input {tensor.id}: axis {axis!r} must have size {want}, got shape {tuple(value.shape)}")
