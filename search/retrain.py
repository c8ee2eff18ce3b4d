"""Training an exported architecture from scratch (or fine-tuning it) and measuring test accuracy."""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
from tqdm import tqdm

from .evaluate import evaluate_module
from .fit import seed_everything
from .loaders import Data, as_loader, move
from .precision import MixedPrecision, check_precision


def train_classifier(
    model: torch.nn.Module,
    train: Data,
    test: Data,
    *,
    epochs: int,
    batch_size: int = 64,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    seed: int = 0,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    precision: str = "32",
) -> dict[str, Any]:
    """Train `model` with AdamW and a cosine schedule on cross-entropy; returns the per-epoch
    train loss and the final test accuracy (`test_accuracy`). `precision`: "32", "bf16-mixed" or
    "16-mixed" (with a gradient scaler), as in `fit_supernet` (search.precision); the test
    accuracy is measured at the same precision."""
    seed_everything(seed)
    device = torch.device(device) if device is not None else torch.device("cpu")
    amp = MixedPrecision(check_precision(precision, device), device.type)
    model = model.to(device)
    train_loader = as_loader(train, batch_size, shuffle=True, seed=seed, argument="train")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(train_loader))
    losses = []
    for _ in tqdm(range(epochs), desc="retrain", disable=not progress, leave=False):
        model.train()
        total, count = 0.0, 0
        for batch in train_loader:
            x, y = move(batch, device)
            optimizer.zero_grad(set_to_none=True)
            with amp.autocast():
                logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits.float(), y)
            amp.backward(loss, [p for p in model.parameters() if p.requires_grad], "weight")
            amp.unscale(optimizer, "weight")
            amp.step(optimizer, "weight", loss)
            scheduler.step()
            total, count = total + loss.item(), count + 1
        losses.append(total / count)
    accuracy = evaluate_accuracy(model, test, batch_size=256, device=device, precision=precision)
    return {"train_loss": losses, "test_accuracy": accuracy}


def evaluate_accuracy(
    model: torch.nn.Module,
    data: Data,
    batch_size: int = 256,
    device: Optional[torch.device] = None,
    precision: str = "32",
) -> float:
    """Top-1 accuracy of `model` (in eval mode) on `data`, its forward passes at `precision`."""
    return evaluate_module(model, data, batch_size, device, precision)["accuracy"]
