"""Checking the data against the search space before a search starts, with errors naming the culprit.

`check_first_batches` looks at the first train and val batch: (x, y) pairs, inputs of the input
Tensor's shape and dtype, finite values, and what the labels are (`Targets`, decided from the
space's output and the labels, whatever the loss): class indices (checked to lie within the
classes), class probabilities (metrics see their argmax), or something else (no default metric).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from supernet import GraphExecutor, lazy
from supernet.executor import check_input

from .devices import refuse_meta
from .loaders import set_pass

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

INDICES = "class indices"
PROBABILITIES = "class probabilities"


@dataclass(frozen=True)
class Targets:
    """What the labels are: `kind` is INDICES, PROBABILITIES (both over `num_classes` classes on
    axis 1 of the output, as cross-entropy reads them) or None (not classification labels)."""

    kind: Optional[str] = None
    num_classes: Optional[int] = None

    @property
    def classification(self) -> bool:
        return self.kind is not None


def is_cross_entropy(loss: Optional[Loss]) -> bool:
    """Whether `loss` is torch's cross-entropy (the default `loss=None`, the function, the module,
    or a functools.partial of the function)."""
    if isinstance(loss, functools.partial):
        loss = loss.func
    return loss is None or loss is torch.nn.functional.cross_entropy or isinstance(loss, torch.nn.CrossEntropyLoss)


def check_first_batches(
    executor: GraphExecutor,
    train_loader: DataLoader,
    val_loader: DataLoader,
    loss: Optional[Loss],
    val_argument: str = "val",
) -> Targets:
    """Fail before training when the first train or val batch does not fit the space; return what
    the labels are. Labels of (x, y) tensors are range-checked in full, not only the first batch's."""
    decided = []
    with torch.random.fork_rng(devices=[]):  # a user's DataLoader may draw from the global generator
        for loader, argument in ((train_loader, "train"), (val_loader, val_argument)):
            set_pass(loader, 0)
            batch = next(iter(loader), None)
            if batch is None:
                raise ValueError(f"{argument} yields no batch")
            check_batch(executor, batch, argument)
            targets = decide_targets(executor, batch[1], loss, argument)
            if targets.kind == INDICES:
                check_labels(executor, batch[1], argument, targets.num_classes)
                labels = dataset_labels(loader.dataset)
                if labels is not None:
                    check_labels(executor, labels[0], argument, targets.num_classes, sample_ids=labels[1])
            decided.append(targets)
    train, val = decided
    if train != val:
        raise ValueError(
            f"{val_argument} labels are {val.kind or 'not classification labels'} but train labels are "
            f"{train.kind or 'not classification labels'}; give both the same kind of labels"
        )
    return train


def check_batch(executor: GraphExecutor, batch: Any, argument: str) -> None:
    """Raise if a batch of `argument` ("train" or "val") does not fit the space: not an (x, y)
    pair, x not a tensor of the input Tensor's shape and dtype, or values that are NaN or inf."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(
            f"{argument} batches must be (x, y) pairs, got {type(batch).__name__}"
            + (f" of {len(batch)}" if isinstance(batch, (tuple, list)) else "")
        )
    x, y = batch
    refuse_meta(x, f"{argument} inputs")
    refuse_meta(y, f"{argument} labels")
    inputs = executor.input_nodes
    if len(inputs) != 1:
        raise TypeError(
            f"fit_supernet feeds one input per batch, but the space has {len(inputs)}: {[t.id for t in inputs]}"
        )
    try:
        check_input(inputs[0], x)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{argument} data does not fit the search space: {err}") from None
    expected = input_dtype(executor)
    if x.dtype != expected:
        hint = " (integer images: x.float() / 255, or scale them as you trained)" if not x.is_floating_point() else ""
        raise TypeError(
            f"{argument} inputs are {_name(x.dtype)}, but input {inputs[0].id} takes {_name(expected)} "
            f"(the dtype of the space's weights): convert them, e.g. x.to(torch.{_name(expected)}){hint}"
        )
    for what, values in (("inputs", x), ("labels", y)):
        if isinstance(values, torch.Tensor) and values.is_floating_point() and not bool(torch.isfinite(values).all()):
            raise ValueError(
                f"{argument} {what} hold NaN or inf values (in the first batch): the search cannot learn from "
                "them; clean or impute the data first"
            )


def input_dtype(executor: GraphExecutor) -> torch.dtype:
    """The dtype the single input takes: the one its Tensor declares, else that of the weights."""
    declared = executor.input_nodes[0].dtype
    if declared is not None:
        return declared
    return next((p.dtype for p in executor.parameters() if p.is_floating_point()), torch.get_default_dtype())


def decide_targets(executor: GraphExecutor, labels: Any, loss: Optional[Loss], argument: str) -> Targets:
    """What a batch's `labels` are for the space's output (classes on axis 1). Integer labels of
    the output's shape without that axis are class indices; float labels of the output's shape are
    class probabilities when the loss is cross-entropy or they are distributions over axis 1.
    With cross-entropy, anything else is refused, naming the dtype and shape it takes."""
    output = tuple(lazy(executor.output_node.shape()))
    if not isinstance(labels, torch.Tensor) or len(output) < 2:
        if is_cross_entropy(loss) and len(output) >= 2:
            raise TypeError(f"{argument} labels must be a torch.Tensor for cross-entropy, got {type(labels).__name__}")
        return Targets()
    per_sample, classes = tuple(labels.shape[1:]), int(output[1])
    integer = not (labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool)
    cross_entropy = is_cross_entropy(loss)
    if integer and per_sample == output[2:]:
        if cross_entropy and labels.dtype not in (torch.int64, torch.uint8):
            raise TypeError(
                f"{argument} labels are {_name(labels.dtype)}; cross-entropy takes int64 class indices: "
                "convert them with y.long()"
            )
        return Targets(INDICES, classes)
    if labels.is_floating_point() and per_sample == output[1:] and (cross_entropy or _distributions(labels)):
        return Targets(PROBABILITIES, classes)
    if cross_entropy:
        indices, probabilities = ("N", *output[2:]), ("N", *output[1:])
        raise TypeError(
            f"{argument} labels are {_name(labels.dtype)} of shape {tuple(labels.shape)}, but cross-entropy on the space's "
            f"output {output} takes int64 class indices of shape {_shown(indices)} (convert float class numbers with "
            f"y.long()) or float class probabilities of shape {_shown(probabilities)}"
        )
    return Targets()


def _distributions(labels: torch.Tensor) -> bool:
    """Whether every sample's labels are a probability distribution over axis 1."""
    if labels.numel() == 0 or bool((labels < 0).any()):
        return False
    return bool(torch.allclose(labels.sum(dim=1), torch.ones((), dtype=labels.dtype), atol=1e-3))


def check_labels(
    executor: GraphExecutor, labels: Any, argument: str, num_classes: int, sample_ids: Optional[torch.Tensor] = None
) -> None:
    """Raise, naming the first offending label (and its sample when `sample_ids` are given), if
    integer `labels` fall outside [0, num_classes). Float labels (probabilities) are not checked."""
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.is_complex() or labels.numel() == 0:
        return
    bad = (
        ((labels < 0) | (labels >= num_classes)).reshape(len(labels), -1).any(dim=1)
        if labels.dim()
        else (labels < 0) | (labels >= num_classes)
    )
    if not bool(bad.any()):
        return
    first = int(bad.nonzero()[0, 0]) if labels.dim() else 0
    row = labels[first] if labels.dim() else labels
    culprit = int(row.reshape(-1)[((row.reshape(-1) < 0) | (row.reshape(-1) >= num_classes)).nonzero()[0, 0]])
    sample = f" (sample {int(sample_ids[first])})" if sample_ids is not None else ""
    shape = tuple(lazy(executor.output_node.shape()))
    raise ValueError(
        f"{argument} label {culprit}{sample} is out of range: the space's output {shape} has {num_classes} classes "
        f"(its axis 1), so labels must lie in [0, {num_classes - 1}]"
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


class ScalarLoss:
    """`loss`, refusing values that are not a single number: a search backpropagates one loss per
    batch, so a per-sample vector (e.g. `reduction="none"`) must be reduced by the loss itself."""

    def __init__(self, loss: Loss) -> None:
        self.loss = loss
        self.__wrapped__ = loss

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = self.loss(output, target)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            what = (
                f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
            )
            raise ValueError(
                f"the loss must return a scalar tensor (one number per batch), got {what}; reduce it, "
                "e.g. reduction='mean' or loss(...).mean()"
            )
        return value


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _shown(shape: tuple) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
