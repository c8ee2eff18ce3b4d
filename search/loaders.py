"""Turning what users pass as data ((x, y) tensors, a Dataset, a DataLoader) into seeded loaders."""
from __future__ import annotations

from typing import Any, Optional, Union

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

Data = Union[tuple, list, Dataset, DataLoader]


def as_dataset(data: Data, argument: str = "data") -> Dataset:
    """A Dataset from an (x, y) pair of tensors or a Dataset."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x, y = data
        if len(x) != len(y):
            raise ValueError(f"{argument}: x has {len(x)} samples but y has {len(y)}")
        return TensorDataset(x, y)
    raise TypeError(f"{argument} must be an (x, y) pair of tensors, a Dataset or a DataLoader, got {type(data).__name__}")


def as_loader(data: Data, batch_size: int, shuffle: bool, seed: int, argument: str = "data") -> DataLoader:
    """A DataLoader over `data` (returned as is if it already is one); shuffling is seeded."""
    if isinstance(data, DataLoader):
        return data
    dataset = as_dataset(data, argument)
    if shuffle and len(dataset) < batch_size:
        raise ValueError(f"{argument} has {len(dataset)} samples, fewer than one batch of {batch_size}; lower batch_size or pass more data")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=shuffle)


def split_in_halves(data: Data, seed: int) -> tuple[Dataset, Dataset]:
    """Two disjoint random halves of `data` (DARTS searches on half the training set, validates
    the architecture on the other half)."""
    if isinstance(data, DataLoader):
        data = data.dataset
    dataset = as_dataset(data, "train")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    half = len(order) // 2
    return Subset(dataset, order[:half]), Subset(dataset, order[half:])


def move(batch: Any, device: torch.device) -> Any:
    """The batch on `device` (tensors inside tuples/lists are moved too)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(move(b, device) for b in batch)
    return batch


def infinite(loader: DataLoader):
    """Cycle a loader forever (the validation stream of the architecture steps)."""
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError("the validation loader yields no batch")
