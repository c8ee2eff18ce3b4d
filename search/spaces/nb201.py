"""NAS-Bench-201 (Dong & Yang 2020) cell search spaces, for 1-D (N, C, L) and 2-D (N, C, H, W) inputs.

A cell has 4 nodes; node 0 is the cell input and node j sums the 6 edges i -> j (i < j), each a
ChoiceOp over `NB201_OPS`. Edges are listed in NB201's order, `NB201_EDGES`, which is also the
order of a switch list (`nb201_switches()`), and of the genotype string.

Switch ids are `<space>_0.cell_<c>.edge_<i>to<j>_0.ChoiceOp_0.choice` (cells counted over the whole
network, 0 .. 3 * cells_per_stage - 1). With shared switches (`tied=True`), each parameter takes the
id of its first use, so the ids are those of cell 0.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Optional, Sequence

from ops import Add, AdaptiveAvgPooling, AvgPooling, BatchNorm, Flatten, Identity, Relu, Zero, conv1d, conv2d, linear
from supernet import ChoiceOp, IntScalarParameter, Node, Parameter, Tensor, lazy, scope, search_space
from supernet.graph import topological_order

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def nb201_switches() -> list[IntScalarParameter]:
    """Six fresh switches (one per edge, in `NB201_EDGES` order) to share one genotype across cells."""
    return [IntScalarParameter(min=0, max=len(NB201_OPS) - 1, name="choice") for _ in NB201_EDGES]


def _conv(x: Node, out_channels: Any, kernel_size: int, stride: int = 1) -> Node:
    rank = len(x.shape())
    if rank == 3:
        return conv1d(x, out_channels, kernel_size, stride=stride)
    if rank == 4:
        return conv2d(x, out_channels, kernel_size, stride=stride)
    raise ValueError(f"NB201 spaces take (N, C, L) or (N, C, H, W) inputs, got {len(x.shape())}-D {x!r}")


def _relu_conv_bn(x: Node, out_channels: Any, kernel_size: int, stride: int = 1) -> Node:
    return BatchNorm()(_conv(Relu()(x), out_channels, kernel_size, stride))


@scope
def relu_conv_bn(x: Node, out_channels: Any, kernel_size: int, stride: int = 1) -> Node:
    """ReLU -> Conv(kernel_size, stride) -> BatchNorm."""
    return _relu_conv_bn(x, out_channels, kernel_size, stride)


# the conv options get their own scope names so weight ids read `...edge_0to1_0.nor_conv_3x3_0...`
@scope
def nor_conv_1x1(x: Node, out_channels: Any) -> Node:
    """The NB201 `nor_conv_1x1` op: ReLU -> Conv1x1 -> BatchNorm."""
    return _relu_conv_bn(x, out_channels, 1)


@scope
def nor_conv_3x3(x: Node, out_channels: Any) -> Node:
    """The NB201 `nor_conv_3x3` op: ReLU -> Conv3x3 -> BatchNorm."""
    return _relu_conv_bn(x, out_channels, 3)


def nb201_choice(x: Node, channels: Any, switch: Optional[Parameter] = None) -> Node:
    """A ChoiceOp over the NB201 ops (`NB201_OPS` order) on `x`, keeping its `channels`."""
    options = [
        Zero(),
        Identity(),
        functools.partial(nor_conv_1x1, out_channels=channels),
        functools.partial(nor_conv_3x3, out_channels=channels),
        AvgPooling(3, stride=1, padding=1, count_include_pad=False),
    ]
    return ChoiceOp(*options, switch=switch, names=list(NB201_OPS))(x)


def _edge_scope(i: int, j: int) -> Callable[[Node, Any, Optional[Parameter]], Node]:
    """A scoped block for edge i -> j: a ChoiceOp over the NB201 ops on its input."""

    def edge(x: Node, channels: Any, switch: Optional[Parameter]) -> Node:
        return nb201_choice(x, channels, switch)

    # scope names ids after the function, so each edge gets its own function name
    edge.__name__ = edge.__qualname__ = f"edge_{i}to{j}"
    return scope(edge)


_EDGE_SCOPES = {edge: _edge_scope(*edge) for edge in NB201_EDGES}


@scope
def cell(x: Node, channels: Any, switches: Optional[Sequence[Parameter]] = None) -> Node:
    """One NB201 cell on `x`; `channels` must equal x's channel count (skip edges keep it).
    `switches`: 6 switch parameters in `NB201_EDGES` order to share, or None for fresh ones."""
    if lazy(channels) != lazy(x.shape()[1]):
        raise ValueError(
            f"NB201 cell keeps its channel count: input has {lazy(x.shape()[1])}, asked for {lazy(channels)}"
        )
    if switches is not None and len(switches) != len(NB201_EDGES):
        raise ValueError(f"an NB201 cell needs {len(NB201_EDGES)} switches, got {len(switches)}")
    nodes = [x]
    for j in range(1, 4):
        incoming = [
            _EDGE_SCOPES[(i, j)](nodes[i], channels, None if switches is None else switches[NB201_EDGES.index((i, j))])
            for i in range(j)
        ]
        nodes.append(incoming[0] if len(incoming) == 1 else Add()(*incoming))
    return nodes[3]


@scope
def reduction(x: Node, out_channels: Any) -> Node:
    """NB201's residual reduction block: ReLU-Conv3(stride 2)-BN -> ReLU-Conv3-BN, plus
    AvgPool(2, 2) -> Conv1x1 on the shortcut, summed. Halves every spatial axis."""
    main = relu_conv_bn(relu_conv_bn(x, out_channels, 3, stride=2), out_channels, 3)
    shortcut = _conv(AvgPooling(2, stride=2)(x), out_channels, 1)
    return Add()(main, shortcut)


@scope
def stem(x: Node, channels: Any) -> Node:
    """Conv3 -> BatchNorm."""
    return BatchNorm()(_conv(x, channels, 3))


@scope
def head(x: Node, num_classes: int) -> Node:
    """BatchNorm -> ReLU -> global average pool -> Flatten -> Linear."""
    pooled = AdaptiveAvgPooling(1)(Relu()(BatchNorm()(x)))
    return linear(Flatten()(pooled), num_classes)


def _network(x: Node, channels: int, cells_per_stage: int, num_classes: int, tied: bool) -> Node:
    shared = nb201_switches() if tied else None
    net = stem(x, channels)
    for stage in range(3):
        width = channels * 2**stage
        if stage:
            net = reduction(net, width)
        for _ in range(cells_per_stage):
            net = cell(net, width, shared)
    return head(net, num_classes)


@search_space
def nb201_space(
    input: Tensor, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10, tied: bool = True
) -> Node:
    """The NB201 network: stem, 3 stages of `cells_per_stage` cells (channels C, 2C, 4C) with
    reduction blocks between them, and a classifier head. `tied`: all cells share one genotype
    (6 switches, as in NB201); otherwise every cell has its own 6."""
    return _network(input, channels, cells_per_stage, num_classes, tied)


@search_space
def nb201_1d_space(
    input: Optional[Tensor] = None,
    channels: int = 16,
    cells_per_stage: int = 1,
    num_classes: int = 10,
    tied: bool = True,
) -> Node:
    """A small NB201 network for MNIST-1D; `input` defaults to a (N, 1, 40) Tensor named `input`."""
    if input is None:
        input = Tensor(name="input", shape=(1, 1, 40), axis=("N", "C", "L"))
    if len(input.shape()) != 3:
        raise ValueError(f"nb201_1d_space takes a (N, C, L) input, got shape {lazy(input.shape())}")
    return _network(input, channels, cells_per_stage, num_classes, tied)


_EDGE_ID = re.compile(r"^(?P<cell>.*)\.edge_(?P<i>\d)to(?P<j>\d)_\d+\.ChoiceOp_0$")


def cell_switches(net: Node) -> list[list[Parameter]]:
    """The switches of every NB201 cell in `net`, cells in execution order, each in `NB201_EDGES` order."""
    cells: dict[str, dict[tuple[int, int], Parameter]] = {}
    for node in topological_order(net):
        match = _EDGE_ID.match(node.id) if isinstance(node, ChoiceOp) else None
        if match and node.option_names() == list(NB201_OPS):
            edges = cells.setdefault(match["cell"], {})
            edges[(int(match["i"]), int(match["j"]))] = node.switch
    return [[edges[e] for e in NB201_EDGES] for edges in cells.values() if len(edges) == len(NB201_EDGES)]


def genotype_string(switches: Sequence[Parameter]) -> str:
    """The NB201 architecture string of 6 switches' current values, e.g.
    `|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|`."""
    if len(switches) != len(NB201_EDGES):
        raise ValueError(f"an NB201 genotype has {len(NB201_EDGES)} switches, got {len(switches)}")
    ops = {edge: NB201_OPS[int(lazy(s))] for edge, s in zip(NB201_EDGES, switches)}
    nodes = ["|" + "|".join(f"{ops[(i, j)]}~{i}" for i in range(j)) + "|" for j in range(1, 4)]
    return "+".join(nodes)
