"""The DARTS CNN cell search space (Liu, Simonyan & Yang 2019), for 2-D (N, C, H, W) and 1-D (N, C, L) inputs.

A network is a stem, `layers` cells and a classifier. The cells at `layers // 3` and
`2 * layers // 3` are reduction cells (stride 2, channels doubled), the others normal cells. A cell
reads the outputs of the previous two cells (input nodes 0 and 1, preprocessed by ReLU-Conv1x1-BN,
or by FactorizedReduce when node 0 has twice the spatial size of node 1), has `steps` intermediate
nodes 2 .. steps + 1, each the sum of one edge from every earlier node, and outputs the channel
concatenation of its last `multiplier` nodes. Every edge is a ChoiceOp over `DARTS_OPS`, in
DARTS's order; on the edges a reduction cell reads from its inputs, ops have stride 2 (`none`
subsamples, `skip_connect` is a FactorizedReduce). As in DARTS's search, BatchNorms inside cells
have `affine=False` and pooling ops are followed by one.

All normal cells share one genotype, all reduction cells another: one switch per edge and cell
kind, whose id is that of its first use,

    darts_space_0.normal_cell_0.edge_<i>to<j>_0.ChoiceOp_0.choice
    darts_space_0.reduction_cell_0.edge_<i>to<j>_0.ChoiceOp_0.choice

(2 * 14 switches for `steps=4`, edges listed by `darts_edges`). The space declares DARTS's
derivation (`search.derivation.TopInputsPerNode(2)`: top-2 incoming edges per node, by their
strongest non-`none` option), so a search's `result.architecture`, its `export()`, plots, summary
and cost are DARTS's discretization; `darts_genotype` computes the same from probabilities alone,
and `SearchResult.with_architecture` puts another architecture into a result; `darts_genotype_tuple`
and `darts_genotype_text` give DARTS's `Genotype(normal=[...], normal_concat=range(2, 6), ...)`.
"""

from __future__ import annotations

import functools
import re
from collections import namedtuple
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch

from ops import (
    Add,
    AdaptiveAvgPooling,
    AvgPooling,
    BatchNorm,
    Concat,
    Flatten,
    Identity,
    MaxPooling,
    Relu,
    Slice,
    Zero,
    conv1d,
    conv2d,
    linear,
)
from supernet import ChoiceOp, IntScalarParameter, Node, Parameter, Tensor, lazy, scope, search_space

from ..derivation import TopInputsPerNode, declare_derivation

DARTS_OPS = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
NONE = DARTS_OPS.index("none")
CELL_KINDS = ("normal", "reduction")

#: DARTS's genotype record; its repr is DARTS's text form
Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")


def darts_edges(steps: int = 4) -> list[tuple[int, int]]:
    """The edges (i, j) of a cell, i < j, j = 2 .. steps + 1, in DARTS's alpha order (by j, then i)."""
    return [(i, j) for j in range(2, steps + 2) for i in range(j)]


def darts_switches(steps: int = 4) -> dict[tuple[int, int], IntScalarParameter]:
    """Fresh switches, one per edge of `darts_edges(steps)`, to share one genotype across cells."""
    return {edge: IntScalarParameter(min=0, max=len(DARTS_OPS) - 1, name="choice") for edge in darts_edges(steps)}


# --- the operations ------------------------------------------------------------------------------


def _conv(x: Node, out_channels: Any, kernel_size: int, stride: int = 1, dilation: int = 1, groups: int = 1) -> Node:
    rank = len(x.shape())
    if rank == 4:
        return conv2d(x, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups)
    if rank == 3:
        return conv1d(x, out_channels, kernel_size, stride=stride, dilation=dilation, groups=groups)
    raise ValueError(f"DARTS spaces take (N, C, H, W) or (N, C, L) inputs, got a {rank}-D {x!r}")


def _channels(x: Node) -> int:
    return int(lazy(x.shape()[1]))


@scope
def relu_conv_bn(x: Node, out_channels: int, kernel_size: int = 1, stride: int = 1, affine: bool = False) -> Node:
    """ReLU -> Conv(kernel_size, stride) -> BatchNorm (DARTS's ReLUConvBN)."""
    return BatchNorm(affine=affine)(_conv(Relu()(x), out_channels, kernel_size, stride))


@scope
def factorized_reduce(x: Node, out_channels: int, affine: bool = False) -> Node:
    """ReLU, then two stride-2 Conv1x1 (the second on the input shifted by one position on every
    spatial axis) concatenated along channels, then BatchNorm: halves even spatial sizes."""
    spatial = lazy(x.shape()[2:])
    if any(size % 2 for size in spatial):
        raise ValueError(
            f"FactorizedReduce halves even spatial sizes, got {spatial} (DARTS needs sizes that stay even "
            "down to the last reduction)"
        )
    x = Relu()(x)
    shifted = x
    for axis in range(2, len(x.shape())):
        shifted = Slice(axis, start=1)(shifted)
    half = out_channels // 2
    joined = Concat(axis=1)(_conv(x, half, 1, stride=2), _conv(shifted, out_channels - half, 1, stride=2))
    return BatchNorm(affine=affine)(joined)


def _dw_pw_bn(x: Node, out_channels: int, kernel_size: int, stride: int, dilation: int, affine: bool) -> Node:
    channels = _channels(x)
    depthwise = _conv(Relu()(x), channels, kernel_size, stride=stride, dilation=dilation, groups=channels)
    return BatchNorm(affine=affine)(_conv(depthwise, out_channels, 1))


def _sep_conv(x: Node, kernel_size: int, stride: int, affine: bool) -> Node:
    channels = _channels(x)
    half = _dw_pw_bn(x, channels, kernel_size, stride, 1, affine)
    return _dw_pw_bn(half, channels, kernel_size, 1, 1, affine)


@scope
def sep_conv_3x3(x: Node, stride: int = 1, affine: bool = False) -> Node:
    """(ReLU -> depthwise Conv3 -> Conv1x1 -> BN) twice, the first with `stride`."""
    return _sep_conv(x, 3, stride, affine)


@scope
def sep_conv_5x5(x: Node, stride: int = 1, affine: bool = False) -> Node:
    """(ReLU -> depthwise Conv5 -> Conv1x1 -> BN) twice, the first with `stride`."""
    return _sep_conv(x, 5, stride, affine)


@scope
def dil_conv_3x3(x: Node, stride: int = 1, affine: bool = False) -> Node:
    """ReLU -> depthwise Conv3 (dilation 2) -> Conv1x1 -> BN."""
    return _dw_pw_bn(x, _channels(x), 3, stride, 2, affine)


@scope
def dil_conv_5x5(x: Node, stride: int = 1, affine: bool = False) -> Node:
    """ReLU -> depthwise Conv5 (dilation 2) -> Conv1x1 -> BN."""
    return _dw_pw_bn(x, _channels(x), 5, stride, 2, affine)


@scope
def max_pool_3x3(x: Node, stride: int = 1, affine: bool = False) -> Node:
    """MaxPool3 (padding 1) -> BN, the pooling op of DARTS's search (MixedOp adds the BN)."""
    return BatchNorm(affine=affine)(MaxPooling(3, stride=stride, padding=1)(x))


@scope
def avg_pool_3x3(x: Node, stride: int = 1, affine: bool = False) -> Node:
    """AvgPool3 (padding 1, count_include_pad=False) -> BN."""
    return BatchNorm(affine=affine)(AvgPooling(3, stride=stride, padding=1, count_include_pad=False)(x))


def _options(x: Node, stride: int, affine: bool) -> list[Any]:
    """The DARTS_OPS options of one edge, in order."""

    def block(function: Callable[..., Node]) -> Callable[[Node], Node]:
        return functools.partial(function, stride=stride, affine=affine)

    skip = Identity() if stride == 1 else functools.partial(factorized_reduce, out_channels=_channels(x), affine=affine)
    return [
        Zero(stride=stride),
        block(max_pool_3x3),
        block(avg_pool_3x3),
        skip,
        block(sep_conv_3x3),
        block(sep_conv_5x5),
        block(dil_conv_3x3),
        block(dil_conv_5x5),
    ]


@functools.lru_cache(maxsize=None)
def _edge(i: int, j: int) -> Callable[..., Node]:
    """The scoped block of edge i -> j: a ChoiceOp over the DARTS ops on its input."""

    def edge(x: Node, stride: int, switch: Optional[Parameter], affine: bool) -> Node:
        return ChoiceOp(*_options(x, stride, affine), switch=switch, names=list(DARTS_OPS))(x)

    edge.__name__ = edge.__qualname__ = f"edge_{i}to{j}"  # scope ids are named after the function
    return scope(edge)


# --- cells and network -----------------------------------------------------------------------------


def _cell(
    s0: Node,
    s1: Node,
    channels: int,
    reduction: bool,
    switches: Optional[Mapping[tuple[int, int], Parameter]],
    steps: int,
    multiplier: int,
    affine: bool,
) -> Node:
    if lazy(s0.shape()[2:]) != lazy(s1.shape()[2:]):
        s0 = factorized_reduce(s0, channels, affine=affine)
    else:
        s0 = relu_conv_bn(s0, channels, 1, affine=affine)
    s1 = relu_conv_bn(s1, channels, 1, affine=affine)
    if lazy(s0.shape()) != lazy(s1.shape()):
        raise ValueError(
            f"DARTS cell inputs do not match after preprocessing: {lazy(s0.shape())} and {lazy(s1.shape())}"
        )
    states = [s0, s1]
    for j in range(2, steps + 2):
        incoming = [
            _edge(i, j)(h, 2 if reduction and i < 2 else 1, None if switches is None else switches[(i, j)], affine)
            for i, h in enumerate(states)
        ]
        states.append(Add()(*incoming))
    return Concat(axis=1)(*states[-multiplier:]) if multiplier > 1 else states[-1]


@scope
def normal_cell(
    s0: Node,
    s1: Node,
    channels: int,
    switches: Optional[Mapping[tuple[int, int], Parameter]] = None,
    steps: int = 4,
    multiplier: int = 4,
    affine: bool = False,
) -> Node:
    """A normal DARTS cell on the previous two cell outputs; outputs `multiplier * channels` channels."""
    return _cell(s0, s1, channels, False, switches, steps, multiplier, affine)


@scope
def reduction_cell(
    s0: Node,
    s1: Node,
    channels: int,
    switches: Optional[Mapping[tuple[int, int], Parameter]] = None,
    steps: int = 4,
    multiplier: int = 4,
    affine: bool = False,
) -> Node:
    """A reduction DARTS cell: the edges from the two inputs have stride 2."""
    return _cell(s0, s1, channels, True, switches, steps, multiplier, affine)


@scope
def stem(x: Node, channels: int) -> Node:
    """Conv3 -> BatchNorm."""
    return BatchNorm()(_conv(x, channels, 3))


@scope
def head(x: Node, num_classes: int) -> Node:
    """Global average pool -> Flatten -> Linear."""
    return linear(Flatten()(AdaptiveAvgPooling(1)(x)), num_classes)


def reduction_layers(layers: int) -> tuple[int, ...]:
    """The indices of the reduction cells: layers // 3 and 2 * layers // 3 (once if they coincide)."""
    return tuple(sorted({layers // 3, 2 * layers // 3}))


@search_space
def darts_space(
    input: Tensor,
    channels: int = 16,
    layers: int = 8,
    num_classes: int = 10,
    steps: int = 4,
    multiplier: int = 4,
    stem_multiplier: int = 3,
    affine: bool = False,
) -> Node:
    """DARTS's search network on `input` (N, C, H, W) or (N, C, L): stem of `stem_multiplier *
    channels`, `layers` cells (reduction cells at `reduction_layers(layers)` double the channels),
    global pooling and a Linear classifier. `affine`: whether cell BatchNorms learn a scale and
    shift (DARTS searches without). Spatial sizes must stay even wherever FactorizedReduce halves them."""
    if multiplier > steps or multiplier < 1:
        raise ValueError(f"multiplier must be in 1 .. steps ({steps}), got {multiplier}")
    switches = {kind: darts_switches(steps) for kind in CELL_KINDS}
    s0 = s1 = stem(input, stem_multiplier * channels)
    width = channels
    reductions = reduction_layers(layers)
    for layer in range(layers):
        if layer in reductions:
            width *= 2
            cell = reduction_cell(s0, s1, width, switches["reduction"], steps, multiplier, affine)
        else:
            cell = normal_cell(s0, s1, width, switches["normal"], steps, multiplier, affine)
        s0, s1 = s1, cell
    return declare_derivation(head(s1, num_classes), TopInputsPerNode(inputs=2))


# --- discretization --------------------------------------------------------------------------------

_SWITCH_ID = re.compile(
    r"(?:^|\.)(?P<kind>normal|reduction)_cell_\d+\.edge_(?P<i>\d+)to(?P<j>\d+)_\d+\.ChoiceOp_0\.choice$"
)

Probabilities = Mapping[str, Sequence[float]]


def darts_switch_ids(switch_ids: Sequence[str]) -> dict[str, dict[tuple[int, int], str]]:
    """Cell kind ("normal", "reduction") -> edge (i, j) -> switch id, for the DARTS edge switches among
    `switch_ids` (e.g. `space.parametrization()` or a result's `probabilities`)."""
    cells: dict[str, dict[tuple[int, int], str]] = {}
    for sid in switch_ids:
        match = _SWITCH_ID.search(sid)
        if match:
            edges = cells.setdefault(match["kind"], {})
            edge = (int(match["i"]), int(match["j"]))
            if edge in edges and edges[edge] != sid:
                raise ValueError(
                    f"two {match['kind']} switches for edge {edge}: {edges[edge]} and {sid}; "
                    "darts_genotype expects tied cells (one genotype per cell kind)"
                )
            edges[edge] = sid
    return cells


def _probabilities_of(source: Any) -> tuple[dict[str, list[float]], dict[str, int], dict[str, list[str]]]:
    """(probabilities, argmax architecture, option names) of a SearchResult, a SupernetExecutor or
    a plain switch id -> probabilities mapping."""
    if hasattr(source, "probabilities") and callable(source.probabilities):  # a SupernetExecutor
        return dict(source.probabilities()), dict(source.architecture()), dict(source.option_names())
    if hasattr(source, "probabilities") and hasattr(source, "architecture"):  # a SearchResult
        return dict(source.probabilities), dict(source.architecture), dict(source.option_names)
    if isinstance(source, Mapping):
        probabilities = {
            k: [float(p) for p in (v.tolist() if isinstance(v, torch.Tensor) else v)] for k, v in source.items()
        }
        argmax = {k: max(range(len(v)), key=v.__getitem__) for k, v in probabilities.items()}
        return probabilities, argmax, {}
    raise TypeError(
        f"expected a SearchResult, a SupernetExecutor or a switch id -> probabilities mapping, got {type(source).__name__}"
    )


def darts_genotype(result_or_probabilities: Any, edges_per_node: int = 2) -> dict[str, int]:
    """DARTS's discretization of a search: for every intermediate node of both cell kinds, keep the
    `edges_per_node` incoming edges whose strongest non-`none` option is most probable, each with
    that option; the other edges get `none`. Ties keep the edge from the earlier node, as DARTS.

    Takes a SearchResult, a SupernetExecutor, or switch id -> probabilities (in `DARTS_OPS`
    order). Returns switch id -> option index for every switch: the DARTS edges as above, any
    other switch at its argmax (the result's architecture). Put it into a result with
    `result.with_architecture(...)` and `export()` it, or pass it to `supernet.discretize`."""
    probabilities, argmax, names = _probabilities_of(result_or_probabilities)
    cells = darts_switch_ids(list(probabilities))
    if not cells:
        raise ValueError(
            "no DARTS edge switch (…normal_cell_<k>.edge_<i>to<j>_0.ChoiceOp_0.choice) among "
            f"{sorted(probabilities)[:4]}…; is this a darts_space search?"
        )
    architecture = dict(argmax)
    for kind, edges in cells.items():
        for sid in edges.values():
            if len(probabilities[sid]) != len(DARTS_OPS) or (sid in names and list(names[sid]) != list(DARTS_OPS)):
                raise ValueError(
                    f"switch {sid} weighs options {names.get(sid, len(probabilities[sid]))}, not the DARTS ops {DARTS_OPS}"
                )
        for j in sorted({j for _, j in edges}):
            incoming = sorted((i, sid) for (i, jj), sid in edges.items() if jj == j)

            def strength(item: tuple[int, str]) -> float:
                p = probabilities[item[1]]
                return max(p[k] for k in range(len(p)) if k != NONE)

            kept = {i for i, _ in sorted(incoming, key=lambda item: -strength(item))[:edges_per_node]}
            for i, sid in incoming:
                p = probabilities[sid]
                best = max((k for k in range(len(p)) if k != NONE), key=p.__getitem__)
                architecture[sid] = best if i in kept else NONE
    return architecture


def darts_genotype_tuple(architecture: Union[Mapping[str, int], Any], multiplier: int = 4) -> Genotype:
    """The DARTS `Genotype` of an architecture (switch id -> option index, or a SearchResult's
    `architecture`): per cell kind, the (op, input node) pairs of the edges that are not `none`,
    node by node (within a node by input; DARTS lists them by strength, the cell is the same), and
    the concatenated nodes `range(2 + steps - multiplier, steps + 2)`."""
    if not isinstance(architecture, Mapping):
        architecture = architecture.architecture
    cells = darts_switch_ids(list(architecture))
    genes: dict[str, list[tuple[str, int]]] = {}
    steps = 0
    for kind in CELL_KINDS:
        edges = cells.get(kind, {})
        genes[kind] = [
            (DARTS_OPS[int(architecture[edges[e]])], e[0])
            for e in sorted(edges, key=lambda e: (e[1], e[0]))
            if int(architecture[edges[e]]) != NONE
        ]
        steps = max([steps, *(j - 1 for _, j in edges)])
    concat = range(2 + steps - multiplier, steps + 2)
    return Genotype(normal=genes["normal"], normal_concat=concat, reduce=genes["reduction"], reduce_concat=concat)


def darts_genotype_text(architecture: Union[Mapping[str, int], Any], multiplier: int = 4) -> str:
    """DARTS's text form, e.g. `Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...],
    normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ...], reduce_concat=range(2, 6))`."""
    return repr(darts_genotype_tuple(architecture, multiplier))
