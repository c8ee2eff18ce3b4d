"""A small transformer search on MNIST-1D read as a sequence of 40 one-feature tokens.

    python -m search.transformer_demo [--out runs/transformer_demo]

Searches `transformer_space` (per block: attention with 1/2/4 heads or a convolution token mixer,
FFN ratio 1/2/4, pre- or post-normalisation) with DARTS for a few epochs, exports the argmax
architecture, retrains it from scratch and prints its test accuracy. Nothing is downloaded
(MNIST-1D is generated locally). About 2-3 minutes on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from supernet import Tensor

from .datasets import load_mnist1d
from .fit import fit_supernet
from .retrain import train_classifier
from .spaces import transformer_space


def as_tokens(x: torch.Tensor) -> torch.Tensor:
    """MNIST-1D signals (N, 1, 40) as (N, 40, 1): 40 tokens of one feature each."""
    return x.permute(0, 2, 1).contiguous()


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the demo; returns (and, with --out, writes) its summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="directory for summary.json and the saved search result")
    parser.add_argument("--epochs", type=int, default=8, help="search epochs")
    parser.add_argument("--retrain-epochs", type=int, default=20, help="epochs to retrain the exported architecture")
    parser.add_argument(
        "--train-samples", type=int, default=4000, help="MNIST-1D training signals to use (at most 4000)"
    )
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--arch-lr", type=float, default=3e-3, help="alpha learning rate")
    parser.add_argument("--weight-lr", type=float, default=0.05, help="supernet weight learning rate (SGD)")
    parser.add_argument("--retrain-lr", type=float, default=0.01, help="AdamW learning rate of the retraining")
    parser.add_argument("--strategy", default="darts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (small models run fastest with 1)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    (x_train, y_train), (x_test, y_test) = load_mnist1d()
    x_train, y_train = as_tokens(x_train[: args.train_samples]), y_train[: args.train_samples]
    x_test = as_tokens(x_test)
    tokens = Tensor(name="tokens", shape=(1, *x_train.shape[1:]), axis=("N", "T", "C"))
    space = transformer_space(tokens, d_model=args.d_model, blocks=args.blocks, num_classes=10)
    print(
        f"MNIST-1D as {x_train.shape[1]} tokens of {x_train.shape[2]} feature: {len(x_train)} train / {len(x_test)} test; "
        f"transformer space d_model={args.d_model}, {args.blocks} blocks; search {args.epochs} epochs ({args.strategy}), seed {args.seed}"
    )

    start = time.perf_counter()
    result = fit_supernet(
        space,
        (x_train, y_train),
        strategy=args.strategy,
        epochs=args.epochs,
        seed=args.seed,
        progress=not args.no_progress,
        optim={"arch_lr": args.arch_lr, "weight_lr": args.weight_lr},
    )
    search_seconds = time.perf_counter() - start
    print("chosen options:")
    for switch, option in result.chosen_options.items():
        print(f"  {switch}: {option}")

    start = time.perf_counter()
    model = result.export(seed=args.seed)
    retrained = train_classifier(
        model,
        (x_train, y_train),
        (x_test, y_test),
        epochs=args.retrain_epochs,
        lr=args.retrain_lr,
        seed=args.seed,
        progress=not args.no_progress,
    )
    retrain_seconds = time.perf_counter() - start
    summary = {
        "dataset": "mnist1d-tokens",
        "strategy": args.strategy,
        "seed": args.seed,
        "search_epochs": args.epochs,
        "search_seconds": round(search_seconds, 1),
        "retrain_epochs": args.retrain_epochs,
        "retrain_seconds": round(retrain_seconds, 1),
        "chosen_options": result.chosen_options,
        "final_search_metrics": result.metrics[-1],
        "retrained_test_accuracy": retrained["test_accuracy"],
        "exported_parameters": sum(p.numel() for p in model.parameters()),
    }
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result.save(out / "search")
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        print(f"wrote {out}/summary.json and {out}/search/")
    print(
        f"search {search_seconds:.0f} s (final supernet val accuracy {result.metrics[-1].get('val_accuracy', float('nan')):.3f}), "
        f"retrain {retrain_seconds:.0f} s; test accuracy of the retrained architecture: {retrained['test_accuracy']:.4f}"
    )
    return summary


if __name__ == "__main__":
    main()
