"""Graph rewrites the execution plan applies, decided once per plan from the graph alone.

- Common subexpressions: ops of one type with equal attributes, no owned weights and the same
  operands compute the same value; only the first runs (e.g. the ReLU in front of every convolution
  option of the edges leaving one cell node, or the pooling of that node on each of its edges).
- Mixture folding: a ChoiceOp whose only consumer is a sum (`Add`) is not materialised; its weighted
  options become terms of the sum's single accumulation (`acc += w * y`, one fused kernel per term).
- Affine folding: an option ending in an op of the form `weight * f(x) + bias` (BatchNorm,
  LayerNorm) absorbs its mixing weight into `weight` and `bias` (`w * BN(x) = BN'(x)` with the
  affine parameters scaled by w), so its term is a plain addition and its mixing-weight gradient
  comes out of the op's own backward.
- Layout: graphs of 2-D convolutions whose ops all work in any memory format run channels-last on
  CPU (oneDNN convolutions and pooling are several times faster there).

Ops are recognised by class name and declared attributes (the core never imports `ops`). An op
keeps its own `_forward_implementation` everywhere; a node with one set on the instance (a test
wrapper, say) is never merged away.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from .expression import lazy
from .node import Node, Op, Tensor

#: ops whose output is `weight * f(x) + bias` for their operands named "weight" and "bias"
AFFINE_OUTPUT_OPS = frozenset({"BatchNorm", "LayerNorm"})
#: ops that draw random numbers: two of them never compute the same value
STOCHASTIC_OPS = frozenset({"Dropout"})
#: ops that accept and keep any memory format of a 4-D input (channels-last runs through them)
LAYOUT_AGNOSTIC_OPS = frozenset({
    "Conv2d", "BatchNorm", "Relu", "Relu6", "Gelu", "AvgPooling", "MaxPooling", "AdaptiveAvgPooling", "Add",
    "Identity", "Zero", "Dropout", "Concat", "Slice", "Flatten", "Linear", "ChoiceOp",
})
_OP_STATE = frozenset({"name", "id", "operands", "users", "params", "attributes", "training", "_called", "_shape"})


def is_zero_option(node: Node) -> bool:
    """Whether `node` is a `Zero` op (all zeros: its mixture term vanishes)."""
    return type(node).__name__ == "Zero"


def is_sum(node: Node) -> bool:
    """Whether `node` outputs the plain sum of its operands (an `Add`)."""
    return isinstance(node, Op) and type(node).__name__ == "Add"


def patched(node: Node) -> bool:
    """Whether `node` carries its own `_forward_implementation` (set on the instance)."""
    return "_forward_implementation" in vars(node)


def has_weights(node: Node) -> bool:
    return any(isinstance(o, Tensor) and o.role == "weight" for o in node.operands)


def affine_operands(node: Node) -> Optional[tuple[int, int]]:
    """(operand index of `weight`, of `bias`) when `node` outputs `weight * f(x) + bias`, else None."""
    if type(node).__name__ not in AFFINE_OUTPUT_OPS or patched(node) or not getattr(node, "affine", True):
        return None
    names = {o.name: i for i, o in enumerate(node.operands) if isinstance(o, Tensor) and o.role == "weight"}
    if "weight" not in names or "bias" not in names:
        return None
    return names["weight"], names["bias"]


def _freeze(value: Any) -> Any:
    """A hashable form of an evaluated attribute (raises TypeError when there is none)."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    hash(value)
    return (type(value).__name__, value)


def cse_key(node: Node, representative: dict[int, Node]) -> Optional[tuple]:
    """What makes two ops compute the same value, or None if `node` must run on its own."""
    if not isinstance(node, Op) or type(node).__name__ in ("ChoiceOp", *STOCHASTIC_OPS) or getattr(node, "stochastic", False):
        return None
    if has_weights(node) or patched(node) or not node.operands:
        return None
    if set(vars(node)) - _OP_STATE - set(node.attributes):  # state beyond its attributes: keep it apart
        return None
    try:
        attributes = _freeze({k: lazy(v) for k, v in node.attributes.items()})
    except TypeError:
        return None
    operands = tuple(id(representative.get(id(o), o)) for o in node.operands)
    return (type(node), attributes, operands)


def common_subexpressions(nodes: Iterable[Node]) -> dict[int, Node]:
    """id(node) -> the earlier node computing the same value, for every duplicate in `nodes`
    (a topological order)."""
    representative: dict[int, Node] = {}
    first: dict[tuple, Node] = {}
    for node in nodes:
        key = cse_key(node, representative)
        if key is None:
            continue
        seen = first.setdefault(key, node)
        if seen is not node:
            representative[id(node)] = seen
    return representative


def prefers_channels_last(nodes: Iterable[Node]) -> bool:
    """Whether the graph convolves in 2-D and every op in it is indifferent to the memory format."""
    convolves = False
    for node in nodes:
        if isinstance(node, Tensor):
            if node.role == "weight" and tuple(node.axis[-2:]) == ("kH", "kW"):
                convolves = True
            continue
        if type(node).__name__ not in LAYOUT_AGNOSTIC_OPS or patched(node):
            return False
    return convolves
