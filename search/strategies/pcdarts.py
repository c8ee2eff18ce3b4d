"""PC-DARTS (Xu et al., 2020): partial channel connections and edge normalisation.

Partial channels, in our shared-weight executor: the options of a ChoiceOp are applied to the first
C/K channels of their option input x (the one node they all read, found by the executor), and the
other channels bypass them:

    out = channel_shuffle(concat(sum_i softmax(alpha)_i * option_i(x[:, :C/K]), bypass), K)

with bypass = x[:, C/K:], max-pooled by the edge's stride on reduction edges (as in the paper).
The options are built (and exported) with C channels; during the search the executor narrows
their weights to the leading entries of every axis scaled by 1/K (C -> C/K for conv in/out
channels, BatchNorm statistics and affine weights; C/2 -> C/2K inside FactorizedReduce) and runs
depthwise convolutions with one group per remaining channel, so each search step really computes
on C/K channels and trains the leading slice of the shared weights. The discretized architecture
is the full-width network, as in the paper. A ChoiceOp keeps full channels (edge normalisation
still applies) when this is not possible: no single option input, an output with other channels
than the input or spatial sizes that are not the input's divided by one stride, C not a multiple
of K, or a grouped (not depthwise) convolution inside an option.

Edge normalisation: the ChoiceOps summed by the same `Add` (the incoming edges of a cell node) are
weighted by softmax over their edge logits `beta`, one per switch id (shared by tied switches,
like alpha), registered as extra architecture parameters `arch.edge_beta.<switch id>` and learned
with the alphas. Selection is the per-switch argmax of alpha (edge weights matter only for
choosing among edges, which single-choice spaces such as NB201 do not do).
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from supernet import ChoiceOp, Mixture, SoftmaxMixture, SupernetExecutor, lazy

from .base import Strategy
from .cell_nodes import cell_nodes


_MAX_POOL = {1: torch.nn.functional.max_pool1d, 2: torch.nn.functional.max_pool2d, 3: torch.nn.functional.max_pool3d}


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of `groups` equal channel groups (ShuffleNet)."""
    n, c = x.shape[:2]
    return x.reshape(n, groups, c // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


class PartialChannelMixture(SoftmaxMixture):
    """Softmax mixture over 1/K of the option input's channels, plus edge normalisation."""

    uses_option_input = True

    def __init__(self, k: int = 4, edge_normalization: bool = True) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k, self.edge_normalization = k, edge_normalization
        self.partial: dict[ChoiceOp, int] = {}  # ChoiceOps on partial channels -> their spatial stride
        self.edges: dict[ChoiceOp, tuple[list[torch.nn.Parameter], int]] = {}
        self._supernet: Optional[SupernetExecutor] = None

    def bind(self, supernet: SupernetExecutor) -> None:
        if self._supernet is not None and self._supernet is not supernet:
            raise RuntimeError("a PartialChannelMixture drives one SupernetExecutor; create one per supernet")
        self._supernet = supernet
        self.partial = {}
        for choice in supernet.choices:
            stride = _partial_stride(supernet, choice, self.k) if self.k > 1 else None
            if stride is not None:
                self.partial[choice] = stride
        if not self.edge_normalization:
            return
        betas: dict[str, torch.nn.Parameter] = {}
        for edges in cell_nodes(supernet):
            if len(edges) < 2:
                continue
            for edge in edges:
                sid = edge.switch.id
                if sid not in betas:
                    betas[sid] = supernet.add_arch_parameter(f"edge_beta.{sid}", torch.zeros(()))
            params = [betas[e.switch.id] for e in edges]
            for position, edge in enumerate(edges):
                self.edges[edge] = (params, position)

    def option_input(self, choice: ChoiceOp, x: torch.Tensor) -> torch.Tensor:
        return x[:, : x.shape[1] // self.k] if choice in self.partial else x

    def choice_output(self, choice: ChoiceOp, mixed: torch.Tensor, x: Optional[torch.Tensor]) -> torch.Tensor:
        out = mixed
        stride = self.partial.get(choice)
        if stride is not None and x is not None:
            bypass = x[:, x.shape[1] // self.k :]
            if stride > 1:  # a reduction edge: the bypassed channels are max-pooled, as in the paper
                bypass = _MAX_POOL[x.dim() - 2](bypass, stride, stride)
            out = channel_shuffle(torch.cat([mixed, bypass], dim=1), self.k)
        edge = self.edges.get(choice)
        if edge is not None:
            params, position = edge
            out = torch.softmax(torch.stack(params), dim=0)[position] * out
        return out


def _partial_stride(supernet: SupernetExecutor, choice: ChoiceOp, k: int) -> Optional[int]:
    """The spatial stride of a ChoiceOp that can run on partial channels (1: same shape), else None."""
    source, options = supernet.option_subgraphs(choice)
    if source is None or any(nodes is None for nodes in options):
        return None
    shape, out = tuple(lazy(source.shape())), tuple(lazy(choice.shape()))
    if len(shape) < 2 or len(out) != len(shape) or out[1] != shape[1] or shape[1] % k or shape[1] < k:
        return None
    strides = {i // o if o and i % o == 0 else 0 for i, o in zip(shape[2:], out[2:])} or {1}
    if len(strides) != 1 or 0 in strides or (strides != {1} and len(shape) > 5):
        return None
    for nodes in options:
        for node in nodes:
            groups = lazy(getattr(node, "groups", 1))
            if groups != 1 and groups != lazy(node.operands[0].shape()[1]):
                return None  # grouped but not depthwise: left at full width
    return strides.pop()


class PCDARTS(Strategy):
    """Partial channels (1/K through the options, channel shuffle) + edge normalisation."""

    name = "pcdarts"

    def __init__(self, k: int = 4, edge_normalization: bool = True, warmup_epochs: int = 0) -> None:
        super().__init__(warmup_epochs=warmup_epochs)
        self.k, self.edge_normalization = k, edge_normalization

    def mixture(self) -> Mixture:
        return PartialChannelMixture(self.k, self.edge_normalization)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "k": self.k, "edge_normalization": self.edge_normalization}
