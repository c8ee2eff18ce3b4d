"""What the rewrite passes (passes.py) ask of a node, answered from the traits its class declares.

- `common_subexpressions`: ops of one type, pure, with equal attributes, no owned weights and the
  same operands compute the same value (e.g. the ReLU in front of every convolution option of the
  edges leaving one cell node, or the pooling of that node on each of its edges).
- `is_sum` / `is_zero_option`: declared sums (mixtures fold into them) and zeros (never run).
- `affine_arguments`: an op declaring `affine` (`supernet.traits.Affine`) outputs `scale * f(x) + shift`, so a mixing
  weight folds into its weight and bias (`w * BN(x) = BN'(x)`; without affine parameters, w is
  passed as its weight): its term is a plain addition, its weight's gradient comes out of the op's
  own backward.
- `recomputable`: pure ops whose backward keeps their input anyway (`keeps_input`: poolings).
- `prefers_channels_last`: graphs of 2-D convolutions whose ops all declare `layout_agnostic`
  (oneDNN convolutions and pooling are several times faster channels-last on CPU).

An op that declares nothing (`supernet.traits.OpTraits()`) is run as written. An op keeps its own
`_forward_implementation` everywhere; a node with one set on the instance (a test wrapper, say) is
never merged, folded or deferred.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from .axis_role import is_kernel
from .expression import lazy
from .choice import ChoiceOp
from .node import Node, Op, Tensor
from .plan import AffineArguments

# every op's own bookkeeping (conditions are constraints on the architecture, not on the value computed)
_OP_STATE = frozenset(
    {"name", "id", "operands", "users", "params", "attributes", "training", "_called", "_shape", "conditions"}
)


def is_zero_option(node: Node) -> bool:
    """Whether `node` declares an all-zero output (its mixture term vanishes)."""
    return isinstance(node, Op) and node.traits.zero


def is_sum(node: Node) -> bool:
    """Whether `node` declares that it outputs the plain sum of its operands."""
    return isinstance(node, Op) and node.traits.sum


def patched(node: Node) -> bool:
    """Whether `node` carries its own `_forward_implementation` (set on the instance)."""
    return isinstance(node, Op) and node.has_own_implementation()


def has_weights(node: Node) -> bool:
    return any(isinstance(o, Tensor) and o.role == "weight" for o in node.operands)


def affine_arguments(node: Node) -> Optional[AffineArguments]:
    """How to scale the output of `node` through its declared affine weights (`OpTraits.affine`),
    or None when it declares none (or its operands are not what it declares)."""
    affine = node.traits.affine if isinstance(node, Op) else None
    if affine is None or patched(node):
        return None
    n = len(node.operands)
    if n == affine.scale and affine.shift == n + 1:  # built without them: the scale is passed
        return AffineArguments(n, n + 1, affine.axis)
    weights = [i for i, o in enumerate(node.operands) if isinstance(o, Tensor) and o.role == "weight"]
    if affine.scale not in weights or affine.shift not in weights:
        return None
    return AffineArguments(affine.scale, affine.shift, None)


def is_pure(node: Node) -> bool:
    """Whether `node` computes its value from its operands alone: an op with no weights, buffers,
    random draws, instance patch or state beyond its attributes (two such ops on the same operands
    agree, and running one again in the backward pass gives the same value)."""
    if not isinstance(node, Op) or isinstance(node, ChoiceOp) or not node.traits.pure:
        return False
    if has_weights(node) or patched(node) or not node.operands:
        return False
    return not set(vars(node)) - _OP_STATE - set(node.attributes)


def _freeze(value: Any) -> Any:
    """A hashable form of an evaluated attribute (raises TypeError when there is none)."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_freeze(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    hash(value)
    return (type(value).__name__, value)


def recomputable(node: Node) -> bool:
    """Whether the value of `node` is better computed again in the backward pass than kept for it:
    a pure op whose own backward keeps its operands anyway."""
    return isinstance(node, Op) and node.traits.keeps_input and is_pure(node)


def cse_key(node: Node, representative: Mapping[Node, Node]) -> Optional[tuple]:
    """What makes two ops compute the same value, or None if `node` must run on its own."""
    if not is_pure(node):
        return None
    try:
        attributes = _freeze({k: lazy(v) for k, v in node.attributes.items()})
    except TypeError:
        return None
    operands = tuple(representative.get(o, o) for o in node.operands)  # nodes hash by identity
    return (type(node), attributes, operands)


def common_subexpressions(nodes: Iterable[Node]) -> dict[Node, Node]:
    """node -> the earlier node computing the same value, for every duplicate in `nodes` (a
    topological order)."""
    representative: dict[Node, Node] = {}
    first: dict[tuple, Node] = {}
    for node in nodes:
        key = cse_key(node, representative)
        if key is None:
            continue
        seen = first.setdefault(key, node)
        if seen is not node:
            representative[node] = seen
    return representative


def prefers_channels_last(nodes: Iterable[Node]) -> bool:
    """Whether the graph convolves in 2-D and every op in it declares itself indifferent to the
    memory format (ChoiceOps are the engine's own sums). Instances that refuse channels-last
    (`Op.accepts_channels_last`) run on contiguous copies of their inputs inside such a graph."""
    convolves = False
    for node in nodes:
        if isinstance(node, Tensor):
            if node.role == "weight" and len(node.axis_roles) == 4 and sum(map(is_kernel, node.axis_roles)) == 2:
                convolves = True
            continue
        if not isinstance(node, ChoiceOp) and (not node.traits.layout_agnostic or patched(node)):
            return False
    return convolves
