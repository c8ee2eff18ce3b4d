"""Guarded steps: a NaN/inf loss skips the step with a warning; too many in a row stop the search."""

import functools
import math
import warnings

import pytest
import torch

from ops import BatchNorm, Flatten, Identity, MaxPooling, Relu, conv1d, linear
from search import BilevelConfig, BilevelOptimizer, fit_supernet
from search.checkpoint import Checkpointer
from search.guard import StepGuard
from supernet import ChoiceOp, SupernetExecutor, Tensor, search_space

from helpers import noise_data


def make_space():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def space(x):
        h = ChoiceOp(functools.partial(conv1d, out_channels=2, kernel_size=3), MaxPooling(3, 1, 1), Identity())(x)
        h = Relu()(BatchNorm()(h))
        return linear(Flatten()(h), 3)

    return space(x)


def poisoned_loss(bad_calls, value=math.nan):
    """Cross-entropy, except on the given (1-based) calls, where the loss is `value`."""
    calls = {"n": 0}

    def loss(logits, y):
        calls["n"] += 1
        out = torch.nn.functional.cross_entropy(logits, y)
        return out * value if calls["n"] in bad_calls else out

    return loss


def search(space, loss, **overrides):
    settings = dict(epochs=3, batch_size=16, seed=0, progress=False, on_undecided="ignore")
    settings.update(overrides)
    return fit_supernet(space, noise_data(96, seed=1), loss=loss, **settings)


def test_a_skipped_step_leaves_weights_alphas_statistics_and_optimizer_state_untouched():
    supernet = SupernetExecutor(make_space(), seed=0)
    guard = StepGuard(max_bad_steps=3)
    bilevel = BilevelOptimizer(
        supernet, guard.watch_loss(poisoned_loss({3, 4})), BilevelConfig(arch_lr=0.1), total_epochs=1
    )
    guard.attach(bilevel.weight_optimizer)
    guard.attach(bilevel.arch_optimizer)
    x, y = noise_data(16, seed=1)
    for kind, step in (("architecture", bilevel.architecture_step), ("weight", bilevel.weight_step)):
        with guard.step(kind, 0, 0, supernet):
            step(x, y)
        assert not guard.skipped
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    optimizer_state = repr(bilevel.state_dict())
    for kind, step in (("architecture", bilevel.architecture_step), ("weight", bilevel.weight_step)):
        with pytest.warns(
            RuntimeWarning,
            match=rf"search step 1 \(epoch 0\): non-finite {kind} loss \(nan\); skipped this {kind} step \(1 in a row",
        ):
            with guard.step(kind, 0, 1, supernet):
                step(x, y)
        assert guard.skipped
    assert all(torch.equal(before[k], v) for k, v in supernet.state_dict().items())  # BatchNorm statistics too
    assert repr(bilevel.state_dict()) == optimizer_state
    with guard.step("weight", 0, 2, supernet):
        bilevel.weight_step(x, y)
    assert not guard.skipped and guard.consecutive == {"architecture": 1, "weight": 0}


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_fit_skips_bad_steps_with_a_warning_and_finishes(value):
    space = make_space()
    with pytest.warns(
        RuntimeWarning,
        match=r"search step 2 \(epoch 0\): non-finite weight loss \((nan|inf)\); skipped this weight step",
    ):
        result = search(space, poisoned_loss({6}, value))  # call 6: the weight loss of step 2 (0-based)
    assert all(math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"]) for row in result.metrics)
    assert all(torch.isfinite(v).all() for v in result.supernet_state.values())
    assert all(math.isfinite(p) for probabilities in result.probabilities.values() for p in probabilities)


def test_consecutive_bad_steps_stop_the_search_and_keep_the_last_good_checkpoint(tmp_path):
    space = make_space()
    steps_per_epoch = 3  # 48 training samples (val=None) in batches of 16
    from_epoch_1 = set(range(2 * steps_per_epoch + 1, 1000))  # every loss from epoch 1 on is NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(
            FloatingPointError,
            match=r"3 consecutive architecture steps had a non-finite loss or gradient.*"
            r"last good checkpoint is .*epoch_0000\.pt \(resume from it with resume=True\)",
        ):
            search(space, poisoned_loss(from_epoch_1), checkpoint_dir=tmp_path, max_bad_steps=3)
    assert [p.name for p in Checkpointer(tmp_path).existing()] == ["epoch_0000.pt"]
    state = torch.load(tmp_path / "epoch_0000.pt", weights_only=True)
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["supernet"].values())
    resumed = search(space, poisoned_loss(set()), checkpoint_dir=tmp_path, resume=True)
    assert len(resumed.metrics) == 3


def test_without_a_checkpoint_the_error_says_so_and_none_disables_the_guard():
    space = make_space()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(FloatingPointError, match="no checkpoint was written"):
            search(space, poisoned_loss(set(range(1, 1000))), max_bad_steps=2)
    # darts: a softmax mixes NaN logits into NaN losses; DrNAS's Dirichlet refuses NaN concentrations outright
    result = search(space, poisoned_loss(set(range(1, 1000))), max_bad_steps=None, epochs=1, strategy="darts")
    assert math.isnan(result.metrics[0]["train_loss"])
    with pytest.raises(ValueError, match="max_bad_steps must be a positive int"):
        search(space, None, max_bad_steps=0)
