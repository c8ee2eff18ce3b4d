"""Plots of the architecture search: alpha trajectories and the final distribution as a heat map."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Union

import matplotlib.pyplot as plt


def _short(switch_id: str) -> str:
    """A panel title: the id without its space prefix and without a trailing `ChoiceOp_k.choice`."""
    parts = switch_id.split(".")[1:] or switch_id.split(".")
    if len(parts) >= 2 and parts[-1] == "choice" and parts[-2].startswith("ChoiceOp_"):
        parts = parts[:-2] or parts
    return ".".join(parts[-3:])


def plot_alpha_trajectories(history: dict[str, Any], path: Union[str, Path, None] = None, columns: int = 3):
    """One panel per switch: the probability of each option against the step, options labelled."""
    switches = list(history["probabilities"])
    if not switches:
        raise ValueError("the history records no switch: the space has no ChoiceOp")
    columns = min(columns, len(switches))
    rows = math.ceil(len(switches) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False, sharex=True)
    steps = history["steps"]
    for ax, sid in zip(axes.flat, switches):
        series = history["probabilities"][sid]
        names = history.get("options", {}).get(sid) or [str(i) for i in range(len(series[0]))]
        for i, name in enumerate(names):
            ax.plot(steps, [p[i] for p in series], label=name)
        ax.set_title(_short(sid), fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability", fontsize=8)
    for ax in list(axes.flat)[len(switches):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(6, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_alpha_heatmap(result: Any, path: Union[str, Path, None] = None):
    """Switches (rows) x options (columns): the final probabilities, argmax marked."""
    probabilities: dict = result.probabilities
    names: Optional[dict] = getattr(result, "option_names", None)
    switches = list(probabilities)
    width = max(len(p) for p in probabilities.values())
    grid = [[p[i] if i < len(p) else float("nan") for i in range(width)] for p in probabilities.values()]
    fig, ax = plt.subplots(figsize=(1.2 * width + 3, 0.45 * len(switches) + 1.5))
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    column_names = names[switches[0]] if names and switches[0] in names else [str(i) for i in range(width)]
    ax.set_xticks(range(width), column_names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(switches)), [_short(s) for s in switches], fontsize=8)
    for r, row in enumerate(grid):
        best = max(range(len(row)), key=lambda i: row[i] if row[i] == row[i] else -1)
        for c, value in enumerate(row):
            if value == value:
                ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black", fontweight="bold" if c == best else None)
    fig.colorbar(image, ax=ax, label="probability")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
