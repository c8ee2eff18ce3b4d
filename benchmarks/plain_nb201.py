"""The common plain-PyTorch DARTS supernet for the NAS-Bench-201 cell space, written as the DARTS
reference code writes it (an `nn.ModuleList` mixed op: `sum(w * op(x) for w, op in zip(weights, ops))`),
with exactly the ops and shapes of `search.spaces.nb201_space` (2-D), so the two can be compared
step for step. `load_supernet_state` copies a SupernetExecutor's weights and alphas into it.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class MixedOp(nn.Module):
    """none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(
            [
                Zero(),
                nn.Identity(),
                ReLUConvBN(c, c, 1),
                ReLUConvBN(c, c, 3),
                nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            ]
        )

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class SearchCell(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({f"{i}to{j}": MixedOp(c) for i, j in EDGES})

    def forward(self, x, weights):
        nodes = [x]
        for j in range(1, 4):
            nodes.append(sum(self.edges[f"{i}to{j}"](nodes[i], weights[EDGES.index((i, j))]) for i in range(j)))
        return nodes[3]


class Reduction(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.b = ReLUConvBN(c_out, c_out, 3)
        self.pool = nn.AvgPool2d(2, stride=2)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        return self.b(self.a(x)) + self.shortcut(self.pool(x))


class PlainNB201Supernet(nn.Module):
    """Stem, 3 stages of `cells_per_stage` cells (C, 2C, 4C) with reductions, head; one (6, 5)
    architecture matrix shared by all cells, as the common DARTS-on-NB201 code does."""

    def __init__(self, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential()
        self.stem.conv = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.stem.bn = nn.BatchNorm2d(channels)
        self.layers = nn.ModuleList()
        c = channels
        for stage in range(3):
            if stage:
                self.layers.append(Reduction(c, 2 * c))
                c *= 2
            self.layers.extend(SearchCell(c) for _ in range(cells_per_stage))
        self.head_bn = nn.BatchNorm2d(c)
        self.classifier = nn.Linear(c, num_classes)
        self.alphas = nn.Parameter(torch.zeros(len(EDGES), 5))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if n != "alphas"]

    def forward(self, x):
        weights = F.softmax(self.alphas, dim=-1)
        h = self.stem(x)
        for layer in self.layers:
            h = layer(h, weights) if isinstance(layer, SearchCell) else layer(h)
        h = F.adaptive_avg_pool2d(F.relu(self.head_bn(h)), 1).flatten(1)
        return self.classifier(h)


def load_supernet_state(plain: PlainNB201Supernet, state: dict[str, torch.Tensor], cells_per_stage: int) -> None:
    """Copy a SupernetExecutor(nb201_space(...)) state dict (tied switches) into `plain`."""
    layer_of_cell = [i for i, layer in enumerate(plain.layers) if isinstance(layer, SearchCell)]
    layer_of_reduction = [i for i, layer in enumerate(plain.layers) if isinstance(layer, Reduction)]
    target = {}
    alphas = torch.zeros(len(EDGES), 5)
    for key, value in state.items():
        rest = key.split(".", 1)[1]
        if key.startswith("arch."):
            i, j = map(int, re.search(r"edge_(\d)to(\d)_0", key).groups())
            alphas[EDGES.index((i, j))] = value
            continue
        rules = [
            (r"stem_0\.Conv2d_0\.(\w+)$", lambda m: f"stem.conv.{m[1]}"),
            (r"stem_0\.BatchNorm_0\.(\w+)$", lambda m: f"stem.bn.{m[1]}"),
            (
                r"cell_(\d+)\.edge_(\d)to(\d)_0\.nor_conv_(\dx\d)_0\.(Conv2d|BatchNorm)_0\.(\w+)$",
                lambda m: (
                    f"layers.{layer_of_cell[int(m[1])]}.edges.{m[2]}to{m[3]}.ops.{2 if m[4] == '1x1' else 3}.{'conv' if m[5] == 'Conv2d' else 'bn'}.{m[6]}"
                ),
            ),
            (
                r"reduction_(\d)\.relu_conv_bn_(\d)\.(Conv2d|BatchNorm)_0\.(\w+)$",
                lambda m: (
                    f"layers.{layer_of_reduction[int(m[1])]}.{'ab'[int(m[2])]}.{'conv' if m[3] == 'Conv2d' else 'bn'}.{m[4]}"
                ),
            ),
            (r"reduction_(\d)\.Conv2d_0\.weight$", lambda m: f"layers.{layer_of_reduction[int(m[1])]}.shortcut.weight"),
            (r"head_0\.BatchNorm_0\.(\w+)$", lambda m: f"head_bn.{m[1]}"),
            (r"head_0\.Linear_0\.(\w+)$", lambda m: f"classifier.{m[1]}"),
        ]
        for pattern, name in rules:
            match = re.search(pattern, rest)
            if match:
                target[name(match)] = value
                break
        else:
            raise KeyError(f"no plain counterpart for {key}")
    target["alphas"] = alphas
    own = plain.state_dict()
    missing = [k for k in own if k not in target and not k.endswith("num_batches_tracked")]
    if missing:
        raise KeyError(f"plain weights not covered: {missing[:5]}")
    plain.load_state_dict({**{k: v for k, v in own.items() if k.endswith("num_batches_tracked")}, **target})


class FixedEdge(nn.Module):
    """One edge of a fixed architecture: the op of `MixedOp` at `index`, run alone (`weights` unused)."""

    def __init__(self, c: int, index: int) -> None:
        super().__init__()
        self.op = MixedOp(c).ops[index]

    def forward(self, x, weights=None):
        return self.op(x)


class PlainNB201Network(PlainNB201Supernet):
    """A single NB201 architecture in plain PyTorch: `genotype` gives each edge of `EDGES` its op
    index (in `MixedOp` order, 0 = none: the edge is left out), shared by every cell."""

    def __init__(
        self, genotype: dict[tuple[int, int], int], channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10
    ) -> None:
        super().__init__(channels, cells_per_stage, num_classes)
        del self.alphas
        self.genotype = dict(genotype)
        for layer in self.layers:
            if isinstance(layer, SearchCell):
                c = layer.edges["0to1"].ops[2].conv.in_channels
                layer.edges = nn.ModuleDict(
                    {f"{i}to{j}": FixedEdge(c, genotype[(i, j)]) for i, j in EDGES if genotype[(i, j)]}
                )

    def arch_parameters(self) -> list[nn.Parameter]:
        return []

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def forward(self, x):
        h = self.stem(x)
        for layer in self.layers:
            if isinstance(layer, SearchCell):
                nodes = [h]
                for j in range(1, 4):
                    terms = [layer.edges[f"{i}to{j}"](nodes[i]) for i in range(j) if f"{i}to{j}" in layer.edges]
                    nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(h))
                h = nodes[3]
            else:
                h = layer(h)
        h = F.adaptive_avg_pool2d(F.relu(self.head_bn(h)), 1).flatten(1)
        return self.classifier(h)


def nb201_genotype(architecture: dict[str, int]) -> dict[tuple[int, int], int]:
    """Edge -> op index from a tied nb201_space architecture (switch id -> option index)."""
    genotype = {}
    for sid, index in architecture.items():
        i, j = map(int, re.search(r"edge_(\d)to(\d)_0", sid).groups())
        genotype[(i, j)] = int(index)
    missing = [e for e in EDGES if e not in genotype]
    if missing:
        raise KeyError(f"the architecture gives no op for edges {missing}")
    return genotype
