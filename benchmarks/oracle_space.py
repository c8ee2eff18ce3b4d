"""The oracle benchmark's search space and data: small enough to train every architecture.

Space: stem (Conv3 1->16, BatchNorm), two cells sharing one genotype (tied switches) with a
2-wide average pooling between them, and the NB201 head. A cell has 3 nodes: node 0 is its
input, node 1 = e01(node 0), node 2 = e02(node 0) + e12(node 1); each edge is a ChoiceOp over
the 5 NB201 ops (none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3): 5^3 = 125
architectures. `none` on both paths disconnects the input from the head (chance accuracy).

Data (`oracle_data`): MNIST-1D generated locally (`search.datasets.load_mnist1d`, the published
seed 42): its 4000 training signals split by `seed` into 3000 train / 1000 val, its 1000 test
signals as test; x (N, 1, 40) float32, y int64 in 0..9.
"""

from __future__ import annotations

import itertools
from typing import Any, Optional

import torch

from ops import Add, AvgPooling
from search.datasets import load_mnist1d
from search.spaces import NB201_OPS
from search.spaces.nb201 import head, nb201_choice, stem
from supernet import ChoiceOp, IntScalarParameter, Node, Parameter, Tensor, get_nodes, scope, search_space
from supernet.choice import switch_values

ORACLE_EDGES = ((0, 1), (0, 2), (1, 2))
CHANNELS = 16
TRAIN_SIZE, VAL_SIZE, TEST_SIZE = 3000, 1000, 1000

Split = tuple[torch.Tensor, torch.Tensor]


def _edge(x: Node, switch: Parameter) -> Node:
    return nb201_choice(x, CHANNELS, switch)


@scope
def edge_0to1(x: Node, switch: Parameter) -> Node:
    """Edge 0 -> 1 of the oracle cell."""
    return _edge(x, switch)


@scope
def edge_0to2(x: Node, switch: Parameter) -> Node:
    """Edge 0 -> 2 of the oracle cell."""
    return _edge(x, switch)


@scope
def edge_1to2(x: Node, switch: Parameter) -> Node:
    """Edge 1 -> 2 of the oracle cell."""
    return _edge(x, switch)


@scope
def oracle_cell(x: Node, switches: list[Parameter]) -> Node:
    """node 2 = e02(x) + e12(e01(x)); `switches` in `ORACLE_EDGES` order."""
    node1 = edge_0to1(x, switches[0])
    return Add()(edge_0to2(x, switches[1]), edge_1to2(node1, switches[2]))


@search_space
def _oracle_network(input: Tensor) -> Node:
    switches = [IntScalarParameter(min=0, max=len(NB201_OPS) - 1, name="choice") for _ in ORACLE_EDGES]
    net = oracle_cell(stem(input, CHANNELS), switches)
    net = oracle_cell(AvgPooling(2, stride=2)(net), switches)
    return head(net, 10)


def oracle_network(input: Tensor) -> Node:
    """The oracle network on `input`: (N, 1, L) signals or (N, 1, H, W) images (the ops follow the rank);
    its switch ids are those of `oracle_space()` whatever the input."""
    return _oracle_network(input)


def oracle_space() -> Node:
    """A fresh copy of the oracle search space (output node) on (N, 1, 40) MNIST-1D signals."""
    return _oracle_network(Tensor(name="input", shape=(1, 1, 40), axis=("N", "C", "L")))


def switch_options(space: Node) -> dict[str, list[int]]:
    """Switch id -> its option indices, in id order (tied switches appear once)."""
    switches: dict[str, list[int]] = {}
    for node in get_nodes(space):
        if isinstance(node, ChoiceOp):
            switches.setdefault(node.switch.id, switch_values(node.switch))
    return dict(sorted(switches.items()))


def all_architectures(space: Optional[Node] = None) -> list[dict[str, int]]:
    """Every architecture of `space` (default `oracle_space()`; switch id -> option index), in lexicographic order."""
    options = switch_options(space if space is not None else oracle_space())
    return [dict(zip(options, combo)) for combo in itertools.product(*options.values())]


def architecture_key(architecture: dict[str, Any]) -> str:
    """A stable text key of an architecture: the option indices in switch-id order, e.g. '3-0-4'."""
    return "-".join(str(int(architecture[sid])) for sid in sorted(architecture))


def architecture_label(architecture: dict[str, Any]) -> str:
    """The ops in switch-id order, e.g. 'nor_conv_3x3|none|avg_pool_3x3'."""
    return "|".join(NB201_OPS[int(architecture[sid])] for sid in sorted(architecture))


def oracle_data(seed: int = 0) -> tuple[Split, Split, Split]:
    """(train, val, test) of MNIST-1D: 3000 / 1000 of its training signals (split by `seed`), its 1000 test signals."""
    (x, y), test = load_mnist1d()
    if len(x) != TRAIN_SIZE + VAL_SIZE or len(test[0]) != TEST_SIZE:
        raise RuntimeError(
            f"MNIST-1D has {len(x)} train / {len(test[0])} test signals, expected {TRAIN_SIZE + VAL_SIZE} / {TEST_SIZE}"
        )
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, val = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    return (x[train], y[train]), (x[val], y[val]), test
