"""The accuracy/latency front from one search: shared weights trained once, one architecture search per target.

Procedure of `pareto_front`:
1. one latency table for the space (given, or measured once), shared by every target;
2. the supernet's weights are trained once, alone: `warmup_epochs` epochs of weight steps with the
   architecture distribution left uniform (the strategy's warm-up covers every epoch), so every
   option's weights are trained alike;
3. for each target T, a search of `epochs` epochs starts from those weights (fresh, uniform logits)
   with `cost_target=T`, and its selection is brought within T (`CostPenalty.within_target`);
4. each exported architecture (with its inherited weights) is re-measured end to end at the end,
   all of them in interleaved rounds, with the table's protocol (its `MeasureSettings`: rounds,
   block, quantile, clock) unless `measure_settings` is given, and both numbers are recorded in
   `result.config`, each with its spread over the rounds (lower and upper quartile, ms):
   `predicted_latency_ms` and `predicted_latency_spread_ms` (every op at the quartiles of the
   table's rounds; None for a table without spreads), `measured_latency_ms` and
   `measured_latency_spread_ms`, `measure_rounds`; `measured_over_target` is True where the
   re-measurement exceeds the target, which `over_target="warn"` (the default) also says in an
   `OverTargetWarning` (the machine's load, or what the table cannot see, moved it over).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch

from supernet.cost import architecture_cost
from supernet.latency import LatencyTable, MeasureSettings, example_input, interleaved_samples, module_calls, spread_ms
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
    over_target: str = "warn",
    **fit_kwargs: Any,
) -> list[SearchResult]:
    """One search result per target (in the order of `targets`, ms per forward pass at the table's
    batch size), all starting from the same shared weights trained once for `warmup_epochs`
    (default: `epochs`); `fit_kwargs` go to every `fit_supernet` call (seed, batch_size, optim,
    cost_weight, device...). `over_target`: "warn" or "ignore" when a pick's re-measured latency
    exceeds its target (it is recorded either way). See the module docstring for the procedure."""
    if over_target not in OVER_TARGET:
        raise ValueError(f"over_target must be one of {OVER_TARGET}, got {over_target!r}")
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
    settings = measure_settings if measure_settings is not None else table_protocol(latency_table)
    device = fit_kwargs.get("device")
    calls = module_calls(modules, example_input(space, latency_table.key.batch_size), device)
    rounds = interleaved_samples(
        calls,
        latency_table.key.threads,
        settings,
        progress,
        "end-to-end latency",
        torch.device(device) if device is not None else torch.device("cpu"),
    )
    for result, samples in zip(results, rounds):
        fixed = result.discretized()
        spread = latency_table.predict_spread(fixed)
        measured = float(np.quantile(samples, settings.quantile)) * 1e3
        result.config.update(
            predicted_latency_ms=architecture_cost(fixed, "latency", table=latency_table),
            predicted_latency_spread_ms=None if spread is None else list(spread),
            measured_latency_ms=measured,
            measured_latency_spread_ms=list(spread_ms(samples)),
            measure_rounds=settings.rounds,
            measured_over_target=measured > result.config["cost_target"],
            shared_weight_epochs=warmup_epochs,
        )
    over = [r for r in results if r.config["measured_over_target"]]
    if over and over_target == "warn":
        warnings.warn(over_target_message(over), OverTargetWarning, stacklevel=2)
    return results


OVER_TARGET = ("warn", "ignore")


class OverTargetWarning(RuntimeWarning):
    """A pick of `pareto_front`, within its target as predicted, re-measures over it."""


def table_protocol(table: LatencyTable) -> MeasureSettings:
    """The `MeasureSettings` the table was measured with (the defaults for a table that records none)."""
    known = {f.name for f in dataclasses.fields(MeasureSettings)}
    return MeasureSettings(**{k: v for k, v in table.settings.items() if k in known})


def over_target_message(results: Sequence[SearchResult]) -> str:
    """What `OverTargetWarning` says: per pick over its target, the target, prediction and re-measurement."""

    def spread(values: Optional[Sequence[float]]) -> str:
        return "" if values is None else f" (quartiles {values[0]:.3g}-{values[1]:.3g})"

    picks = "; ".join(
        f"target {r.config['cost_target']:.3g} ms: predicted {r.config['predicted_latency_ms']:.3g}"
        f"{spread(r.config['predicted_latency_spread_ms'])}, re-measured {r.config['measured_latency_ms']:.3g}"
        f"{spread(r.config['measured_latency_spread_ms'])} over {r.config['measure_rounds']} rounds"
        for r in results
    )
    return (
        f"{len(results)} pick(s) of pareto_front re-measure over their latency target: {picks}. The table's "
        "prediction missed what the exported module does, or the machine's load changed between the table and "
        "the re-measurement (a loaded machine: a lower MeasureSettings.quantile, or measure again when it is idle)"
    )


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
    `measured_latency_ms` that `pareto_front` records. With those, each point also shows its
    re-measured spread (error bar), its prediction with the table's spread (hollow marker), and a
    pick that re-measured over its target is labelled so, in red. Saves to `path` when given;
    returns the figure."""
    if not results:
        raise ValueError("plot_pareto needs at least one search result")
    accuracies = _accuracies(results, accuracy)
    if latency is None:
        missing = [i for i, r in enumerate(results) if "measured_latency_ms" not in r.config]
        if missing:
            raise ValueError(f"results {missing} carry no measured_latency_ms (from pareto_front); pass latency=")
        latency = [r.config["measured_latency_ms"] for r in results]
    measured = list(latency) == [r.config.get("measured_latency_ms") for r in results]
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
        over = measured and result.config.get("measured_over_target")
        if over:
            label += " (re-measured over T)"
        ax.annotate(
            label,
            (latency[i], accuracies[i]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
            color=OVER_COLOR if over else "black",
        )
        if measured:
            _spreads(ax, result.config, accuracies[i])
    if measured and any("predicted_latency_ms" in r.config for r in results):
        ax.legend(fontsize=7, loc="best", framealpha=0.8)
    ax.set_xlabel("measured latency (ms per forward pass)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


OVER_COLOR = "tab:red"
MEASURED_SPREAD_LABEL = "re-measured (quartiles over the rounds)"
PREDICTED_LABEL = "predicted (table's quartiles)"


def _range_bar(ax: Any, value_range: Sequence[float], accuracy: float, label: str, color: str) -> None:
    """A horizontal bar over exactly `value_range` (lower, upper quartile). It is drawn about the range's
    middle, not about the point's latency: the point is the protocol's quantile (`MeasureSettings.quantile`,
    possibly the minimum), which need not lie between the quartiles."""
    low, high = value_range
    middle = (low + high) / 2
    ax.errorbar(
        [middle], [accuracy], xerr=[[middle - low], [high - middle]], fmt="none", ecolor=color, capsize=3, label=label
    )


def _spreads(ax: Any, config: dict[str, Any], accuracy: float) -> None:
    """A pick's re-measured spread (bar) and its prediction (hollow marker) with the table's spread (bar)."""
    spread = config.get("measured_latency_spread_ms")
    if spread is not None:
        first = not any(c.get_label() == MEASURED_SPREAD_LABEL for c in ax.containers)
        _range_bar(ax, spread, accuracy, MEASURED_SPREAD_LABEL if first else "_", "tab:blue")
    if "predicted_latency_ms" in config:
        predicted, band = config["predicted_latency_ms"], config.get("predicted_latency_spread_ms")
        first = not any(c.get_label() == PREDICTED_LABEL for c in ax.containers)
        if band is not None:
            _range_bar(ax, band, accuracy, PREDICTED_LABEL if first else "_", "0.45")
        ax.plot([predicted], [accuracy], "o", mfc="none", color="0.45", label="_")


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
