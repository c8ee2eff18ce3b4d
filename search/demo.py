"""The main job: a DARTS search on MNIST-1D, export of the argmax architecture, retraining.

    python -m search.demo --out runs/demo

Writes `architecture.json` (the exported architecture as a plain spec), `alpha_trajectories.png`,
`alpha_heatmap.png`, `search/` (the saved SearchResult) and `summary.json` (search metrics and the
retrained test accuracy). About 5 minutes on 2 CPU cores with the defaults.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from .architecture_plot import plot_architecture
from .datasets import load_mnist1d
from .fit import fit_supernet
from .plots import plot_alpha_heatmap, plot_alpha_trajectories
from .retrain import train_classifier
from .spaces import nb201_1d_space


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the demo; returns the summary it writes."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo", help="output directory")
    parser.add_argument("--epochs", type=int, default=20, help="search epochs")
    parser.add_argument("--retrain-epochs", type=int, default=30, help="epochs to retrain the exported architecture")
    parser.add_argument("--channels", type=int, default=16, help="channels of the first stage")
    parser.add_argument("--arch-lr", type=float, default=3e-3, help="alpha learning rate (DARTS paper: 3e-4 for 50 epochs of CIFAR-10)")
    parser.add_argument("--strategy", default="darts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small models run fastest with 1)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load_mnist1d()
    print(f"MNIST-1D: {len(x_train)} train / {len(x_test)} test signals of length {x_train.shape[-1]}; "
          f"search on halves of the training set, {args.epochs} epochs, strategy {args.strategy}, seed {args.seed}")

    space = nb201_1d_space(channels=args.channels, cells_per_stage=1)
    start = time.perf_counter()
    result = fit_supernet(space, (x_train, y_train), strategy=args.strategy, epochs=args.epochs, seed=args.seed,
                          progress=not args.no_progress, optim={"arch_lr": args.arch_lr})
    search_seconds = time.perf_counter() - start
    result.save(out / "search")
    (out / "architecture.json").write_text(json.dumps(result.spec(), indent=1))
    plot_alpha_trajectories(result.history, out / "alpha_trajectories.png")
    plot_alpha_heatmap(result, out / "alpha_heatmap.png")
    plot_architecture(result, out / "architecture.png")
    print("chosen operations:", json.dumps(result.chosen_options, indent=1))

    start = time.perf_counter()
    model = result.export(inherit_weights=False, seed=args.seed)
    retrained = train_classifier(model, (x_train, y_train), (x_test, y_test), epochs=args.retrain_epochs, seed=args.seed,
                                 progress=not args.no_progress)
    retrain_seconds = time.perf_counter() - start
    summary = {
        "dataset": "mnist1d", "strategy": args.strategy, "seed": args.seed, "search_epochs": args.epochs,
        "search_seconds": round(search_seconds, 1), "retrain_epochs": args.retrain_epochs,
        "retrain_seconds": round(retrain_seconds, 1), "chosen_options": result.chosen_options,
        "final_search_metrics": result.metrics[-1], "retrained_test_accuracy": retrained["test_accuracy"],
        "exported_parameters": sum(p.numel() for p in model.parameters()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"search {search_seconds:.0f} s, retrain {retrain_seconds:.0f} s; "
          f"retrained test accuracy of the exported architecture: {retrained['test_accuracy']:.4f}")
    print(f"wrote {out}/architecture.json, alpha_trajectories.png, alpha_heatmap.png, summary.json")
    return summary


if __name__ == "__main__":
    main()
