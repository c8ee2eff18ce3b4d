"""The plain-PyTorch DARTS search network, written as the DARTS reference `model_search.py` writes
it (an `nn.ModuleList` MixedOp, `sum(w * op(x) for w, op in zip(weights, self._ops))`), with exactly
the ops and shapes of `search.spaces.darts_space` (2-D, affine=False cell BatchNorms, pooling
followed by a BatchNorm), for side-by-side step timings.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

PRIMITIVES = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__(
            nn.ReLU(), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out, affine=affine)
        )


class DilConv(nn.Sequential):
    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool
    ) -> None:
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine), DilConv(c_in, c_out, kernel, 1, padding, 1, affine)
        )


class Zero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x.mul(0.0) if self.stride == 1 else x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    def __init__(self, c_in: int, c_out: int, affine: bool) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = F.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


OPS = {
    "none": lambda c, stride: Zero(stride),
    "max_pool_3x3": lambda c, stride: nn.Sequential(
        nn.MaxPool2d(3, stride, padding=1), nn.BatchNorm2d(c, affine=False)
    ),
    "avg_pool_3x3": lambda c, stride: nn.Sequential(
        nn.AvgPool2d(3, stride, padding=1, count_include_pad=False), nn.BatchNorm2d(c, affine=False)
    ),
    "skip_connect": lambda c, stride: nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine=False),
    "sep_conv_3x3": lambda c, stride: SepConv(c, c, 3, stride, 1, affine=False),
    "sep_conv_5x5": lambda c, stride: SepConv(c, c, 5, stride, 2, affine=False),
    "dil_conv_3x3": lambda c, stride: DilConv(c, c, 3, stride, 2, 2, affine=False),
    "dil_conv_5x5": lambda c, stride: DilConv(c, c, 5, stride, 4, 2, affine=False),
}


class MixedOp(nn.Module):
    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        self._ops = nn.ModuleList(OPS[p](c, stride) for p in PRIMITIVES)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self._ops))


class Cell(nn.Module):
    def __init__(
        self, steps: int, multiplier: int, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool
    ) -> None:
        super().__init__()
        self.reduction, self._steps, self._multiplier = reduction, steps, multiplier
        self.preprocess0 = (
            FactorizedReduce(c_pp, c, affine=False) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        )
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self._ops = nn.ModuleList(
            MixedOp(c, 2 if reduction and j < 2 else 1) for i in range(steps) for j in range(2 + i)
        )

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self._steps):
            s = sum(self._ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self._multiplier :], dim=1)


class PlainDartsNetwork(nn.Module):
    def __init__(
        self,
        channels: int = 16,
        num_classes: int = 10,
        layers: int = 8,
        steps: int = 4,
        multiplier: int = 4,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(Cell(steps, multiplier, c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.classifier = nn.Linear(c_p, num_classes)
        k = sum(2 + i for i in range(steps))
        self.alphas_normal = nn.Parameter(torch.zeros(k, len(PRIMITIVES)))
        self.alphas_reduce = nn.Parameter(torch.zeros(k, len(PRIMITIVES)))

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alphas_normal, self.alphas_reduce]

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            weights = F.softmax(self.alphas_reduce if cell.reduction else self.alphas_normal, dim=-1)
            s0, s1 = s1, cell(s0, s1, weights)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


class FixedOp(nn.Module):
    """One edge of a fixed architecture: the DARTS primitive at `index`, run alone (`weights` unused)."""

    def __init__(self, c: int, stride: int, index: int) -> None:
        super().__init__()
        self.op = OPS[PRIMITIVES[index]](c, stride)

    def forward(self, x, weights=None):
        return self.op(x)


class PlainDartsFixedNetwork(PlainDartsNetwork):
    """A single DARTS architecture in plain PyTorch, every edge kept with one op: `genotype` maps
    ("normal" | "reduction", edge number in `Cell._ops` order) to a `PRIMITIVES` index."""

    def __init__(
        self, genotype: dict[tuple[str, int], int], channels: int = 16, num_classes: int = 10, layers: int = 8, **kwargs
    ) -> None:
        super().__init__(channels, num_classes, layers, **kwargs)
        del self.alphas_normal, self.alphas_reduce
        for cell in self.cells:
            kind = "reduction" if cell.reduction else "normal"
            c = cell.preprocess1[1].out_channels
            strides = [2 if cell.reduction and j < 2 else 1 for i in range(cell._steps) for j in range(2 + i)]
            cell._ops = nn.ModuleList(FixedOp(c, stride, genotype[(kind, e)]) for e, stride in enumerate(strides))

    def arch_parameters(self) -> list[nn.Parameter]:
        return []

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, [None] * len(cell._ops))
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


def darts_genotype(architecture: dict[str, int], steps: int = 4) -> dict[tuple[str, int], int]:
    """(cell kind, edge number) -> op index from a darts_space architecture (switch id -> option index)."""
    number = {(j, i + 2): n for n, (i, j) in enumerate((i, j) for i in range(steps) for j in range(2 + i))}
    genotype = {}
    for sid, index in architecture.items():
        match = re.search(r"(normal|reduction)_cell_\d+\.edge_(\d+)to(\d+)_\d+\.", sid)
        genotype[(match[1], number[(int(match[2]), int(match[3]))])] = int(index)
    return genotype
