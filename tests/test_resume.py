"""Checkpoint and resume: a search interrupted after epoch k and resumed returns a bit-identical result."""

import pytest
import torch
from torch.utils.data import TensorDataset

from search import fit_supernet
from search.checkpoint import Checkpointer
from search.loaders import BatchStream, search_loader

from helpers import threshold_data, resume_space

EPOCHS = 4


make_space = resume_space


def make_data(n=96):
    return threshold_data(n)


def search(space, checkpoint_dir=None, resume=False, **overrides):
    settings = dict(
        epochs=EPOCHS,
        batch_size=16,
        seed=3,
        progress=False,
        on_undecided="ignore",
        optim={"arch_lr": 3e-2},
        checkpoint_dir=checkpoint_dir,
        resume=resume,
    )
    settings.update(overrides)
    return fit_supernet(space, make_data(), **settings)


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    space = make_space()
    return space, search(space, tmp_path_factory.mktemp("reference"))


def test_checkpointing_does_not_change_the_search(reference):
    space, with_checkpoints = reference
    assert search(space) == with_checkpoints


@pytest.mark.parametrize("crash_after_epoch", [0, 2])
def test_interrupted_after_an_epoch_and_resumed_is_bit_identical(reference, tmp_path, crash_after_epoch):
    space, uninterrupted = reference

    def crash(state):  # called after the epoch, before its checkpoint: crashes in epoch k+1's callback
        if state["epoch"] == crash_after_epoch + 1:
            raise Crash

    with pytest.raises(Crash):
        search(space, tmp_path, callbacks=[crash])
    assert Checkpointer(tmp_path).latest().name == f"epoch_{crash_after_epoch:04d}.pt"
    resumed = search(space, tmp_path, resume=True)
    assert resumed == uninterrupted
    assert resumed.metrics == uninterrupted.metrics
    assert resumed.history.pop("resumed_at_step") == [
        (crash_after_epoch + 1) * 3
    ]  # 3 steps per epoch; marked for the plots
    assert resumed.history == uninterrupted.history


def test_crash_in_the_middle_of_an_epoch_resumes_from_the_last_checkpoint(reference, tmp_path):
    space, uninterrupted = reference
    calls = {"n": 0}

    def crashing_loss(logits, y):
        calls["n"] += 1
        if calls["n"] == 2 * 3 + 2 * 2 + 1:  # epoch 1 (3 steps of 2 losses each), third step
            raise Crash
        return torch.nn.functional.cross_entropy(logits, y)

    with pytest.raises(Crash):
        search(space, tmp_path, loss=crashing_loss, metrics=[])
    assert [p.name for p in Checkpointer(tmp_path).existing()] == ["epoch_0000.pt"]
    resumed = search(space, tmp_path, resume=True, loss=torch.nn.functional.cross_entropy, metrics=[])
    expected = search(space, loss=torch.nn.functional.cross_entropy, metrics=[])
    assert resumed == expected


def test_resuming_a_finished_search_returns_its_result_and_files_are_atomic(reference, tmp_path):
    space, uninterrupted = reference
    first = search(space, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch_0002.pt",
        "epoch_0003.pt",
    ]  # newest two, no temporaries
    assert search(space, tmp_path, resume=True) == first == uninterrupted
    state = torch.load(tmp_path / "epoch_0003.pt", weights_only=True)
    assert state["finished"] and state["epoch"] == EPOCHS - 1
    assert {"supernet", "bilevel", "rng", "history", "metrics", "strategy"} <= set(state)


def test_resume_refuses_other_settings_and_fresh_runs_refuse_a_used_directory(tmp_path):
    space = make_space()
    search(space, tmp_path, epochs=2)
    with pytest.raises(ValueError, match=r"other settings \(epochs: 2 in the checkpoint, 3 now\)"):
        search(space, tmp_path, resume=True, epochs=3)
    with pytest.raises(FileExistsError, match="already holds checkpoints.*resume=True"):
        search(space, tmp_path, epochs=2)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        search(space, None, resume=True)


def test_resume_with_no_checkpoint_starts_afresh(reference, tmp_path):
    space, uninterrupted = reference
    assert search(space, tmp_path / "new", resume=True) == uninterrupted


def test_batch_stream_started_at_k_continues_the_stream():
    x, y = make_data(50)
    loader = search_loader(TensorDataset(x, y), 8, seed=1, argument="val")  # 6 batches per pass
    full = BatchStream(loader)
    drawn = [next(full)[1].tolist() for _ in range(20)]
    for k in (0, 5, 6, 13):
        later = BatchStream(search_loader(TensorDataset(x, y), 8, seed=1), position=k)
        assert [next(later)[1].tolist() for _ in range(20 - k)] == drawn[k:]


class StopAtThirdEpoch:
    """A stateful callback: it counts the epochs it has seen (its count is checkpointed too)."""

    def __init__(self):
        self.seen = 0

    def __call__(self, state):
        self.seen += 1
        return self.seen == 3

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


def test_callback_state_is_checkpointed_and_a_stop_is_remembered(tmp_path):
    space = make_space()
    uninterrupted = search(space, callbacks=[StopAtThirdEpoch()], epochs=5)
    assert len(uninterrupted.metrics) == 3

    def crash(state):
        if state["epoch"] == 1:
            raise Crash

    with pytest.raises(Crash):
        search(space, tmp_path, callbacks=[StopAtThirdEpoch(), crash], epochs=5)
    resumed_callback = StopAtThirdEpoch()
    assert (
        search(space, tmp_path, resume=True, callbacks=[resumed_callback, lambda state: None], epochs=5)
        == uninterrupted
    )
    assert resumed_callback.seen == 3  # restored: the checkpoint of epoch 0 had seen 1 epoch
    again = StopAtThirdEpoch()
    assert search(space, tmp_path, resume=True, callbacks=[again, lambda state: None], epochs=5) == uninterrupted
    assert again.seen == 3  # the search had stopped: nothing more ran, the count is the checkpoint's
