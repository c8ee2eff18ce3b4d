"""The accuracy/latency front from one search: shared weights trained once, one architecture search per target.

Procedure of `pareto_front`:
1. one latency table for the space (given, or measured once), shared by every target;
2. the supernet's weights are trained once, alone: `warmup_epochs` epochs of weight steps with the
   architecture distribution left uniform (the strategy's warm-up covers every epoch), so every
   option's weights are trained alike;
3. for each target T, a search of `epochs` epochs starts from those weights (fresh, uniform logits)
   with `cost_target=T`, and its selection is brought within T (`CostPenalty.within_target`);
4. each exported architecture (with its inherited weights) is measured end to end, all of them in
   interleaved rounds, and its predicted and measured latency are recorded in `result.config`
   (`predicted_latency_ms`, `measured_latency_ms`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from supernet.cost import architecture_cost
from supernet.latency import LatencyTable, MeasureSettings, example_input, measure_modules
from supernet.node import Node

from .fit import fit_supernet
from .loaders import Data
from .result import SearchResult
from .strategies import DEFAULT_STRATEGY, Strategy, get_strategy


def pareto_front(
    space: Node,
    train: Data,
    val: Optional[Data] = None,
    *,
    targets: Sequence[float],
    cost: str = "latency",
    epochs: int,
    warmup_epochs: Optional[int] = None,
    strategy: Union[str, Strategy] = DEFAULT_STRATEGY,
    latency_table: Optional[LatencyTable] = None,
    measure_settings: Optional[MeasureSettings] = None,
    **fit_kwargs: Any,
) -> list[SearchResult]:
    """One search result per target (in the order of `targets`, ms per forward pass at the table's
    batch size), all starting from the same shared weights trained once for `warmup_epochs`
    (default: `epochs`); `fit_kwargs` go to every `fit_supernet` call (seed, batch_size, optim,
    cost_weight, device...). See the module docstring for the procedure."""
    if cost != "latency":
        raise ValueError(f"pareto_front prices latency: cost must be 'latency', got {cost!r}")
    if not targets or any(not isinstance(t, (int, float)) or isinstance(t, bool) or t <= 0 for t in targets):
        raise ValueError(f"targets must be a non-empty sequence of positive latencies in ms, got {targets!r}")
    for reserved in ("cost_target", "initial_state", "epochs"):
        if reserved in fit_kwargs:
            raise TypeError(f"pareto_front sets {reserved} itself; do not pass it")
    warmup_epochs = epochs if warmup_epochs is None else warmup_epochs
    progress = fit_kwargs.get("progress", True)
    if latency_table is None:
        device = fit_kwargs.get("device")
        latency_table = LatencyTable.measure(space, device=device if device is not None else "cpu", progress=progress)
    fit_kwargs.setdefault("cost_weight", 1.0)

    shared = copy.deepcopy(get_strategy(strategy))
    shared.warmup_epochs = warmup_epochs  # weight steps only, the distribution stays uniform
    # weights only: its uniform distribution is no selection, so there is nothing to call undecided
    trained = fit_supernet(
        space,
        train,
        val,
        strategy=shared,
        epochs=warmup_epochs,
        **{k: v for k, v in fit_kwargs.items() if k not in ("cost_weight", "on_undecided")},
        on_undecided="ignore",
    )
    results = [
        fit_supernet(
            space,
            train,
            val,
            strategy=strategy,
            epochs=epochs,
            cost=cost,
            cost_target=float(target),
            latency_table=latency_table,
            initial_state=trained.supernet_state,
            **fit_kwargs,
        )
        for target in targets
    ]

    modules = [result.export(inherit_weights=True) for result in results]
    measured = measure_modules(
        modules,
        example_input(space, latency_table.key.batch_size),
        device=fit_kwargs.get("device"),
        threads=latency_table.key.threads,
        settings=measure_settings,
        progress=progress,
    )
    for result, ms in zip(results, measured):
        result.config["predicted_latency_ms"] = architecture_cost(result.discretized(), "latency", table=latency_table)
        result.config["measured_latency_ms"] = ms
        result.config["shared_weight_epochs"] = warmup_epochs
    return results


Accuracy = Union[Sequence[float], Callable[[SearchResult], float], None]


def plot_pareto(
    results: Sequence[SearchResult],
    path: Union[str, Path, None] = None,
    accuracy: Accuracy = None,
    latency: Optional[Sequence[float]] = None,
    title: str = "accuracy / latency front",
):
    """Accuracy against measured latency, one labelled point per result (its target), the points
    joined in latency order. `accuracy`: one value per result, a function of a result, or None for
    each result's last validation accuracy; `latency`: one value per result, or None for the
    `measured_latency_ms` that `pareto_front` records. Saves to `path` when given; returns the figure."""
    if not results:
        raise ValueError("plot_pareto needs at least one search result")
    accuracies = _accuracies(results, accuracy)
    if latency is None:
        missing = [i for i, r in enumerate(results) if "measured_latency_ms" not in r.config]
        if missing:
            raise ValueError(f"results {missing} carry no measured_latency_ms (from pareto_front); pass latency=")
        latency = [r.config["measured_latency_ms"] for r in results]
    if len(latency) != len(results):
        raise ValueError(f"latency has {len(latency)} values for {len(results)} results")
    import matplotlib.pyplot as plt  # imported when drawing: `import search` stays fast

    fig, ax = plt.subplots(figsize=(5.5, 4))
    order = sorted(range(len(results)), key=lambda i: latency[i])
    ax.plot([latency[i] for i in order], [accuracies[i] for i in order], "-", color="0.7", zorder=1)
    ax.scatter(latency, accuracies, zorder=2)
    for i, result in enumerate(results):
        target = result.config.get("cost_target")
        label = f"T={target:.3g} ms" if isinstance(target, (int, float)) else f"#{i}"
        ax.annotate(label, (latency[i], accuracies[i]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("measured latency (ms per forward pass)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def _accuracies(results: Sequence[SearchResult], accuracy: Accuracy) -> list[float]:
    if accuracy is None:
        values = []
        for i, result in enumerate(results):
            last = result.metrics[-1] if result.metrics else {}
            if "val_accuracy" not in last:
                raise ValueError(f"result {i} logs no val_accuracy; pass accuracy= (values or a function of a result)")
            values.append(float(last["val_accuracy"]))
        return values
    if callable(accuracy):
        return [float(accuracy(r)) for r in results]
    if len(accuracy) != len(results):
        raise ValueError(f"accuracy has {len(accuracy)} values for {len(results)} results")
    return [float(a) for a in accuracy]
