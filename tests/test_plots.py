"""Plots label every panel and row with its own options and mark the selected one (issues 12, 13), and
mark what happened: warm-up, the decision phase, resume points, undecided choices (issue 24)."""

import functools

import matplotlib
import pytest
import torch

from ops import AdaptiveAvgPooling, Flatten, MaxPooling, conv1d, linear
from search import SearchResult, fit_supernet, plot_alpha_heatmap, plot_alpha_trajectories
from search.confidence import evidence_index
from search.plots import (
    DECISION_LABEL,
    EVIDENCE_TITLE,
    FINAL_TITLE,
    PANEL_SIZE,
    RESUME_LABEL,
    UNDECIDED_COLOR,
    UNDECIDED_LABEL,
    WARMUP_LABEL,
    WEIGHTS_ONLY_TITLE,
    plot_alpha_trajectory_groups,
    search_phases,
    trajectory_groups,
    undecided_switches,
    weights_only,
)
from search.strategies import DrNAS
from supernet import ChoiceOp, IntScalarParameter, Tensor, search_space

matplotlib.use("Agg")
NAMES = ["conv3x3", "conv5x5", "maxpool"]


def mixed_space():
    """A width value choice (width=4, width=8) and an op ChoiceOp with three named options."""
    width = IntScalarParameter(4, 8, step_size=4, name="width")

    @search_space
    def space(x):
        h = conv1d(x, width, 3)
        h = ChoiceOp(
            functools.partial(conv1d, out_channels=width, kernel_size=3),
            functools.partial(conv1d, out_channels=width, kernel_size=5),
            MaxPooling(3, 1, 1),
            names=NAMES,
        )(h)
        return linear(Flatten()(AdaptiveAvgPooling(1)(h)), 3)

    return space(Tensor("x", (1, 1, 16), ("N", "C", "L"))), width


def searched():
    space, width = mixed_space()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 16, generator=g), torch.randint(0, 3, (64,), generator=g)
    result = fit_supernet(space, (x, y), epochs=1, batch_size=16, progress=False, on_undecided="ignore")
    return result, width.id, next(sid for sid in result.probabilities if sid != width.id)


def test_each_trajectory_panel_has_its_own_legend_and_marks_the_selection(tmp_path):
    result, width_id, choice_id = searched()
    fig = plot_alpha_trajectories(result, tmp_path / "t.png")
    switches = list(result.history["probabilities"])
    for ax, sid in zip(fig.axes, switches):
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == result.option_names[sid]
        thick = [line.get_label() for line in ax.lines if line.get_linewidth() > 2]
        assert thick == [result.chosen_options[sid]]
        assert f"selected: {result.chosen_options[sid]}" in ax.get_title()
        assert len(ax.collections) == 1  # the star at the selected option's last value
    assert result.option_names[width_id] == ["width=4", "width=8"]
    assert result.option_names[choice_id] == NAMES
    assert (tmp_path / "t.png").stat().st_size > 1000
    # a history alone: the final argmax is marked
    fig = plot_alpha_trajectories(result.history)
    assert all(ax.get_legend() is not None for ax in fig.axes[: len(switches)])


def test_heatmap_rows_carry_their_own_option_labels_and_outline_the_selection(tmp_path):
    result, width_id, choice_id = searched()
    fig = plot_alpha_heatmap(result, tmp_path / "h.png")
    ax = fig.axes[0]
    rows = {sid: r for r, sid in enumerate(result.probabilities)}
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert texts[(rows[width_id], 0)].startswith("width=4") and texts[(rows[width_id], 1)].startswith("width=8")
    assert [texts[(rows[choice_id], c)].split("\n")[0] for c in range(3)] == NAMES
    assert (rows[width_id], 2) not in texts  # the width row has two options only
    outlined = {(round(p.get_y() + 0.5), round(p.get_x() + 0.5)) for p in ax.patches}
    position = {sid: result.option_values[sid].index(result.architecture[sid]) for sid in rows}
    assert outlined == {(rows[sid], position[sid]) for sid in rows}
    assert not any(label.get_text() in NAMES for label in ax.get_xticklabels())  # no shared header that mislabels a row


def phased(warmup_epochs=1, epochs=6, final_temperature=0.02):
    """A DrNAS search of 2 steps an epoch (64 samples, val=None halves, batch 16): its decision
    phase starts at epoch 4 of 6 (the last 30%), after `warmup_epochs` epochs of weights only."""
    space, _ = mixed_space()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 16, generator=g), torch.randint(0, 3, (64,), generator=g)
    return fit_supernet(
        space,
        (x, y),
        epochs=epochs,
        batch_size=16,
        progress=False,
        on_undecided="ignore",
        strategy=DrNAS(warmup_epochs=warmup_epochs, final_temperature=final_temperature),
    )


def vertical_lines(ax):
    """label -> x positions of the panel's vertical lines (axvline: two equal x values)."""
    found = {}
    for line in ax.lines:
        xs = list(line.get_xdata())
        if len(xs) == 2 and xs[0] == xs[1] and line.get_label().startswith("_"):
            found.setdefault(line.get_label().lstrip("_"), []).append(float(xs[0]))
    return found


def test_trajectories_mark_the_warmup_the_decision_phase_and_a_resume_point(tmp_path):
    result = phased(warmup_epochs=1)
    assert result.history["decision_epoch"] == 4 and result.config["strategy"]["warmup_epochs"] == 1
    history = dict(result.history, resumed_at_step=[6])  # as a search resumed after epoch 2 records it
    result.history = history
    fig = plot_alpha_trajectories(result, tmp_path / "phases.png")
    for ax, sid in zip(fig.axes, history["probabilities"]):
        # 2 steps an epoch: the decision phase begins after step 8, the warm-up ends at step 2
        assert vertical_lines(ax) == {DECISION_LABEL: [8.0], RESUME_LABEL: [6.0]}
        texts = {t.get_text(): t.get_position()[0] for t in ax.texts}
        assert texts[DECISION_LABEL] == 8 and texts[RESUME_LABEL] == 6 and texts[WARMUP_LABEL] == 1
        spans = [p for p in ax.patches if p.get_label() == "_" + WARMUP_LABEL]
        assert len(spans) == 1 and spans[0].get_x() == 0 and spans[0].get_width() == 2
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == result.option_names[sid]  # the marks stay out of the legend
    assert (tmp_path / "phases.png").stat().st_size > 1000


def test_trajectories_without_phases_draw_no_marks_and_a_bare_history_takes_the_warmup_as_argument():
    result = phased(warmup_epochs=0, epochs=2, final_temperature=1.0)  # 1: no decision phase
    assert result.history["decision_epoch"] is None
    fig = plot_alpha_trajectories(result)
    assert all(vertical_lines(ax) == {} and not ax.texts and not ax.patches for ax in fig.axes)
    fig = plot_alpha_trajectories(result.history, warmup_epochs=1)
    spans = [p for p in fig.axes[0].patches if p.get_label() == "_" + WARMUP_LABEL]
    assert [(s.get_x(), s.get_width()) for s in spans] == [(0, 2)]


def test_search_phases_reads_epoch_boundaries_from_the_recorded_steps():
    history = {"steps": [0, 5, 10, 15, 20], "epochs": [0, 0, 1, 2, 3], "decision_epoch": 2, "resumed_at_step": [10]}
    assert search_phases(history, warmup_epochs=1) == {"warmup_end": 5, "decision_start": 10, "resumed": [10]}
    assert search_phases(dict(history, decision_epoch=9))["decision_start"] is None  # never began
    assert search_phases({"steps": [], "epochs": []}) == {"warmup_end": None, "decision_start": None, "resumed": []}
    with pytest.raises(ValueError, match="warmup_epochs"):
        search_phases(history, warmup_epochs=-1)


def test_heatmap_marks_the_undecided_choices(tmp_path):
    result = phased(warmup_epochs=1)
    undecided = [sid for sid, entry in result.confidence.items() if not entry["decided"]]
    assert undecided and len(undecided) < len(result.confidence)  # the run has both kinds
    assert undecided_switches(result) == undecided
    fig = plot_alpha_heatmap(result, tmp_path / "undecided.png")
    ax = fig.axes[0]
    rows = list(result.probabilities)
    for label, sid in zip(ax.get_yticklabels(), rows):
        assert label.get_text().endswith(f"({UNDECIDED_LABEL})") == (sid in undecided)
        orange = matplotlib.colors.to_hex(label.get_color()) == matplotlib.colors.to_hex(UNDECIDED_COLOR)
        assert orange == (sid in undecided)
    dashed = {round(p.get_y() + 0.5) for p in ax.patches if p.get_linestyle() == "--"}
    assert dashed == {rows.index(sid) for sid in undecided}
    assert f"{len(undecided)} of {len(rows)} choices {UNDECIDED_LABEL}" in ax.get_title()
    assert (tmp_path / "undecided.png").stat().st_size > 1000


def test_a_weights_only_result_plots_what_it_is_not_flat_selected_panels(tmp_path):
    space, _ = mixed_space()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 1, 16, generator=g), torch.randint(0, 3, (32,), generator=g)
    result = fit_supernet(space, (x, y), epochs=1, batch_size=16, progress=False, strategy="spos")
    assert weights_only(result) and not weights_only(searched()[0]) and not weights_only(result.history)
    for plot, name in ((plot_alpha_trajectories, "t.png"), (plot_alpha_heatmap, "h.png")):
        fig = plot(result, tmp_path / name)
        (ax,) = fig.axes
        assert ax.get_title() == f"spos: {WEIGHTS_ONLY_TITLE}"
        (text,) = [t.get_text() for t in ax.texts]
        assert "uniform sampling" in text and "search.evolve(result" in text
        assert not ax.lines and not ax.images and "selected:" not in text
        assert (tmp_path / name).stat().st_size > 1000
    # it saves and loads with its space (no architecture to spell out), and still plots what it is
    loaded = SearchResult.load(result.save(tmp_path / "spos"), space=mixed_space()[0])
    assert weights_only(loaded) and plot_alpha_heatmap(loaded).axes[0].get_title() == f"spos: {WEIGHTS_ONLY_TITLE}"


def test_heatmap_after_a_decision_phase_shows_the_evidence_before_it(tmp_path):
    result = phased(warmup_epochs=1)
    before = evidence_index(result.history)
    assert before is not None
    fig = plot_alpha_heatmap(result, tmp_path / "evidence.png")
    evidence, final = fig.axes[:2]
    step = result.history["steps"][before]
    assert evidence.get_title().startswith(f"{EVIDENCE_TITLE} (step {step})")
    assert final.get_title().startswith(FINAL_TITLE)
    rows = list(result.probabilities)
    for ax, expected in (
        (evidence, [result.history["probabilities"][s][before] for s in rows]),
        (final, [result.probabilities[s] for s in rows]),
    ):
        values = {
            (round(t.get_position()[1]), round(t.get_position()[0])): float(t.get_text().split("\n")[-1])
            for t in ax.texts
        }
        assert all(abs(values[(r, c)] - p) < 0.006 for r, ps in enumerate(expected) for c, p in enumerate(ps))
        undecided = undecided_switches(result)
        dashed = {round(p.get_y() + 0.5) for p in ax.patches if p.get_linestyle() == "--"}
        assert dashed == {rows.index(s) for s in undecided} and f"choices {UNDECIDED_LABEL}" in ax.get_title()
    # the evidence differs from the final numbers, which the decision phase pushed towards 1
    assert max(max(result.probabilities[s]) for s in rows) > max(
        max(result.history["probabilities"][s][before]) for s in rows
    )
    # without a decision phase: the final panel alone
    fig = plot_alpha_heatmap(phased(warmup_epochs=0, epochs=2, final_temperature=1.0))
    assert [ax.get_title().split("\n")[0] for ax in fig.axes[:-1]] == [FINAL_TITLE]


def test_many_trajectory_panels_are_grouped_by_scope_at_full_panel_size(tmp_path):
    steps = [0, 1, 2]
    cells = {"normal_cell_0": 14, "reduction_cell_0": 14}
    ids = [f"space_0.{cell}.edge_{k}_0.ChoiceOp_0.choice" for cell, n in cells.items() for k in range(n)]
    history = {
        "steps": steps,
        "epochs": [0, 0, 1],
        "probabilities": {sid: [[0.5, 0.5], [0.6, 0.4], [0.7, 0.3]] for sid in ids},
        "options": {sid: ["a", "b"] for sid in ids},
    }
    assert trajectory_groups(ids) == {cell: [s for s in ids if f".{cell}." in s] for cell in cells}
    fig = plot_alpha_trajectories(history, tmp_path / "grouped.png", columns=4)
    assert [sub.get_suptitle() for sub in fig.subfigs] == [f"{cell}: 14 choices" for cell in cells]
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 28 and panels[0].get_title().startswith("edge_0_0\nselected: a")
    width, height = fig.get_size_inches()
    assert width == 4 * PANEL_SIZE[0] and height >= 8 * PANEL_SIZE[1]  # 4 rows per cell, no panel shrunk
    figures = plot_alpha_trajectory_groups(history, tmp_path / "alphas.png")
    assert list(figures) == list(cells)
    assert all((tmp_path / f"alphas_{cell}.png").stat().st_size > 1000 for cell in cells)
    assert all(len([ax for ax in f.axes if ax.lines]) == 14 for f in figures.values())
    # few choices: one grid, as before
    assert not plot_alpha_trajectories(dict(history, probabilities={ids[0]: history["probabilities"][ids[0]]})).subfigs
