"""Plots of the architecture search: alpha trajectories and the final distribution as a heat map.

Every panel (trajectories) and row (heat map) is labelled with its own choice's options, so a
width parameter reads `width=8, width=16, ...` beside an op choice's `conv3, maxpool, ...`; the
selected option is marked (thick line and star; outlined cell).

The trajectories also say what happened during the search: the warm-up epochs (weights only,
the strategy's `warmup_epochs`) are shaded, the decision phase's start (`history["decision_epoch"]`)
and every resume point (`history["resumed_at_step"]`, the step counts at which a search continued
from a checkpoint) are vertical lines with a label. The heat map marks the choices that
`result.confidence` calls undecided: their row label says so, in orange, and their selected cell
is outlined dashed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .switch_labels import short_id

DECISION_LABEL = "decision phase"
WARMUP_LABEL = "warm-up"
RESUME_LABEL = "resumed"
UNDECIDED_LABEL = "undecided"
UNDECIDED_COLOR = "darkorange"


def plot_alpha_trajectories(
    source: Any, path: Union[str, Path, None] = None, columns: int = 3, warmup_epochs: Optional[int] = None
):
    """One panel per choice: the probability of each option against the step, with the panel's own
    legend; the selected option is drawn thick with a star at its last value. `source` is a
    SearchResult (its selection is marked) or its `history` dict (the final argmax is marked).

    Every panel marks the phases of the search (`search_phases`): the warm-up epochs shaded, the
    decision phase's start and any resume point as labelled vertical lines. `warmup_epochs`
    defaults to the result's `config["strategy"]["warmup_epochs"]` (0 for a bare history)."""
    history, selected = _history_and_selection(source)
    if warmup_epochs is None:
        warmup_epochs = _warmup_epochs(source)
    phases = search_phases(history, warmup_epochs)
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
            (line,) = ax.plot(
                steps,
                [p[i] for p in series],
                label=name,
                linewidth=2.6 if i == winner else 1.0,
                zorder=3 if i == winner else 2,
            )
            if i == winner:  # a scatter, not a line: the panel's lines stay one per option
                ax.scatter([steps[-1]], [series[-1][i]], marker="*", s=110, color=line.get_color(), zorder=4)
        title = f"{short_id(sid)}\nselected: {names[winner]} (p={series[-1][winner]:.2f})"
        ax.set_title(title, fontsize=8)
        ax.set_ylim(0, 1)
        _mark_phases(ax, phases)
        ax.set_ylabel("probability", fontsize=8)
        ax.legend(fontsize=6.5, loc="upper left", frameon=False, ncol=2 if len(names) > 4 else 1)
    for ax in list(axes.flat)[len(switches) :]:
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
    undecided = undecided_switches(result)
    ax.set_yticks(
        range(len(switches)),
        [short_id(s) + (f" ({UNDECIDED_LABEL})" if s in undecided else "") for s in switches],
        fontsize=8,
    )
    for label, sid in zip(ax.get_yticklabels(), switches):
        if sid in undecided:
            label.set_color(UNDECIDED_COLOR)
    for r, sid in enumerate(switches):
        row = grid[r]
        best = selected.get(sid, max(range(len(row)), key=lambda i: row[i] if row[i] == row[i] else -1))
        for c, value in enumerate(row):
            if value != value:
                continue
            text = f"{value:.2f}" if shared else f"{labels[sid][c]}\n{value:.2f}"
            ax.text(
                c,
                r,
                text,
                ha="center",
                va="center",
                fontsize=6.5 if not shared else 7,
                color="white" if value < 0.6 else "black",
                fontweight="bold" if c == best else None,
            )
        ax.add_patch(
            Rectangle(
                (best - 0.5, r - 0.5),
                1,
                1,
                fill=False,
                linewidth=2.2,
                edgecolor=UNDECIDED_COLOR if sid in undecided else "red",
                linestyle="--" if sid in undecided else "-",
            )
        )
    title = "final probabilities (selected option outlined)"
    if undecided:
        title += f"\n{len(undecided)} of {len(switches)} choices {UNDECIDED_LABEL} (dashed, orange)"
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="probability")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def search_phases(history: Mapping[str, Any], warmup_epochs: int = 0) -> dict[str, Any]:
    """Where the search's phases lie on the step axis of `history`:
    {"warmup_end": step or None, "decision_start": step or None, "resumed": [steps]}.

    An epoch boundary is the last recorded step before that epoch (the step count at which it
    began when every step is recorded): the end of the `warmup_epochs` and the start of the
    decision phase (`history["decision_epoch"]`, None when the strategy has none). Resume points
    are `history["resumed_at_step"]` (absent: the search never resumed)."""
    if warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
    steps, epochs = list(history.get("steps") or []), list(history.get("epochs") or [])
    decision = history.get("decision_epoch")
    resumed = [int(step) for step in history.get("resumed_at_step") or []]
    return {
        "warmup_end": _epoch_boundary(steps, epochs, warmup_epochs) if warmup_epochs else None,
        "decision_start": None if decision is None else _epoch_boundary(steps, epochs, decision),
        "resumed": resumed,
    }


def undecided_switches(result: Any) -> list[str]:
    """The switch ids `result.confidence` calls undecided (`decided` False), in its order; inactive
    choices (not run by the selected architecture) are not."""
    confidence: Mapping = getattr(result, "confidence", None) or {}
    return [sid for sid, e in confidence.items() if not e.get("decided", True) and e.get("active", True)]


def _epoch_boundary(steps: Sequence[int], epochs: Sequence[int], epoch: int) -> Optional[int]:
    """The last recorded step before `epoch` (None: nothing recorded before it, or it never began)."""
    before = [step for step, e in zip(steps, epochs) if e < epoch]
    if not before or not any(e >= epoch for e in epochs):
        return None
    return before[-1]


def _mark_phases(ax: Any, phases: Mapping[str, Any]) -> None:
    """Shade the warm-up, draw the decision phase's start and the resume points, each labelled at
    the foot of the panel (the lines stay out of the legend: it lists the options alone)."""
    from matplotlib.transforms import blended_transform_factory

    top = blended_transform_factory(ax.transData, ax.transAxes)
    if phases["warmup_end"] is not None:
        ax.axvspan(0, phases["warmup_end"], color="0.85", zorder=0, label="_" + WARMUP_LABEL)
        ax.text(
            phases["warmup_end"] / 2,
            0.03,
            WARMUP_LABEL,
            transform=top,
            ha="center",
            va="bottom",
            fontsize=6.5,
            color="0.3",
        )
    marks = [(phases["decision_start"], DECISION_LABEL, "black", "--")] if phases["decision_start"] is not None else []
    marks += [(step, RESUME_LABEL, "tab:red", ":") for step in phases["resumed"]]
    for step, label, color, style in marks:
        ax.axvline(step, color=color, linestyle=style, linewidth=1.1, zorder=1, label="_" + label)
        ax.text(
            step,
            0.03,
            label,
            transform=top,
            ha="right",
            va="bottom",
            rotation=90,
            fontsize=6.5,
            color=color,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.6},
        )


def _warmup_epochs(source: Any) -> int:
    """The warm-up epochs of a SearchResult's strategy (0 for a history dict or an unknown strategy)."""
    config = getattr(source, "config", None) or {}
    strategy = config.get("strategy") if isinstance(config, Mapping) else None
    return int(strategy.get("warmup_epochs") or 0) if isinstance(strategy, Mapping) else 0


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
