"""Code generation for exported architectures: a fixed graph as straight-line torch code.

`generate(output)` walks a discretized graph (no ChoiceOp) once and returns an `ExportCode`: its
inputs (argument names, declared shapes), its layers (one per op: id, op type, attributes, weight
shapes) and the source of `forward`, one group of statements per op as the op declares them
(`Op.source`), like torch.fx's `GraphModule.code`. Weights are read as `self.<weight id>`, so a
module built from it has the node ids as state_dict keys. Every value is taken at the parameters'
current values: the code is of one architecture, with nothing left to choose.
"""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass, field
from typing import Any, Optional

from .axis_role import is_batch
from .choice import ChoiceOp
from .expression import lazy
from .graph import check_unique_ids, input_tensors, topological_order
from .node import Node, Op, Tensor

#: names the generated forward uses itself; values never take them
_RESERVED = frozenset({"self", "torch", "F"}) | set(dir(builtins))


@dataclass(frozen=True)
class WeightSpec:
    """A weight or buffer of a layer: its local name, fixed shape, axis names, and whether it trains."""

    name: str
    shape: tuple[int, ...]
    axis: tuple[str, ...]
    trainable: bool


@dataclass(frozen=True)
class InputSpec:
    """An input of `forward`: the argument name, the input Tensor's id, its shape and axes, and
    which of them is the free batch axis (`AxisRole.BATCH`)."""

    argument: str
    id: str
    shape: tuple[int, ...]
    axis: tuple[str, ...]
    batch: tuple[bool, ...]


@dataclass
class LayerSpec:
    """One op of the architecture. `call`: the op itself, for an op that declares no torch code
    (`Op.source` returns None): the exported module then calls it, and needs the library."""

    id: str
    op: str
    attributes: str
    weights: tuple[WeightSpec, ...]
    call: Optional[Op] = field(default=None, repr=False, compare=False)


@dataclass
class ExportCode:
    """What a module of one architecture is made of: inputs, layers (execution order) and the
    source of its `forward` method."""

    inputs: list[InputSpec]
    layers: list[LayerSpec]
    forward: str

    @property
    def library_calls(self) -> list[LayerSpec]:
        """The layers whose op declares no torch code (the module calls the op object)."""
        return [layer for layer in self.layers if layer.call is not None]


def literal(value: Any) -> str:
    """`value` (an int, float, bool, str, None, or a tuple/list of them; expressions are evaluated
    at the parameters' current values) as Python source."""
    value = lazy(value)
    if isinstance(value, (tuple, list)):
        items = [literal(v) for v in value]
        if isinstance(value, list):
            return "[" + ", ".join(items) + "]"
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as Python source")


def generate(output: Node) -> ExportCode:
    """The code of the fixed graph ending at `output` (see the module docstring)."""
    nodes = topological_order(output)
    choices = [n.id for n in nodes if isinstance(n, ChoiceOp)]
    if choices:
        raise ValueError(
            f"cannot generate code for a graph with choices left (ChoiceOp {choices[0]}); discretize it first"
        )
    check_unique_ids(nodes)
    inputs = _input_specs(input_tensors(nodes))
    names = _Names([n.id for n in nodes if isinstance(n, Op)], [spec.argument for spec in inputs])
    value: dict[int, str] = {id(t): spec.argument for t, spec in zip(input_tensors(nodes), inputs)}
    layers: list[LayerSpec] = []
    lines = [f"def forward(self, {', '.join(spec.argument for spec in inputs)}):"]
    lines += ["    " + line for spec in inputs for line in _input_check(spec)]
    scope = None
    for node in nodes:
        if isinstance(node, Tensor):
            if node.role == "weight":
                value[id(node)] = "self." + _attribute_path(node.id)
            continue
        if not isinstance(node, Op):
            raise TypeError(f"node {node.id} is a {type(node).__name__}, neither a Tensor nor an Op")
        _attribute_path(node.id)
        args = [value[id(o)] for o in node.operands]
        out = names.of[node.id]
        code = node.source(args, out)
        layer = LayerSpec(
            node.id, type(node).__name__, _attributes(node), _weights(node), call=None if code is not None else node
        )
        if code is None:
            code = f"{out} = self.{node.id}({', '.join(args)})"
        layers.append(layer)
        here = node.id.rpartition(".")[0].partition(".")[2]
        if here != scope and here:
            lines.append(f"    # {here}")
        scope = here
        lines += ["    " + line for line in code.splitlines()]
        value[id(node)] = out
    lines.append(f"    return {value[id(output)]}")
    return ExportCode(inputs=inputs, layers=layers, forward="\n".join(lines) + "\n")


def _input_specs(tensors: list[Tensor]) -> list[InputSpec]:
    if len(tensors) == 1:
        arguments = ["x"]
    else:
        arguments = [t.name for t in tensors]
        if any(not _is_name(a) or a in _RESERVED for a in arguments) or len(set(arguments)) != len(arguments):
            arguments = [f"x{i}" for i in range(len(tensors))]
    return [
        InputSpec(a, t.id, tuple(int(s) for s in lazy(t.shape())), tuple(t.axis), tuple(map(is_batch, t.axis_roles)))
        for a, t in zip(arguments, tensors)
    ]


def _input_check(spec: InputSpec) -> list[str]:
    """Statements that raise, naming the input, if an argument does not have its declared shape."""
    conditions = [f"{spec.argument}.dim() != {len(spec.shape)}"]
    sizes = list(zip(spec.shape, spec.axis, spec.batch))
    conditions += [f"{spec.argument}.shape[{i}] != {size}" for i, (size, _, batch) in enumerate(sizes) if not batch]
    shown = "(" + ", ".join(axis if batch else str(size) for size, axis, batch in sizes) + ")"
    message = f"input {spec.id} ({spec.argument}) expects shape {shown} (axes {', '.join(spec.axis)}), got "
    return [f"if {' or '.join(conditions)}:", f"    raise ValueError({message!r} + str({spec.argument}.shape))"]


def _attributes(op: Op) -> str:
    parts = []
    for key, raw in op.attributes.items():
        try:
            parts.append(f"{key}={literal(raw)}")
        except TypeError:
            parts.append(f"{key}={lazy(raw)!r}")
    return ", ".join(parts)


def _weights(op: Op) -> tuple[WeightSpec, ...]:
    return tuple(
        WeightSpec(t.name, tuple(int(s) for s in lazy(t.shape())), tuple(t.axis), t.trainable)
        for t in op.operands[len(op.inputs) :]
        if isinstance(t, Tensor) and t.owner is op
    )


def _is_name(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def _attribute_path(node_id: str) -> str:
    """`node_id` as an attribute path (`self.<path>`): every segment must be a Python name."""
    bad = [s for s in node_id.split(".") if not _is_name(s)]
    if bad:
        raise ValueError(
            f"node id {node_id!r} cannot be exported: its segment {bad[0]!r} is not a Python name (rename the node or scope)"
        )
    return node_id


class _Names:
    """Variable names for op values: the shortest tail of the op id (`add_0`, `cell_1.add_0`) that
    no other op id ends in, lowercased, dots as underscores."""

    def __init__(self, op_ids: list[str], taken: list[str]) -> None:
        used = set(taken) | _RESERVED
        tails = [s.lower().split(".") for s in op_ids]
        counts: dict[tuple[str, ...], int] = {}
        for segments in tails:
            for k in range(1, len(segments) + 1):
                key = tuple(segments[-k:])
                counts[key] = counts.get(key, 0) + 1
        self.of: dict[str, str] = {}
        for op_id, segments in zip(op_ids, tails):
            k = next(k for k in range(1, len(segments) + 1) if counts[tuple(segments[-k:])] == 1)
            name = "_".join(segments[-k:])
            while name in used or not _is_name(name):
                name = "v_" + name
            used.add(name)
            self.of[op_id] = name
