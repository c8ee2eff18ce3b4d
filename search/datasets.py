"""Offline dataset loaders returning plain torch tensors: ((x_train, y_train), (x_test, y_test)).

Nothing here downloads: MNIST-1D is generated locally, the 8x8 digits ship with scikit-learn and
Fashion-MNIST is read from an installed copy (Debian package `dataset-fashion-mnist`).
"""

from __future__ import annotations

import functools
import gzip
import os
import random
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

Split = tuple[torch.Tensor, torch.Tensor]
Splits = tuple[Split, Split]
PathLike = Union[str, Path]

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
_KEYS = ("x", "y", "x_test", "y_test")


def load_mnist1d(seed: int = 42, cache_dir: Optional[PathLike] = None) -> Splits:
    """MNIST-1D (Greydanus 2020) generated locally: x (4000, 1, 40) / (1000, 1, 40) float32, y int64.

    The default seed reproduces the published frozen dataset. Generation (~2 s) is cached in-process
    and, when `cache_dir` is given, in `<cache_dir>/mnist1d_seed<seed>.npz`.
    """
    if cache_dir is None:
        arrays = _generated_mnist1d(seed)
    else:
        arrays = _disk_cached_mnist1d(seed, str(Path(cache_dir).resolve()))
    x, y, x_test, y_test = (torch.from_numpy(a.copy()) for a in arrays)  # copies: callers may edit in place
    return (x, y), (x_test, y_test)


@functools.lru_cache(maxsize=4)
def _disk_cached_mnist1d(seed: int, cache_dir: str) -> tuple[np.ndarray, ...]:
    cache_file = Path(cache_dir) / f"mnist1d_seed{seed}.npz"
    if cache_file.exists():
        with np.load(cache_file) as stored:
            return tuple(stored[k] for k in _KEYS)
    arrays = _generated_mnist1d(seed)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f"{cache_file.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **dict(zip(_KEYS, arrays)))
    tmp.replace(cache_file)  # atomic, so a concurrent reader never sees half a file
    return arrays


@functools.lru_cache(maxsize=4)
def _generated_mnist1d(seed: int) -> tuple[np.ndarray, ...]:
    data = _generate_mnist1d(seed)
    return (
        data["x"].astype(np.float32)[:, None, :],
        data["y"].astype(np.int64),
        data["x_test"].astype(np.float32)[:, None, :],
        data["y_test"].astype(np.int64),
    )


def _generate_mnist1d(seed: int) -> dict:
    from mnist1d.data import get_dataset_args, make_dataset  # never get_dataset(): it downloads

    args = get_dataset_args()
    args.seed = seed
    # make_dataset reseeds the global numpy and python generators; keep the caller's streams intact
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Splits:
    """scikit-learn's bundled 8x8 digits: x (N, 1, 8, 8) float32 in [0, 1], y int64 in 0..9.

    The split is stratified: each class contributes `test_fraction` of its samples (rounded) to the
    test set, chosen with `seed`; both sets are then shuffled with the same seed.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as err:
        raise ImportError("load_digits needs scikit-learn: pip install scikit-learn") from err
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    bunch = sklearn_digits()
    x = (bunch.data.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(members) * test_fraction))
        test_idx.append(members[:n_test])
        train_idx.append(members[n_test:])
    train, test = rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))
    return (torch.from_numpy(x[train]), torch.from_numpy(y[train])), (
        torch.from_numpy(x[test]),
        torch.from_numpy(y[test]),
    )


def load_fashion_mnist(root: PathLike = FASHION_MNIST_ROOT) -> Splits:
    """Fashion-MNIST from idx files (gzipped or not) in `root`: x (N, 1, 28, 28) float32 in [0, 1], y int64.

    Raises FileNotFoundError if the files are missing (install the Debian package `dataset-fashion-mnist`).
    """
    root = Path(root)
    splits = []
    for prefix in ("train", "t10k"):
        images = _read_idx(_find_idx(root, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_find_idx(root, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"{root}: {prefix} images {images.shape} and labels {labels.shape} do not match")
        x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
        splits.append((x, torch.from_numpy(labels.astype(np.int64))))
    return splits[0], splits[1]


def _find_idx(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {root}; install the Debian package "
        f"`dataset-fashion-mnist` (apt-get install dataset-fashion-mnist) or pass root=<directory>"
    )


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_idx(path: Path) -> np.ndarray:
    """Parse an idx file: 2 zero bytes, a dtype code, the rank, big-endian uint32 sizes, then data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file")
    rank = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=rank, offset=4))
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[raw[2]], offset=4 + 4 * rank)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape)
