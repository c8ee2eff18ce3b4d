"""search.spaces.embedded_vision_net (issue 22): HANNAH's parameter ids, a build in well under 5 s
at full size (10 blocks), one-path runs of the space as it is, and a one-epoch search with the
default strategy that exports, on synthetic data and on a Fashion-MNIST subset."""

from __future__ import annotations

import time

import pytest
import torch

from search import fit_supernet
from search.datasets import load_fashion_mnist
from search.spaces import embedded_vision_net, fix_for_mixing
from supernet import BasicExecutor, Tensor

PATTERN_IDS = (
    "ChoiceOp_0.choice",
    "Conv2d_0.weight.kernel_size",
    "Conv2d_0.weight.out_channels",
    "expand_reduce_0.expansion_0.Conv2d_0.weight.expand_ratio",
    "pooling_0.ChoiceOp_0.pool_mode",
    "reduce_expand_0.reduction_0.Conv2d_0.weight.reduce_ratio",
)


def hannah_ids(blocks: int) -> list[str]:
    """HANNAH's ids of embedded_vision_net with `blocks` blocks of three patterns (depth 0..2)."""
    ids = ["ChoiceOp_0.num_blocks", "stem_0.Conv2d_0.stride"]
    ids += ["stem_0.Conv2d_0.weight.kernel_size", "stem_0.Conv2d_0.weight.out_channels"]
    for b in range(blocks):
        ids += [f"block_{b}.ChoiceOp_0.depth", f"block_{b}.ChoiceOp_1.residual_choice"]
        ids.append(f"block_{b}.pattern_0.Conv2d_0.stride")  # only the first pattern is strided
        ids += [f"block_{b}.pattern_{p}.{leaf}" for p in range(3) for leaf in PATTERN_IDS]
    return sorted(f"embedded_vision_net_0.{i}" for i in ids)


def build(max_blocks: int, size: int = 28, max_channels: int = 512):
    x = Tensor("input", (1, 1, size, size), ("N", "C", "H", "W"))
    return embedded_vision_net("evn", x, 10, max_channels=max_channels, max_blocks=max_blocks)


def test_parameter_ids_are_hannahs():
    assert sorted(build(max_blocks=1).parametrization()) == hannah_ids(2)  # 46 ids, as HANNAH's
    assert len(hannah_ids(2)) == 46


def test_full_size_builds_in_under_five_seconds():
    start = time.perf_counter()
    space = build(max_blocks=9)  # 10 blocks, HANNAH's default
    elapsed = time.perf_counter() - start
    assert sorted(space.parametrization()) == hannah_ids(10)
    assert elapsed < 5.0, f"embedded_vision_net with 10 blocks took {elapsed:.2f} s to build"


def test_the_space_as_it_is_runs_one_path_per_sample():
    space = build(max_blocks=1, size=16, max_channels=32)
    torch.manual_seed(0)
    for seed in range(3):
        space.sample(seed=seed)  # widths and strides differ between options: one path at a time
        out = BasicExecutor(space)(torch.randn(2, 1, 16, 16))
        assert tuple(out.shape) == (2, 10)


def search_and_export(train, val, size, stem_stride=1):
    space = build(max_blocks=1, size=size, max_channels=16)
    fixed = fix_for_mixing(space)
    assert fixed and all(pid.rsplit(".", 1)[-1] in ("out_channels", "stride", "reduce_ratio") for pid in fixed)
    # the stem comes before every choice: any stride there keeps the options' shapes equal
    space.parametrization()["embedded_vision_net_0.stem_0.Conv2d_0.stride"].fix(stem_stride)
    result = fit_supernet(space, train, val, epochs=1, batch_size=16, progress=False, on_undecided="ignore")
    assert result.config["strategy"]["name"] == "drnas"  # the default strategy
    assert result.architecture and len(result.metrics) == 1
    model = result.export(inherit_weights=True)
    model.eval()
    x = val[0][:4]
    with torch.no_grad():
        out = model(x)
    assert tuple(out.shape) == (4, 10) and bool(torch.isfinite(out).all())
    return result


def test_a_one_epoch_search_exports_on_synthetic_data():
    g = torch.Generator().manual_seed(0)
    train = torch.rand(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    val = torch.rand(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
    search_and_export(train, val, size=8)


def test_a_one_epoch_search_exports_on_fashion_mnist():
    try:
        (x, y), (x_test, y_test) = load_fashion_mnist()
    except FileNotFoundError as err:
        pytest.skip(f"Fashion-MNIST is not installed: {err}")
    # a small subset, and a stride-2 stem (14 x 14 maps after it) to keep the test at a few seconds
    result = search_and_export((x[:32], y[:32]), (x_test[:16], y_test[:16]), size=28, stem_stride=2)
    assert 0.0 <= result.metrics[-1]["val_accuracy"] <= 1.0
