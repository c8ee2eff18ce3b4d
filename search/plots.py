"""Plots of the architecture search: alpha trajectories and the final distribution as a heat map.

Every panel (trajectories) and row (heat map) is labelled with its own choice's options, so a
width parameter reads `width=8, width=16, ...` beside an op choice's `conv3, maxpool, ...`; the
selected option is marked (thick line and star; outlined cell).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from .switch_labels import short_id


def plot_alpha_trajectories(source: Any, path: Union[str, Path, None] = None, columns: int = 3):
    """One panel per choice: the probability of each option against the step, with the panel's own
    legend; the selected option is drawn thick with a star at its last value. `source` is a
    SearchResult (its selection is marked) or its `history` dict (the final argmax is marked)."""
    history, selected = _history_and_selection(source)
    switches = list(history["probabilities"])
    if not switches:
        raise ValueError("the history records no switch: the space has no ChoiceOp")
    columns = min(columns, len(switches))
    rows = math.ceil(len(switches) / columns)
    import matplotlib.pyplot as plt  # imported when drawing: `import search` stays fast

    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.9 * rows), squeeze=False, sharex=True)
    steps = history["steps"]
    for ax, sid in zip(axes.flat, switches):
        series = history["probabilities"][sid]
        names = _names(history.get("options", {}), sid, len(series[0]))
        winner = selected.get(sid, max(range(len(series[-1])), key=lambda i: series[-1][i]))
        for i, name in enumerate(names):
            line, = ax.plot(steps, [p[i] for p in series], label=name, linewidth=2.6 if i == winner else 1.0,
                            zorder=3 if i == winner else 2)
            if i == winner:  # a scatter, not a line: the panel's lines stay one per option
                ax.scatter([steps[-1]], [series[-1][i]], marker="*", s=110, color=line.get_color(), zorder=4)
        title = f"{short_id(sid)}\nselected: {names[winner]} (p={series[-1][winner]:.2f})"
        ax.set_title(title, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probability", fontsize=8)
        ax.legend(fontsize=6.5, loc="upper left", frameon=False, ncol=2 if len(names) > 4 else 1)
    for ax in list(axes.flat)[len(switches):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_alpha_heatmap(result: Any, path: Union[str, Path, None] = None):
    """Choices (rows) x options (columns): the final probabilities, each cell labelled with its
    row's own option (column headers only when every row has the same options), the selected
    option outlined."""
    probabilities: dict = result.probabilities
    names: Mapping = getattr(result, "option_names", None) or {}
    selected = _selected_positions(result)
    switches = list(probabilities)
    width = max(len(p) for p in probabilities.values())
    labels = {sid: _names(names, sid, len(probabilities[sid])) for sid in switches}
    shared = len({tuple(labels[sid]) for sid in switches}) == 1
    grid = [[p[i] if i < len(p) else float("nan") for i in range(width)] for p in probabilities.values()]
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(1.3 * width + 3, 0.5 * len(switches) + 1.6))
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    if shared:
        ax.set_xticks(range(width), labels[switches[0]], rotation=30, ha="right", fontsize=8)
    else:
        ax.set_xticks(range(width), [f"option {i + 1}" for i in range(width)], fontsize=8)
    ax.set_yticks(range(len(switches)), [short_id(s) for s in switches], fontsize=8)
    for r, sid in enumerate(switches):
        row = grid[r]
        best = selected.get(sid, max(range(len(row)), key=lambda i: row[i] if row[i] == row[i] else -1))
        for c, value in enumerate(row):
            if value != value:
                continue
            text = f"{value:.2f}" if shared else f"{labels[sid][c]}\n{value:.2f}"
            ax.text(c, r, text, ha="center", va="center", fontsize=6.5 if not shared else 7,
                    color="white" if value < 0.6 else "black", fontweight="bold" if c == best else None)
        ax.add_patch(Rectangle((best - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.2))
    ax.set_title("final probabilities (selected option outlined)", fontsize=9)
    fig.colorbar(image, ax=ax, label="probability")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _names(option_names: Mapping, sid: str, count: int) -> list[str]:
    names = option_names.get(sid)
    return list(names) if names and len(names) == count else [str(i) for i in range(count)]


def _history_and_selection(source: Any) -> tuple[dict, dict[str, int]]:
    """(history dict, switch id -> position of the selected option) of a SearchResult or a history."""
    if isinstance(source, Mapping):
        return dict(source), {}
    return source.history, _selected_positions(source)


def _selected_positions(result: Any) -> dict[str, int]:
    """Switch id -> position (in its probability list) of the option `result.architecture` selects."""
    architecture: Optional[Mapping] = getattr(result, "architecture", None)
    values: Mapping = getattr(result, "option_values", None) or {}
    positions = {}
    for sid, choice in (architecture or {}).items():
        slots = values.get(sid)
        if slots is not None and choice in slots:
            positions[sid] = list(slots).index(choice)
    return positions
