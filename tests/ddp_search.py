"""A distributed search, launched by tests/test_distributed.py:

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_search.py OUT_DIR

Each rank records its alphas and weights after every epoch and writes them, with its result, to
OUT_DIR/rank{r}.pt. Rank 0 alone writes the checkpoints to OUT_DIR/checkpoints. The search is then
interrupted after epoch 0 and resumed, in OUT_DIR/resumed.
"""

import functools
import sys
from pathlib import Path

import torch

from ops import AvgPooling, Flatten, Identity, MaxPooling, Relu, conv1d, linear
from search import fit_supernet
from search.distributed import is_main_process
from supernet import ChoiceOp, Tensor, search_space

EPOCHS = 3
SETTINGS = dict(epochs=EPOCHS, batch_size=16, seed=4, progress=False, on_undecided="ignore", optim={"arch_lr": 3e-2})


def make_space():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def space(x):
        h = ChoiceOp(
            functools.partial(conv1d, out_channels=3, kernel_size=3),
            functools.partial(conv1d, out_channels=3, kernel_size=5),
        )(x)
        h = Relu()(h)
        h = ChoiceOp(
            MaxPooling(3, 1, 1),
            AvgPooling(3, 1, 1),
            Identity(),
            functools.partial(conv1d, out_channels=3, kernel_size=3),
        )(h)
        return linear(Flatten()(h), 3)

    return space(x)


def make_data(n=100):
    g = torch.Generator().manual_seed(11)
    x = torch.randn(n, 2, 16, generator=g)
    y = (x[:, 0].mean(dim=1) > 0).long() + (x[:, 1].mean(dim=1) > 0.2).long()
    return x, y


def snapshot(state):
    """The alphas and the weights of the supernet after an epoch, as flat CPU tensors."""
    supernet = state["supernet"]
    return {
        "alphas": torch.cat([a.detach().reshape(-1) for a in supernet.arch_parameters()]).cpu().clone(),
        "weights": torch.cat([w.detach().reshape(-1) for w in supernet.weight_parameters()]).cpu().clone(),
    }


def main(out: Path) -> None:
    snapshots = []
    result = fit_supernet(
        make_space(),
        make_data(),
        checkpoint_dir=out / "checkpoints",
        callbacks=[lambda state: snapshots.append(snapshot(state))],
        **SETTINGS,
    )
    rank = torch.distributed.get_rank()
    assert is_main_process() == (rank == 0)

    class Interrupted(Exception):
        pass

    def interrupt(state):
        if state["epoch"] == 1:
            raise Interrupted

    try:
        fit_supernet(make_space(), make_data(), checkpoint_dir=out / "resumed", callbacks=[interrupt], **SETTINGS)
    except Interrupted:
        pass
    resumed = fit_supernet(make_space(), make_data(), checkpoint_dir=out / "resumed", resume=True, **SETTINGS)
    torch.save(
        {
            "world_size": torch.distributed.get_world_size(),
            "snapshots": snapshots,
            "result": result.to_dict(),
            "state": result.supernet_state,
            "resumed_equal": resumed == result,
        },
        out / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
