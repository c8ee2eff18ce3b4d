"""fit_supernet: the differentiable search, end to end."""
from __future__ import annotations

import copy
import re
import random
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torchmetrics
from tqdm.auto import tqdm

from supernet import SupernetExecutor, lazy
from supernet.node import Node

from .bilevel import BilevelConfig, BilevelOptimizer
from .history import AlphaHistory
from .loaders import Data, as_loader, infinite, move, split_in_halves
from .result import SearchResult
from .strategies import Strategy, get_strategy

Callback = Callable[[dict[str, Any]], Optional[bool]]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit_supernet(
    space: Node,
    train: Data,
    val: Optional[Data] = None,
    *,
    strategy: Union[str, Strategy] = "darts",
    epochs: int,
    batch_size: int = 64,
    loss: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
    metrics: Optional[Sequence[torchmetrics.Metric]] = None,
    seed: int = 0,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    callbacks: Optional[Sequence[Callback]] = None,
    optim: Union[BilevelConfig, dict, None] = None,
    record_every: int = 1,
) -> SearchResult:
    """Search the architecture of `space` (its output node) by bilevel optimisation.

    `train`/`val` are (x, y) tensor pairs, Datasets or DataLoaders; `val=None` splits `train` in two
    halves. Each step updates the alphas on a validation batch, then the weights on a training
    batch. `metrics` are torchmetrics objects (default: accuracy when the loss is cross-entropy).
    `callbacks` are called after every epoch with a dict of the run's state; one returning True
    stops the search. Returns a SearchResult whose `export()` gives the argmax architecture.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    seed_everything(seed)
    strategy = copy.deepcopy(get_strategy(strategy))  # schedules mutate it; the caller's stays as given
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if val is None:
        train, val = split_in_halves(train, seed)
    train_loader = as_loader(train, batch_size, shuffle=True, seed=seed, argument="train")
    val_loader = as_loader(val, batch_size, shuffle=True, seed=seed + 1, argument="val")
    if len(train_loader) == 0:
        raise ValueError("train yields no batch")

    supernet = SupernetExecutor(space, mixture=strategy.mixture(), seed=seed).to(device)
    loss_fn = loss if loss is not None else torch.nn.functional.cross_entropy
    meters = _metric_set(space, metrics, loss is None)
    train_meters = {k: m.clone().to(device) for k, m in meters.items()}
    val_meters = {k: m.clone().to(device) for k, m in meters.items()}
    config = BilevelConfig.from_any(optim)
    bilevel = BilevelOptimizer(supernet, loss_fn, config, epochs)
    history = AlphaHistory(supernet)
    val_stream = infinite(val_loader)
    epoch_metrics: list[dict[str, float]] = []
    step = 0
    history.record(step, 0, supernet)

    bar = tqdm(range(epochs), desc="search", disable=not progress, leave=False)
    for epoch in bar:
        strategy.on_epoch_start(epoch, epochs, supernet)
        sums = {"train_loss": 0.0, "val_loss": 0.0}
        counts = {"train_loss": 0, "val_loss": 0}
        for batch in train_loader:
            train_batch = move(batch, device)
            val_batch = move(next(val_stream), device)
            if strategy.searches_architecture(epoch):
                val_loss, val_logits = strategy.architecture_step(bilevel, train_batch, val_batch)
            else:
                with torch.no_grad():
                    supernet.train()
                    val_logits = supernet(val_batch[0])
                    val_loss = loss_fn(val_logits, val_batch[1])
            _update(val_meters, val_logits, val_batch[1])
            sums["val_loss"] += float(val_loss)
            counts["val_loss"] += 1
            train_loss, train_logits = bilevel.weight_step(*train_batch)
            _update(train_meters, train_logits, train_batch[1])
            sums["train_loss"] += float(train_loss)
            counts["train_loss"] += 1
            step += 1
            if step % record_every == 0:
                history.record(step, epoch, supernet)
        bilevel.end_epoch()
        row = {"epoch": epoch, **{k: sums[k] / max(1, counts[k]) for k in sums}}
        row.update({f"train_{k}": float(m.compute()) for k, m in train_meters.items()})
        row.update({f"val_{k}": float(m.compute()) for k, m in val_meters.items()})
        for m in (*train_meters.values(), *val_meters.values()):
            m.reset()
        epoch_metrics.append(row)
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "epoch"})
        state = {"epoch": epoch, "metrics": row, "probabilities": supernet.probabilities(), "supernet": supernet, "strategy": strategy}
        if any(callback(state) for callback in (callbacks or [])):
            break
    bar.close()

    return SearchResult(
        architecture=strategy.select(supernet),
        probabilities=supernet.probabilities(),
        history=history.as_dict(),
        metrics=epoch_metrics,
        option_names=supernet.option_names(),
        config={"strategy": strategy.config(), "epochs": epochs, "batch_size": batch_size, "seed": seed, "optim": vars(config)},
        supernet_state={k: v.detach().cpu().clone() for k, v in supernet.state_dict().items()},
        space=space,
    )


def _metric_set(space: Node, metrics: Optional[Sequence[torchmetrics.Metric]], cross_entropy: bool) -> dict[str, torchmetrics.Metric]:
    if metrics is not None:
        return {_metric_name(m): m for m in metrics}
    if not cross_entropy:
        return {}
    num_classes = int(lazy(space.shape())[-1])
    return {"accuracy": torchmetrics.classification.MulticlassAccuracy(num_classes=num_classes, average="micro")}


def _metric_name(metric: torchmetrics.Metric) -> str:
    name = re.sub(r"^(Multiclass|Binary|Multilabel)", "", type(metric).__name__)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _update(meters: dict[str, torchmetrics.Metric], logits: torch.Tensor, target: torch.Tensor) -> None:
    for meter in meters.values():
        meter.update(logits, target)
