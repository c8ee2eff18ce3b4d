"""Turning what users pass as data ((x, y) tensors, a Dataset, a DataLoader) into seeded loaders.

The search loaders (`search_loader`) draw each pass's order from `ShardedSampler`: a permutation
that is a pure function of (seed, pass), split between the processes of a distributed search the
way `DistributedSampler` splits it. The global batch `t` of a pass is therefore the same set of
samples whatever the number of processes, and a resumed search can regenerate, from its position
alone, exactly the batches an uninterrupted one would have drawn (`BatchStream`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Union

import numpy as np
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
)

from supernet.seeds import as_seed

from .devices import refuse_meta

Data = Union[tuple, list, Dataset, DataLoader]


def as_dataset(data: Data, argument: str = "data") -> Dataset:
    """A Dataset from an (x, y) pair of tensors or NumPy arrays (converted, dtype kept) or a Dataset."""
    if isinstance(data, Dataset):
        return data
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(t, (torch.Tensor, np.ndarray)) for t in data)
    ):
        x, y = (torch.as_tensor(t) for t in data)
        refuse_meta(x, f"{argument} x")
        refuse_meta(y, f"{argument} y")
        if len(x) != len(y):
            raise ValueError(f"{argument}: x has {len(x)} samples but y has {len(y)}")
        return TensorDataset(x, y)
    inside = f" of ({', '.join(type(t).__name__ for t in data)})" if isinstance(data, (tuple, list)) else ""
    raise TypeError(
        f"{argument} must be an (x, y) pair of tensors or NumPy arrays, a Dataset or a DataLoader, got "
        f"{type(data).__name__}{inside}" + (" (convert with torch.as_tensor)" if inside else "")
    )


def as_loader(data: Data, batch_size: int, shuffle: bool, seed: int, argument: str = "data") -> DataLoader:
    """A DataLoader over `data` (returned as is if it already is one); shuffling is seeded."""
    if isinstance(data, DataLoader):
        return data
    dataset = as_dataset(data, argument)
    if shuffle:
        _check_one_batch(dataset, batch_size, argument)
    generator = torch.Generator().manual_seed(as_seed(seed))
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=shuffle)


class ShardedSampler(DistributedSampler):
    """`DistributedSampler` (shuffled, tail dropped) whose order is a pure function of (seed, pass).

    `set_position(pass_index, skip)` selects the pass (`set_epoch`) and starts `skip` samples into
    this process's shard, so a stream can be resumed in the middle of a pass. With one replica it
    is a seeded shuffle; with `num_replicas` processes, rank r takes every r-th sample of the same
    permutation, so consecutive per-rank batches together form the single-process batches.
    """

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.skip = 0

    def set_position(self, pass_index: int, skip: int = 0) -> None:
        """Select the pass whose permutation to draw and how many of this shard's samples to skip."""
        self.set_epoch(pass_index)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


def search_loader(
    data: Data,
    batch_size: int,
    seed: int,
    argument: str = "data",
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """A shuffling DataLoader over `data` whose batches are a pure function of (seed, pass).

    `batch_size` is the global batch: each of the `world_size` processes loads `batch_size //
    world_size` samples of it. Incomplete batches are dropped. A DataLoader passed as `data` is
    rejected in a distributed search (its sampler cannot be sharded) and returned as is otherwise.
    `pin_memory` (for a CUDA device): batches in page-locked memory, copied with `non_blocking`.
    """
    if isinstance(data, DataLoader):
        if world_size > 1:
            raise TypeError(
                f"{argument}: a distributed search shards the data itself; pass (x, y) tensors or a Dataset "
                f"(e.g. {argument}_loader.dataset), not a DataLoader"
            )
        return data
    if batch_size % world_size:
        raise ValueError(
            f"batch_size {batch_size} is the global batch and must be a multiple of the {world_size} processes"
        )
    dataset = as_dataset(data, argument)
    _check_one_batch(dataset, batch_size, argument)
    sampler = ShardedSampler(dataset, seed, num_replicas=world_size, rank=rank)
    # a generator of its own: each iteration draws a worker seed from it, not from torch's global one
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size // world_size,
        sampler=sampler,
        drop_last=True,
        generator=generator,
        pin_memory=pin_memory,
    )


def set_pass(loader: DataLoader, pass_index: int) -> None:
    """Make `loader` draw the order of pass `pass_index` (no-op for loaders fit_supernet did not build)."""
    if isinstance(loader.sampler, ShardedSampler):
        loader.sampler.set_position(pass_index, 0)


def is_resumable(loader: DataLoader) -> bool:
    """Whether the loader's batches are a pure function of (seed, pass): built by `search_loader`."""
    return isinstance(loader.sampler, ShardedSampler)


class BatchStream:
    """Endless batches of a loader, pass after pass; `position` counts the batches drawn so far.

    For a `search_loader`, pass `p` uses permutation `p`, and a stream started at `position=k`
    yields exactly what a stream started at 0 yields after its first k batches (it skips inside the
    sampler, without loading the skipped samples). Other loaders are cycled from their start.
    """

    def __init__(self, loader: DataLoader, position: int = 0, argument: str = "val") -> None:
        self.loader = loader
        self.argument = argument
        self.position = position
        self._batches: Optional[Iterator[Any]] = None

    def __iter__(self) -> "BatchStream":
        return self

    def __next__(self) -> Any:
        if self._batches is None:
            self._batches = self._generate()
        batch = next(self._batches)
        self.position += 1
        return batch

    def _generate(self) -> Iterator[Any]:
        sampler = self.loader.sampler
        if isinstance(sampler, ShardedSampler):
            per_pass = sampler.num_samples // self.loader.batch_size
            if per_pass == 0:
                raise ValueError(f"the {self.argument} loader yields no batch")
            pass_index, offset = divmod(self.position, per_pass)
            while True:
                sampler.set_position(pass_index, offset * self.loader.batch_size)
                yield from self.loader
                pass_index, offset = pass_index + 1, 0
        while True:
            yielded = False
            for batch in self.loader:
                yielded = True
                yield batch
            if not yielded:
                raise ValueError(f"the {self.argument} loader yields no batch")


def split_in_halves(data: Data, seed: int, batch_size: Optional[int] = None) -> tuple[Data, Data]:
    """Two disjoint random halves of `data` (DARTS searches on half the training set, validates
    the architecture on the other half). A DataLoader's dataset is split, and each half is loaded
    as that loader loads (its batch size, shuffling, collate function, workers; the shuffled order
    seeded by `seed`); loaders whose sampling cannot be carried over to a half are refused. With
    `batch_size` (the batches of tensors and Datasets), halves smaller than one batch are refused."""
    loader = data if isinstance(data, DataLoader) else None
    if loader is not None:
        _check_splittable(loader)
        data = loader.dataset
    dataset = as_dataset(data, "train")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    half = len(order) // 2
    first, second = Subset(dataset, order[:half]), Subset(dataset, order[half:])
    batch = loader.batch_size if loader is not None else batch_size
    if batch is not None and len(first) < batch and (loader is None or loader.drop_last):
        raise ValueError(
            f"val=None splits train's {len(dataset)} samples into halves of {len(first)} (weights) and {len(second)} "
            f"(architecture), fewer than one batch of {batch}; lower batch_size, pass more data, or pass val= explicitly"
        )
    if loader is None:
        return first, second
    return _loaded_like(loader, first, seed), _loaded_like(loader, second, seed + 1)


def _check_splittable(loader: DataLoader) -> None:
    sampler = loader.sampler
    custom = (
        loader.batch_size is None
        or not isinstance(sampler, (SequentialSampler, RandomSampler))
        or (isinstance(sampler, RandomSampler) and (sampler.replacement or sampler.num_samples != len(loader.dataset)))
    )
    if isinstance(loader.dataset, IterableDataset) or custom:
        what = (
            "an IterableDataset"
            if isinstance(loader.dataset, IterableDataset)
            else (
                f"a {type(loader.batch_sampler).__name__} batch sampler"
                if loader.batch_size is None
                else f"a {type(sampler).__name__}"
            )
        )
        raise TypeError(
            f"train: val=None splits train in halves, but this DataLoader draws from {what}, which cannot be "
            "carried over to a half; pass val= explicitly (e.g. a loader over held-out data)"
        )


def _loaded_like(loader: DataLoader, dataset: Dataset, seed: int) -> DataLoader:
    """A DataLoader over `dataset` batching and shuffling as `loader` does, shuffled by `seed`."""
    workers = (
        {"prefetch_factor": loader.prefetch_factor, "persistent_workers": loader.persistent_workers}
        if loader.num_workers
        else {}
    )
    return DataLoader(
        dataset,
        batch_size=loader.batch_size,
        shuffle=isinstance(loader.sampler, RandomSampler),
        drop_last=loader.drop_last,
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        generator=torch.Generator().manual_seed(seed),
        **workers,
    )


def batch_size_of(loader: DataLoader, world_size: int = 1) -> Optional[int]:
    """The (global) batch size a search loader yields: per-process batch times the processes."""
    if loader.batch_size is None:
        return None
    return loader.batch_size * world_size if isinstance(loader.sampler, ShardedSampler) else loader.batch_size


def move(batch: Any, device: torch.device) -> Any:
    """The batch on `device` (tensors inside tuples/lists are moved too)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(move(b, device) for b in batch)
    return batch


def _check_one_batch(dataset: Dataset, batch_size: int, argument: str) -> None:
    if len(dataset) < batch_size:
        raise ValueError(
            f"{argument} has {len(dataset)} samples, fewer than one batch of {batch_size}; lower batch_size or pass more data"
        )


VAL_SEED_OFFSET = 1_000_003  # the validation stream's permutations never coincide with the training ones


@dataclass(frozen=True)
class SearchLoaders:
    """The loaders of a search: `train` (weight steps), `val` (architecture steps) and the name
    errors give the validation data (`val_argument`: the held-out half when val=None)."""

    train: DataLoader
    val: DataLoader
    val_argument: str = "val"


def search_loaders(
    train: Data,
    val: Optional[Data],
    batch_size: int,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> SearchLoaders:
    """The loaders of `fit_supernet(train, val, batch_size=..., seed=...)` for process `rank` of
    `world_size` (val=None: train split in halves)."""
    val_argument, seed = "val", as_seed(seed)
    if val is None:
        train, val = split_in_halves(train, seed, batch_size)
        val_argument = "val (the half of train that val=None holds out)"
    train_loader = search_loader(train, batch_size, seed, "train", rank, world_size, pin_memory)
    val_loader = search_loader(val, batch_size, seed + VAL_SEED_OFFSET, val_argument, rank, world_size, pin_memory)
    if len(train_loader) == 0:
        raise ValueError("train yields no batch")
    return SearchLoaders(train_loader, val_loader, val_argument)


def dataset_size(loader: DataLoader) -> Optional[int]:
    """The number of samples of the loader's dataset (None when it has no length)."""
    try:
        return len(loader.dataset)
    except TypeError:
        return None
