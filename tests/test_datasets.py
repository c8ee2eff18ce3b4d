"""Offline dataset loaders: shapes, dtypes, label ranges, determinism, and the idx reader."""

from __future__ import annotations

import gzip
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from search.datasets import load_digits, load_fashion_mnist, load_mnist1d

FROZEN_MNIST1D = Path(__file__).resolve().parents[2] / "shared/data/mnist1d_data.pkl"


def _check_splits(splits, train_shape, test_shape, n_classes):
    (x, y), (x_test, y_test) = splits
    assert tuple(x.shape) == train_shape and tuple(x_test.shape) == test_shape
    assert x.dtype == x_test.dtype == torch.float32
    assert y.dtype == y_test.dtype == torch.int64
    assert y.shape == (train_shape[0],) and y_test.shape == (test_shape[0],)
    for labels in (y, y_test):
        assert labels.min() >= 0 and labels.max() < n_classes
    assert set(y.tolist()) == set(range(n_classes))


def test_mnist1d_shapes_and_labels():
    _check_splits(load_mnist1d(), (4000, 1, 40), (1000, 1, 40), 10)


def test_mnist1d_is_cached_but_returns_fresh_tensors():
    (x1, _), _ = load_mnist1d()
    x1.zero_()
    (x2, _), _ = load_mnist1d()
    assert x2.abs().sum() > 0


def test_mnist1d_keeps_global_random_state():
    np.random.seed(7)
    random.seed(7)
    load_mnist1d()
    assert np.random.randint(1 << 30) == np.random.RandomState(7).randint(1 << 30)
    assert random.random() == random.Random(7).random()


def test_mnist1d_disk_cache(tmp_path):
    (x, y), (x_test, y_test) = load_mnist1d(cache_dir=tmp_path)
    assert (tmp_path / "mnist1d_seed42.npz").is_file()
    with np.load(tmp_path / "mnist1d_seed42.npz") as stored:
        assert np.array_equal(stored["x"], x.numpy()) and np.array_equal(stored["y_test"], y_test.numpy())


@pytest.mark.skipif(not FROZEN_MNIST1D.is_file(), reason=f"frozen copy {FROZEN_MNIST1D} not present")
def test_mnist1d_matches_frozen_copy():
    with open(FROZEN_MNIST1D, "rb") as f:
        frozen = pickle.load(f)
    (x, y), (x_test, y_test) = load_mnist1d()
    assert np.allclose(x.squeeze(1).numpy(), frozen["x"], atol=1e-6)
    assert np.allclose(x_test.squeeze(1).numpy(), frozen["x_test"], atol=1e-6)
    assert np.array_equal(y.numpy(), frozen["y"]) and np.array_equal(y_test.numpy(), frozen["y_test"])


def test_digits_shapes_range_and_stratification():
    pytest.importorskip("sklearn")
    (x, y), (x_test, y_test) = splits = load_digits()
    n = len(y) + len(y_test)
    assert n == 1797
    _check_splits(splits, (len(y), 1, 8, 8), (len(y_test), 1, 8, 8), 10)
    assert x.min() >= 0 and x.max() <= 1 and x.max() == 1
    assert abs(len(y_test) / n - 0.2) < 0.01
    test_share = torch.bincount(y_test, minlength=10) / (
        torch.bincount(y, minlength=10) + torch.bincount(y_test, minlength=10)
    )
    assert torch.all((test_share - 0.2).abs() < 0.02)


def test_digits_split_is_deterministic():
    pytest.importorskip("sklearn")
    (x1, y1), (t1, _) = load_digits(seed=3)
    (x2, y2), (t2, _) = load_digits(seed=3)
    (x3, _), _ = load_digits(seed=4)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and torch.equal(t1, t2)
    assert not torch.equal(x1, x3)
    # train and test are disjoint: no test image appears among the training images
    train_rows = {row.tobytes() for row in x1.flatten(1).numpy()}
    overlap = sum(row.tobytes() in train_rows for row in t1.flatten(1).numpy())
    assert overlap < 5  # the raw data itself holds a few duplicate images


def _write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_reader_on_synthetic_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 3)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)
    splits = load_fashion_mnist(tmp_path)
    assert tuple(splits[0][0].shape) == (6, 1, 28, 28) and tuple(splits[1][0].shape) == (3, 1, 28, 28)
    assert splits[0][0].dtype == torch.float32 and splits[0][1].dtype == torch.int64
    assert 0 <= splits[0][0].min() and splits[0][0].max() <= 1
    assert splits[1][1].tolist() == [0, 1, 2]


def test_fashion_missing_directory_names_it_and_the_package(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist") as info:
        load_fashion_mnist(missing)
    assert str(missing) in str(info.value)


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="dataset-fashion-mnist not installed"
)
def test_fashion_installed_copy():
    _check_splits(load_fashion_mnist(), (60000, 1, 28, 28), (10000, 1, 28, 28), 10)
