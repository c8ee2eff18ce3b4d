"""Re-estimating running statistics (BatchNorm's mean and variance) for one sub-architecture.

Weights inherited from a supernet come with statistics averaged over every path the supernet
trained, not those of the path that runs now. `recalibrate_statistics` re-estimates them, as SPOS
does before evaluating a candidate: the module runs in training mode without gradients on the
given batches, and every op declaring `running_statistics` (see `supernet.Op`) averages its
statistics over them exactly (momentum 1/k on the k-th batch: the cumulative mean, so nothing of
the old statistics remains). Ops that do not run on the current path keep theirs.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Optional, Union

import torch
from torch.utils.data import DataLoader

from supernet import GraphExecutor, Op, topological_order

from .loaders import Data, as_dataset, as_loader, move


def recalibration_batches(data: Data, batch_size: int, batches: Optional[int], seed: int) -> list[torch.Tensor]:
    """The inputs of the first `batches` (None: all) batches of a seeded shuffle of `data`: the
    same batches for every architecture evaluated with the same seed."""
    if batches is not None and (isinstance(batches, bool) or not isinstance(batches, int) or batches < 1):
        raise ValueError(f"batches must be a positive int or None, got {batches!r}")
    argument = "train (the BatchNorm recalibration data)"
    if not isinstance(data, DataLoader):  # fewer samples than a batch: one batch of them all
        data = as_dataset(data, argument)
        batch_size = max(1, min(batch_size, len(data)))
    loader = as_loader(data, batch_size, shuffle=True, seed=seed, argument=argument)
    return [batch[0] if isinstance(batch, (tuple, list)) else batch for batch in itertools.islice(loader, batches)]


def statistics_ops(module: GraphExecutor) -> list[Op]:
    """The ops of an executor's graph that keep running statistics."""
    return [n for n in topological_order(module.output_node) if isinstance(n, Op) and n.running_statistics]


@torch.no_grad()
def recalibrate_statistics(
    module: GraphExecutor, batches: Iterable[torch.Tensor], device: Union[str, torch.device, None] = None
) -> int:
    """Re-estimate the running statistics of `module` on `batches` (inputs, in order); returns the
    number of batches used. The module is left in eval mode."""
    if not isinstance(module, GraphExecutor):  # an exported module's code holds each op's momentum as a literal
        raise TypeError(
            f"recalibrate_statistics re-estimates the statistics of an executor (BasicExecutor, SupernetExecutor), "
            f"got {type(module).__name__}; recalibrate BasicExecutor(graph) and load its state_dict() into the module"
        )
    ops = statistics_ops(module)
    saved = [op.momentum for op in ops]
    count = 0
    module.train()
    try:
        for count, x in enumerate(batches, start=1):
            for op in ops:
                op.momentum = 1.0 / count
            module(move(x, torch.device(device)) if device is not None else x)
    finally:
        for op, momentum in zip(ops, saved):
            op.momentum = momentum
        module.eval()
    if count == 0:
        raise ValueError("recalibrate_statistics got no batch to estimate the statistics on")
    return count
