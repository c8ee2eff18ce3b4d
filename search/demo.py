"""The main job: a DrNAS search on MNIST-1D, export of the selected architecture, retraining.

    python -m search.demo --out runs/demo

Prints the confidence table of the search (`SearchResult.summary()`), then retrains the selected
architecture and, for comparison, one random (connected) architecture of the same space with the
same budget and seed, and prints both test accuracies. Writes `architecture.json` (the exported
architecture as a plain spec), `alpha_trajectories.png`, `alpha_heatmap.png`, `search/` (the saved
SearchResult) and `summary.json` (search metrics, confidence, both retrained test accuracies).
`--tensorboard DIR` logs the search to TensorBoard while it runs (`tensorboard --logdir DIR`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from .architecture_plot import plot_architecture
from .connectivity import is_connected
from .datasets import load_mnist1d
from .fit import fit_supernet
from .loggers import TensorBoardLogger
from .plots import plot_alpha_heatmap, plot_alpha_trajectories
from .result import SearchResult
from .retrain import train_classifier
from .spaces import nb201_1d_space


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the demo; returns the summary it writes."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo", help="output directory")
    parser.add_argument("--epochs", type=int, default=20, help="search epochs")
    parser.add_argument("--retrain-epochs", type=int, default=30, help="epochs to retrain the exported architecture")
    parser.add_argument("--channels", type=int, default=16, help="channels of the first stage")
    parser.add_argument(
        "--arch-lr",
        type=float,
        default=None,
        help="alpha learning rate (default: set from the number of steps, see BilevelConfig)",
    )
    parser.add_argument(
        "--strategy",
        default="drnas",
        help="search strategy (drnas: Dirichlet mixtures with the step-scaled architecture learning rate; "
        "on the oracle benchmark 5/5 seeds in the top 5%%)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small models run fastest with 1)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--tensorboard", metavar="DIR", default=None, help="log the search to a TensorBoard event file in DIR"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load_mnist1d()
    print(
        f"MNIST-1D: {len(x_train)} train / {len(x_test)} test signals of length {x_train.shape[-1]}; "
        f"search on halves of the training set, {args.epochs} epochs, strategy {args.strategy}, seed {args.seed}"
    )

    space = nb201_1d_space(channels=args.channels, cells_per_stage=1)
    start = time.perf_counter()
    optim = {"arch_lr": args.arch_lr} if args.arch_lr is not None else None
    result = fit_supernet(
        space,
        (x_train, y_train),
        strategy=args.strategy,
        epochs=args.epochs,
        seed=args.seed,
        progress=not args.no_progress,
        optim=optim,
        loggers=[TensorBoardLogger(args.tensorboard)] if args.tensorboard else None,
    )
    search_seconds = time.perf_counter() - start
    result.save(out / "search")
    (out / "architecture.json").write_text(json.dumps(result.spec(), indent=1))
    plot_alpha_trajectories(result, out / "alpha_trajectories.png")
    plot_alpha_heatmap(result, out / "alpha_heatmap.png")
    plot_architecture(result, out / "architecture.png")
    print(result.summary())

    def retrain(architecture: dict) -> tuple[dict, torch.nn.Module]:
        model = result.with_architecture(architecture).export(inherit_weights=False, seed=args.seed)
        trained = train_classifier(
            model,
            (x_train, y_train),
            (x_test, y_test),
            epochs=args.retrain_epochs,
            seed=args.seed,
            progress=not args.no_progress,
        )
        return trained, model

    start = time.perf_counter()
    retrained, model = retrain(result.architecture)
    retrain_seconds = time.perf_counter() - start
    baseline = random_architecture(result, args.seed)
    random_run, _ = retrain(baseline)
    random_label = result.with_architecture(baseline).chosen_options
    summary = {
        "dataset": "mnist1d",
        "strategy": args.strategy,
        "seed": args.seed,
        "search_epochs": args.epochs,
        "search_seconds": round(search_seconds, 1),
        "retrain_epochs": args.retrain_epochs,
        "retrain_seconds": round(retrain_seconds, 1),
        "chosen_options": result.chosen_options,
        "confidence": result.confidence,
        "arch_lr": result.config["optim"]["arch_lr"],
        "final_search_metrics": result.metrics[-1],
        "retrained_test_accuracy": retrained["test_accuracy"],
        "exported_parameters": sum(p.numel() for p in model.parameters()),
        "random_architecture": random_label,
        "random_architecture_test_accuracy": random_run["test_accuracy"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"search {search_seconds:.0f} s, retrain {retrain_seconds:.0f} s (each of the two architectures)")
    print(f"test accuracy, retrained {args.retrain_epochs} epochs with seed {args.seed}:")
    print(f"  searched architecture: {retrained['test_accuracy']:.4f}  ({', '.join(result.chosen_options.values())})")
    print(f"  random architecture:   {random_run['test_accuracy']:.4f}  ({', '.join(random_label.values())})")
    print(f"wrote {out}/architecture.json, architecture.png, alpha_trajectories.png, alpha_heatmap.png, summary.json")
    return summary


def random_architecture(result: SearchResult, seed: int) -> dict:
    """A random architecture of the result's space (uniform per switch, drawn with `seed`), redrawn
    until it has a path from the input to the output."""
    for attempt in range(1000):
        drawn = result.space.sample(seed=seed * 1000 + attempt)
        architecture = {sid: drawn[sid] for sid in result.architecture}
        if is_connected(result.space, architecture):
            return architecture
    raise RuntimeError(f"no connected architecture in 1000 draws from the space ending at {result.space.id}")


if __name__ == "__main__":
    main()
