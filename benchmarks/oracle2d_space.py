"""The 2-D oracle benchmark's search space and data: the 1-D oracle's network on small images.

Space (`oracle2d_space`): `oracle_space.oracle_network` on (N, 1, 14, 14) images: stem (Conv3x3
1->16, BatchNorm), two cells sharing one genotype (tied switches) with a 2x2 average pooling between
them (14x14, then 7x7), the NB201 head (BN, ReLU, global average pool, linear). A cell has 3 edges,
node 2 = e02(x) + e12(e01(x)), each a ChoiceOp over the 5 NB201 ops (none, skip_connect,
nor_conv_1x1, nor_conv_3x3, avg_pool_3x3): 125 architectures, the same switch ids as the 1-D space.

Data (`oracle2d_data`): a fixed subset of Fashion-MNIST (`search.datasets.load_fashion_mnist`),
images averaged 2x2 down to 14x14: `TRAIN_SIZE` train and `VAL_SIZE` val images drawn (by `seed`)
from its training set, the first `TEST_SIZE` images of its test set; x (N, 1, 14, 14) float32 in
[0, 1], y int64 in 0..9.
"""

from __future__ import annotations

import functools

import torch

from oracle_space import oracle_network
from search.datasets import load_fashion_mnist
from supernet import Node, Tensor

IMAGE_SIZE = 14
TRAIN_SIZE, VAL_SIZE, TEST_SIZE = 2000, 1000, 1000

Split = tuple[torch.Tensor, torch.Tensor]


def oracle2d_space() -> Node:
    """A fresh copy of the 2-D oracle search space (output node) on (N, 1, 14, 14) images."""
    return oracle_network(Tensor(name="input", shape=(1, 1, IMAGE_SIZE, IMAGE_SIZE), axis=("N", "C", "H", "W")))


@functools.lru_cache(maxsize=1)
def _fashion_mnist() -> tuple[Split, Split]:
    return load_fashion_mnist()


def downsample(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28) images averaged over 2x2 blocks to (N, 1, 14, 14)."""
    if x.dim() != 4 or tuple(x.shape[2:]) != (2 * IMAGE_SIZE, 2 * IMAGE_SIZE):
        raise ValueError(f"downsample takes (N, C, {2 * IMAGE_SIZE}, {2 * IMAGE_SIZE}) images, got {tuple(x.shape)}")
    return torch.nn.functional.avg_pool2d(x, 2)


def oracle2d_data(seed: int = 0) -> tuple[Split, Split, Split]:
    """(train, val, test): `TRAIN_SIZE` / `VAL_SIZE` Fashion-MNIST training images (drawn by `seed`)
    and its first `TEST_SIZE` test images, all at 14x14."""
    (x, y), (xt, yt) = _fashion_mnist()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, val = order[:TRAIN_SIZE], order[TRAIN_SIZE : TRAIN_SIZE + VAL_SIZE]
    x, xt = downsample(x[torch.cat([train, val])]), downsample(xt[:TEST_SIZE])
    return (x[:TRAIN_SIZE], y[train]), (x[TRAIN_SIZE:], y[val]), (xt, yt[:TEST_SIZE])
