"""Distributed search: torchrun with 2 CPU processes (gloo) against a single-process run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from search import fit_supernet
from search.loaders import search_loader

import ddp_search  # the script torchrun launches

SCRIPT = Path(__file__).with_name("ddp_search.py")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(SCRIPT.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(SCRIPT),
        str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return out, [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_alphas_and_weights_are_identical_on_both_ranks_after_every_epoch(ranks):
    _, (rank0, rank1) = ranks
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert len(rank0["snapshots"]) == len(rank1["snapshots"]) == ddp_search.EPOCHS
    for epoch, (a, b) in enumerate(zip(rank0["snapshots"], rank1["snapshots"])):
        assert torch.equal(a["alphas"], b["alphas"]), f"alphas differ after epoch {epoch}"
        assert torch.equal(a["weights"], b["weights"]), f"weights differ after epoch {epoch}"
    assert rank0["result"] == rank1["result"]
    assert all(torch.equal(v, rank1["state"][k]) for k, v in rank0["state"].items())


def test_distributed_search_equals_a_single_process_search_with_the_same_global_batch(ranks):
    _, (rank0, _) = ranks
    snapshots = []
    single = fit_supernet(
        ddp_search.make_space(),
        ddp_search.make_data(),
        callbacks=[lambda state: snapshots.append(ddp_search.snapshot(state))],
        **ddp_search.SETTINGS,
    )
    for distributed, alone in zip(rank0["snapshots"], snapshots):
        assert not torch.equal(alone["alphas"], torch.zeros_like(alone["alphas"]))  # the alphas did move
        torch.testing.assert_close(distributed["alphas"], alone["alphas"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(distributed["weights"], alone["weights"], rtol=1e-5, atol=1e-6)
    assert rank0["result"]["architecture"] == single.architecture
    for row, expected in zip(rank0["result"]["metrics"], single.metrics):
        assert row.keys() == expected.keys()
        assert row == pytest.approx(expected, rel=1e-5)


def test_rank_0_writes_the_checkpoints_and_a_distributed_search_resumes_exactly(ranks):
    out, (rank0, rank1) = ranks
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0001.pt", "epoch_0002.pt"]
    state = torch.load(out / "checkpoints" / "epoch_0002.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2 and state["finished"]
    assert rank0["resumed_equal"] and rank1["resumed_equal"]


def test_per_rank_batches_together_form_the_single_process_batches():
    x = torch.arange(103).float().reshape(-1, 1)
    data = TensorDataset(x, torch.zeros(103, dtype=torch.long))
    single = search_loader(data, 8, seed=5)
    shards = [search_loader(data, 8, seed=5, rank=r, world_size=2) for r in range(2)]
    for epoch in range(2):
        for loader in (single, *shards):
            loader.sampler.set_position(epoch)
        whole = [batch[0].flatten().tolist() for batch in single]
        parts = [[batch[0].flatten().tolist() for batch in shard] for shard in shards]
        assert len(whole) == len(parts[0]) == len(parts[1]) == 103 // 8
        for t, batch in enumerate(whole):
            assert sorted(parts[0][t] + parts[1][t]) == sorted(batch)
    with pytest.raises(ValueError, match="batch_size 9 is the global batch and must be a multiple of the 2 processes"):
        search_loader(data, 9, seed=5, world_size=2)
    with pytest.raises(
        TypeError, match=r"train: a distributed search shards the data itself; pass \(x, y\) tensors or a Dataset"
    ):
        search_loader(torch.utils.data.DataLoader(data, batch_size=8), 8, seed=5, argument="train", world_size=2)


def test_distributed_true_outside_torchrun_says_how_to_launch(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match=r"distributed=True needs a process group.*torchrun --nproc_per_node=N"):
        fit_supernet(ddp_search.make_space(), ddp_search.make_data(), distributed=True, **ddp_search.SETTINGS)
