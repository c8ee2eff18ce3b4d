"""Resume is bit-identical for every strategy: its state and its mixture's go through their own
`state_dict()` (no reflection), and a search interrupted after an epoch and resumed returns the
SearchResult of the uninterrupted one."""

import functools
import warnings

import pytest
import torch

from ops import AvgPooling, BatchNorm, Dropout, Flatten, Identity, MaxPooling, Relu, conv1d, linear
from search import fit_supernet
from search.checkpoint import Checkpointer
from search.confidence import UndecidedWarning
from search.strategies import STRATEGIES
from supernet import ChoiceOp, Tensor, search_space

EPOCHS = 3


def tiny_space():
    x = Tensor("x", (1, 4, 8), ("N", "C", "L"))

    @search_space
    def space(x):
        h = ChoiceOp(functools.partial(conv1d, out_channels=4, kernel_size=3), MaxPooling(3, 1, 1), Identity())(x)
        h = Relu()(BatchNorm()(h))
        h = ChoiceOp(functools.partial(conv1d, out_channels=4, kernel_size=5), AvgPooling(3, 1, 1))(h)
        h = Dropout(0.2)(h)  # draws from torch's global generator: resuming must restore it
        return linear(Flatten()(h), 3)

    return space(x)


def tiny_data(n=48):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, 4, 8, generator=g)
    return x, (x[:, 0, :3].sum(dim=1) > 0).long() + (x[:, 1, :3].sum(dim=1) > 1).long()


class Crash(Exception):
    pass


def search(name, checkpoint_dir, **overrides):
    settings = dict(
        strategy=name,
        epochs=EPOCHS,
        batch_size=16,
        seed=1,
        progress=False,
        checkpoint_dir=checkpoint_dir,
        on_undecided="ignore",
    )
    settings.update(overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndecidedWarning)
        return fit_supernet(tiny_space(), tiny_data(), **settings)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_resumes_bit_identically(name, tmp_path):
    uninterrupted = search(name, None)

    def crash(state):
        if state["epoch"] == 1:  # after epoch 0's checkpoint
            raise Crash

    with pytest.raises(Crash):
        search(name, tmp_path, callbacks=[crash])
    assert Checkpointer(tmp_path).latest().name == "epoch_0000.pt"
    state = torch.load(tmp_path / "epoch_0000.pt", weights_only=True)  # plain data only: no code unpickled
    assert isinstance(state["strategy"], dict) and isinstance(state["mixture"], dict)
    resumed = search(name, tmp_path, resume=True)
    assert resumed == uninterrupted
    assert resumed.metrics == uninterrupted.metrics and resumed.history == uninterrupted.history
