"""Run by tests/test_compile.py in a subprocess (torch.compile is slow on a small CPU): the same
short search eager and compiled; prints one JSON line comparing them."""

import json
import sys
import warnings

import functools

import torch

from ops import AvgPooling, BatchNorm, Flatten, Identity, MaxPooling, Relu, conv1d, linear
from search import fit_supernet
from supernet import ChoiceOp, Tensor, search_space

from helpers import threshold_data


def space():
    """Two choices and BatchNorm, no random op (inductor draws dropout masks from a generator of its own)."""
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def cells(x):
        h = ChoiceOp(functools.partial(conv1d, out_channels=2, kernel_size=3), MaxPooling(3, 1, 1), Identity())(x)
        h = Relu()(BatchNorm()(h))
        h = ChoiceOp(functools.partial(conv1d, out_channels=2, kernel_size=5), AvgPooling(3, 1, 1))(h)
        return linear(Flatten()(h), 3)

    return cells(x)


def search(strategy: str, compiled: bool, precision: str):
    return fit_supernet(
        space(),
        threshold_data(48),
        strategy=strategy,
        epochs=2,
        batch_size=8,
        seed=3,
        progress=False,
        on_undecided="ignore",
        optim={"arch_lr": 3e-2},
        compile=compiled,
        precision=precision,
    )


def main() -> None:
    torch.set_num_threads(1)
    strategy, precision = sys.argv[1], sys.argv[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch internals, imported by inductor
        eager, compiled = search(strategy, False, precision), search(strategy, True, precision)
    alphas = [
        max(abs(a - b) for a, b in zip(eager.probabilities[k], compiled.probabilities[k])) for k in eager.probabilities
    ]
    weights = max(
        float((eager.supernet_state[k].float() - compiled.supernet_state[k].float()).abs().max())
        for k in eager.supernet_state
    )
    losses = max(abs(a[k] - b[k]) for a, b in zip(eager.metrics, compiled.metrics) for k in ("train_loss", "val_loss"))
    print(
        json.dumps(
            {
                "probabilities": max(alphas),
                "weights": weights,
                "losses": losses,
                "same_architecture": eager.architecture == compiled.architecture,
                "config": compiled.config["compile"],
            }
        )
    )


if __name__ == "__main__":
    main()
