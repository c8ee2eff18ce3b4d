"""Checking the data against the search space before a search starts, with errors naming the culprit."""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch.utils.data import Subset, TensorDataset

from supernet import GraphExecutor, lazy
from supernet.executor import check_input
from supernet.node import Node


def classes_of(space: Node, loss: Optional[Callable[..., Any]]) -> Optional[int]:
    """The number of classes the labels index (the last axis of the space's output) when the loss
    is cross-entropy (the default, `loss=None`), else None (the labels are not class indices)."""
    cross_entropy = loss is None or loss is torch.nn.functional.cross_entropy or isinstance(loss, torch.nn.CrossEntropyLoss)
    if not cross_entropy:
        return None
    shape = lazy(space.shape())
    return int(shape[-1]) if len(shape) >= 2 else None


def check_batch(executor: GraphExecutor, batch: Any, argument: str, num_classes: Optional[int]) -> None:
    """Raise if a batch of `argument` ("train" or "val") does not fit the space: not an (x, y)
    pair, x not of the input Tensor's shape, or (with `num_classes`) integer labels outside
    [0, num_classes)."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"{argument} batches must be (x, y) pairs, got {type(batch).__name__}" + (f" of {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
    x, y = batch
    inputs = executor.input_nodes
    if len(inputs) != 1:
        raise TypeError(f"fit_supernet feeds one input per batch, but the space has {len(inputs)}: {[t.id for t in inputs]}")
    try:
        check_input(inputs[0], x)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{argument} data does not fit the search space: {err}") from None
    if num_classes is not None:
        check_labels(executor, y, argument, num_classes)


def check_labels(executor: GraphExecutor, labels: Any, argument: str, num_classes: int, sample_ids: Optional[torch.Tensor] = None) -> None:
    """Raise, naming the first offending label (and its sample when `sample_ids` are given), if
    integer `labels` fall outside [0, num_classes). Float labels (probabilities) are not checked."""
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex() or labels.numel() == 0:
        return
    bad = ((labels < 0) | (labels >= num_classes)).reshape(len(labels), -1).any(dim=1) if labels.dim() else (labels < 0) | (labels >= num_classes)
    if not bool(bad.any()):
        return
    first = int(bad.nonzero()[0, 0]) if labels.dim() else 0
    row = labels[first] if labels.dim() else labels
    culprit = int(row.reshape(-1)[((row.reshape(-1) < 0) | (row.reshape(-1) >= num_classes)).nonzero()[0, 0]])
    sample = f" (sample {int(sample_ids[first])})" if sample_ids is not None else ""
    shape = tuple(lazy(executor.output_node.shape()))
    raise ValueError(
        f"{argument} label {culprit}{sample} is out of range: the space's output {shape} has {num_classes} classes "
        f"(its last axis), so labels must lie in [0, {num_classes - 1}]"
    )


def dataset_labels(dataset: Any) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """(labels, sample indices) of a TensorDataset of (x, y), or of a Subset of one; else None
    (the labels of other datasets are only known batch by batch)."""
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2:
        labels = dataset.tensors[1]
        return labels, torch.arange(len(labels))
    if isinstance(dataset, Subset):
        parent = dataset_labels(dataset.dataset)
        if parent is None:
            return None
        index = torch.as_tensor(list(dataset.indices), dtype=torch.long)
        return parent[0][index], parent[1][index]
    return None
