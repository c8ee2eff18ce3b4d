"""Plots label every panel and row with its own options and mark the selected one (issues 12, 13)."""
import functools

import matplotlib
import torch

from ops import AdaptiveAvgPooling, Flatten, MaxPooling, conv1d, linear
from search import fit_supernet, plot_alpha_heatmap, plot_alpha_trajectories
from supernet import ChoiceOp, IntScalarParameter, Tensor, search_space

matplotlib.use("Agg")
NAMES = ["conv3x3", "conv5x5", "maxpool"]


def mixed_space():
    """A width value choice (width=4, width=8) and an op ChoiceOp with three named options."""
    width = IntScalarParameter(4, 8, step_size=4, name="width")

    @search_space
    def space(x):
        h = conv1d(x, width, 3)
        h = ChoiceOp(functools.partial(conv1d, out_channels=width, kernel_size=3),
                     functools.partial(conv1d, out_channels=width, kernel_size=5),
                     MaxPooling(3, 1, 1), names=NAMES)(h)
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
    assert all(ax.get_legend() is not None for ax in fig.axes[:len(switches)])


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
