"""Known optimum: the target is a fixed 5-tap convolution of the input; options are 1-, 3- and 5-tap
convolutions, 3-wide average pooling and a skip. DARTS should pick the 5-tap convolution.

    python benchmarks/known_optimum.py --seeds 10

Prints the setup and one line per seed; saves benchmarks/results/known_optimum.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import time
from pathlib import Path

import torch

from ops import AvgPooling, Identity, conv1d
from search import fit_supernet
from supernet import ChoiceOp, Tensor, search_space

OPTIONS = ["conv1", "conv3", "conv5", "avgpool", "skip"]


def tap_space():
    x = Tensor("x", (1, 1, 32), ("N", "C", "L"))

    @search_space
    def space(x):
        return ChoiceOp(
            *[functools.partial(conv1d, out_channels=1, kernel_size=k) for k in (1, 3, 5)],
            AvgPooling(3, 1, 1),
            Identity(),
            names=OPTIONS,
        )(x)

    return space(x)


def five_tap_data(seed: int, n: int = 1024):
    g = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(n, 1, 32, generator=g)
    return x, torch.nn.functional.conv1d(x, torch.randn(1, 1, 5, generator=g), padding=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--arch-lr", type=float, default=3e-3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "known_optimum.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    setup = {
        "torch": torch.__version__,
        "threads": 1,
        "python": platform.python_version(),
        "epochs": args.epochs,
        "arch_lr": args.arch_lr,
        "samples": 1024,
        "batch_size": 64,
        "strategy": "darts",
        "options": OPTIONS,
    }
    print("setup:", json.dumps(setup))
    runs = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        result = fit_supernet(
            tap_space(),
            five_tap_data(seed),
            epochs=args.epochs,
            loss=torch.nn.functional.mse_loss,
            seed=seed,
            progress=False,
            optim={"arch_lr": args.arch_lr},
        )
        (choice,) = result.chosen_options.values()
        (probabilities,) = result.probabilities.values()
        runs.append(
            {
                "seed": seed,
                "chosen": choice,
                "probabilities": [round(p, 4) for p in probabilities],
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
        print(runs[-1])
    wins = sum(r["chosen"] == "conv5" for r in runs)
    print(f"conv5 chosen in {wins}/{len(runs)} seeds")
    Path(args.out).write_text(json.dumps({"setup": setup, "runs": runs, "wins": wins, "seeds": len(runs)}, indent=1))


if __name__ == "__main__":
    main()
