"""Resume is bit-identical for every strategy: its state and its mixture's go through their own
`state_dict()` (no reflection), and a search interrupted after an epoch and resumed returns the
SearchResult of the uninterrupted one."""

import warnings

import pytest
import torch

from search import fit_supernet
from search.checkpoint import Checkpointer
from search.confidence import UndecidedWarning
from search.strategies import STRATEGIES

from helpers import threshold_data, resume_space

EPOCHS = 3


def tiny_space():
    return resume_space(channels=4, length=8)


def tiny_data(n=48):
    return threshold_data(n, channels=4, length=8, seed=5, window=3)


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
    assert resumed.metrics == uninterrupted.metrics
    assert len(resumed.history.pop("resumed_at_step")) == 1  # the resume point, marked for the plots
    assert resumed.history == uninterrupted.history
