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

from .confidence import evidence_index
from .switch_labels import short_id

DECISION_LABEL = "decision phase"
WARMUP_LABEL = "warm-up"
RESUME_LABEL = "resumed"
UNDECIDED_LABEL = "undecided"
UNDECIDED_COLOR = "darkorange"
DROPPED_LABEL = "input dropped by the space's rule"
WEIGHTS_ONLY_TITLE = "weights-only search (uniform sampling, no architecture learned)"
EVIDENCE_TITLE = "before the decision phase"
MAX_PANELS = 12  # more choices than this are grouped by scope
PANEL_SIZE = (4.2, 2.9)  # inches per trajectory panel: the readable minimum, kept however many panels
FINAL_TITLE = "final probabilities (selected option outlined)"


def plot_alpha_trajectories(
    source: Any,
    path: Union[str, Path, None] = None,
    columns: int = 3,
    warmup_epochs: Optional[int] = None,
    max_panels: int = MAX_PANELS,
):
    """One panel per choice: the probability of each option against the step, with the panel's own
    legend; the selected option is drawn thick with a star at its last value. `source` is a
    SearchResult (its selection is marked) or its `history` dict (the final argmax is marked).

    Every panel marks the phases of the search (`search_phases`): the warm-up epochs shaded, the
    decision phase's start and any resume point as labelled vertical lines. `warmup_epochs`
    defaults to the result's `config["strategy"]["warmup_epochs"]` (0 for a bare history).

    More than `max_panels` choices are grouped by scope (`trajectory_groups`: DARTS's normal and
    reduction cell, NB201's cells, a network's blocks): each group starts its own rows under a
    heading, panels titled within it, every panel at its full size (`plot_alpha_trajectory_groups`
    draws one figure per group instead). A weights-only result (SPOS, FairNAS) gets a figure that
    says so (`WEIGHTS_ONLY_TITLE`): uniform sampling has no trajectory to show."""
    if weights_only(source):
        return _save(_weights_only_figure(source), path)
    history, selected = _history_and_selection(source)
    if warmup_epochs is None:
        warmup_epochs = _warmup_epochs(source)
    switches = list(history["probabilities"])
    if not switches:
        raise ValueError("the history records no switch: the space has no ChoiceOp")
    groups = trajectory_groups(switches) if len(switches) > max_panels else {"": switches}
    import matplotlib.pyplot as plt  # imported when drawing: `import search` stays fast

    columns = max(1, min(columns, max(len(g) for g in groups.values())))
    rows = [math.ceil(len(g) / columns) for g in groups.values()]
    heading = 0.35 if len(groups) > 1 else 0.0  # inches per group heading
    fig = plt.figure(figsize=(PANEL_SIZE[0] * columns, sum(PANEL_SIZE[1] * r + heading for r in rows)))
    if len(groups) == 1:
        sections = [fig]
    else:
        sections = list(fig.subfigures(len(groups), 1, height_ratios=[PANEL_SIZE[1] * r + heading for r in rows]))
    phases = search_phases(history, warmup_epochs)
    for section, (name, members), count in zip(sections, groups.items(), rows):
        axes = section.subplots(count, columns, squeeze=False, sharex=True)
        _trajectory_panels(axes, members, history, selected, phases, strip=name, dropped=dropped_switches(source))
        if len(groups) > 1:
            section.suptitle(f"{name or 'top level'}: {len(members)} choices", fontsize=10, fontweight="bold")
    if len(groups) == 1:
        fig.tight_layout()
    else:
        fig.set_layout_engine("constrained")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_alpha_trajectory_groups(
    source: Any, path: Union[str, Path, None] = None, columns: int = 3, warmup_epochs: Optional[int] = None
) -> dict[str, Any]:
    """One trajectory figure per group of `trajectory_groups` (scope -> figure); with `path`, each
    is saved beside it as `<stem>_<scope><suffix>` (e.g. `alphas_normal_cell_0.png`)."""
    if weights_only(source):
        return {"": _save(_weights_only_figure(source), path)}
    history, _ = _history_and_selection(source)
    figures = {}
    for name, members in trajectory_groups(list(history["probabilities"])).items():
        part = dict(history, probabilities={sid: history["probabilities"][sid] for sid in members})
        view = part if isinstance(source, Mapping) else _Subset(source, part)
        target = None if path is None else Path(path).with_name(f"{Path(path).stem}_{name or 'top'}{Path(path).suffix}")
        figures[name] = plot_alpha_trajectories(view, target, columns, warmup_epochs, max_panels=len(members))
    return figures


def trajectory_groups(switch_ids: Sequence[str]) -> dict[str, list[str]]:
    """Switch ids grouped by the scope they live in: the first segment of their `short_id` when it
    has several (`normal_cell_0.edge_0to2_0` -> `normal_cell_0`), else "" (the space's top level);
    groups in order of first appearance."""
    groups: dict[str, list[str]] = {}
    for sid in switch_ids:
        parts = short_id(sid).split(".")
        groups.setdefault(parts[0] if len(parts) > 1 else "", []).append(sid)
    return groups


class _Subset:
    """A SearchResult seen through another history (a group of its choices)."""

    def __init__(self, result: Any, history: Mapping[str, Any]) -> None:
        self.history, self.architecture = history, result.architecture
        self.option_values, self.config = result.option_values, result.config
        self.confidence = getattr(result, "confidence", {})


def _trajectory_panels(
    axes: Any,
    switches: Sequence[str],
    history: Mapping[str, Any],
    selected: Mapping[str, int],
    phases: Mapping[str, Any],
    strip: str,
    dropped: Sequence[str] = (),
) -> None:
    """Draw one trajectory panel per switch into `axes` (a grid); titles drop the group's `strip` prefix."""
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
        label = short_id(sid)
        if strip and label.startswith(strip + "."):
            label = label[len(strip) + 1 :]
        why = f"; {DROPPED_LABEL}" if sid in dropped else ""
        ax.set_title(f"{label}\nselected: {names[winner]} (p={series[-1][winner]:.2f}{why})", fontsize=8)
        peak = max(max(p) for p in series)
        # probabilities that stay low (DARTS's 8 ops near 1/8) get a zoomed axis, said in the label
        ax.set_ylim(0, 1 if peak > 0.6 else math.ceil(12.5 * peak) / 10)
        _mark_phases(ax, phases)
        ax.set_ylabel("probability", fontsize=8)
        ax.legend(fontsize=6.5, loc="upper left", frameon=False, ncol=2 if len(names) > 4 else 1)
    for ax in list(axes.flat)[len(switches) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("step")


def plot_alpha_heatmap(result: Any, path: Union[str, Path, None] = None):
    """Choices (rows) x options (columns): the final probabilities, each cell labelled with its
    row's own option (column headers only when every row has the same options), the selected
    option outlined, undecided choices marked (orange label, dashed outline), edges the space's
    derivation rule dropped (DARTS: outside their node's top-2 inputs) labelled `[dropped]`.

    After a decision phase (which drives every final probability towards 1, decided or not) a
    first panel shows the evidence: the probabilities at the last recorded step before the phase
    (`search.confidence.evidence_index`), with the same marks. A weights-only result (SPOS,
    FairNAS: uniform sampling, no architecture) gets a figure that says so (`WEIGHTS_ONLY_TITLE`)."""
    if weights_only(result):
        return _save(_weights_only_figure(result), path)
    probabilities: dict = result.probabilities
    names: Mapping = getattr(result, "option_names", None) or {}
    selected = _selected_positions(result)
    switches = list(probabilities)
    width = max(len(p) for p in probabilities.values())
    labels = {sid: _names(names, sid, len(probabilities[sid])) for sid in switches}
    undecided, dropped = undecided_switches(result), dropped_switches(result)
    history = getattr(result, "history", None) or {}
    before = evidence_index(history)
    series = history.get("probabilities", {})
    panels = []
    if before is not None:
        grid = [
            _row([float("nan")] * len(probabilities[sid]) if sid not in series else series[sid][before], width)
            for sid in switches
        ]
        panels.append((grid, f"{EVIDENCE_TITLE} (step {history['steps'][before]})"))
    panels.append(([_row(probabilities[sid], width) for sid in switches], FINAL_TITLE))
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(panels), figsize=(len(panels) * (1.3 * width + 2.2) + 2.5, 0.5 * len(switches) + 1.8), squeeze=False
    )
    note = f"\n{len(undecided)} of {len(switches)} choices {UNDECIDED_LABEL} (dashed, orange)" if undecided else ""
    if undecided and before is not None:
        note += ", judged on the evidence"
    for k, (ax, (grid, title)) in enumerate(zip(axes[0], panels)):
        image = _heatmap_panel(
            ax, grid, switches, labels, selected, undecided, title + note, row_labels=k == 0, dropped=dropped
        )
    fig.colorbar(image, ax=list(axes[0]), label="probability")
    return _save(fig, path, tight=False)


def _row(probabilities: Sequence[float], width: int) -> list[float]:
    return [float(probabilities[i]) if i < len(probabilities) else float("nan") for i in range(width)]


def _heatmap_panel(
    ax: Any,
    grid: list[list[float]],
    switches: Sequence[str],
    labels: Mapping[str, list[str]],
    selected: Mapping[str, int],
    undecided: Sequence[str],
    title: str,
    row_labels: bool,
    dropped: Sequence[str] = (),
) -> Any:
    """One heat map of `grid` (a row per switch): cells labelled, the selected option outlined."""
    from matplotlib.patches import Rectangle

    width = len(grid[0])
    shared = len({tuple(labels[sid]) for sid in switches}) == 1
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    if shared:
        ax.set_xticks(range(width), labels[switches[0]], rotation=30, ha="right", fontsize=8)
    else:
        ax.set_xticks(range(width), [f"option {i + 1}" for i in range(width)], fontsize=8)
    if row_labels:
        ax.set_yticks(
            range(len(switches)),
            [
                short_id(s)
                + (" [dropped]" if s in dropped else "")
                + (f" ({UNDECIDED_LABEL})" if s in undecided else "")
                for s in switches
            ],
            fontsize=8,
        )
        for label, sid in zip(ax.get_yticklabels(), switches):
            if sid in undecided:
                label.set_color(UNDECIDED_COLOR)
    else:
        ax.set_yticks(range(len(switches)), [""] * len(switches))
    for r, sid in enumerate(switches):
        row = grid[r]
        if all(value != value for value in row):
            continue  # not recorded at that step
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
    ax.set_title(title, fontsize=9)
    return image


def weights_only(source: Any) -> bool:
    """Whether `source` is the result of a strategy that learns no architecture (SPOS, FairNAS):
    it weighed choices (`probabilities`, uniform sampling) but selected none (an empty architecture,
    as `search.selection` hands out for those strategies)."""
    return (
        not isinstance(source, Mapping)
        and not getattr(source, "architecture", None)
        and bool(getattr(source, "probabilities", None))
    )


def _weights_only_figure(result: Any):
    """A figure that says what a weights-only result is, in place of flat uniform panels."""
    import matplotlib.pyplot as plt

    strategy = (getattr(result, "config", None) or {}).get("strategy", {})
    name = strategy.get("name", "this strategy") if isinstance(strategy, Mapping) else str(strategy)
    count = len(result.probabilities)
    fig, ax = plt.subplots(figsize=(7.5, 2.4))
    ax.axis("off")
    ax.set_title(f"{name}: {WEIGHTS_ONLY_TITLE}", fontsize=11)
    ax.text(
        0.5,
        0.45,
        f"{name} trains the shared weights under uniform sampling of its {count} choices:\n"
        "every option keeps p = 1/K, and no architecture is selected or learned.\n"
        "Search one in the trained supernet: search.evolve(result, val_data)\n"
        "(or pick one with result.with_architecture({...})).",
        ha="center",
        va="center",
        fontsize=9,
        transform=ax.transAxes,
    )
    return fig


def _save(fig: Any, path: Union[str, Path, None], tight: bool = True):
    if tight:
        fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
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


def dropped_switches(result: Any) -> list[str]:
    """The switch ids the space's derivation rule set to `none` (`dropped` in `result.confidence`:
    a DARTS edge outside its node's top-2 inputs)."""
    confidence: Mapping = getattr(result, "confidence", None) or {}
    return [sid for sid, entry in confidence.items() if entry.get("dropped")]


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
