"""fit_supernet end to end: known optimum, step separation, determinism, save/load, export, plots."""

import functools

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ops import AvgPooling, Identity, conv1d
from search import (
    BilevelConfig,
    BilevelOptimizer,
    SearchResult,
    fit_supernet,
    plot_alpha_heatmap,
    plot_alpha_trajectories,
)
from supernet import ChoiceOp, SupernetExecutor, Tensor, search_space

OPTIONS = ["conv1", "conv3", "conv5", "avgpool", "skip"]


def tap_space():
    x = Tensor("x", (1, 1, 32), ("N", "C", "L"))

    @search_space
    def space(x):
        return ChoiceOp(
            *[functools.partial(conv1d, out_channels=1, kernel_size=k) for k in (1, 3, 5)],
            AvgPooling(3, 1, 1),
            Identity(),
            names=OPTIONS,
        )(x)

    return space(x)


def five_tap_data(seed, n=1024):
    g = torch.Generator().manual_seed(1000 + seed)
    x = torch.randn(n, 1, 32, generator=g)
    kernel = torch.randn(1, 1, 5, generator=g)
    return x, torch.nn.functional.conv1d(x, kernel, padding=2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_known_optimum_five_tap_convolution_wins(seed):
    result = fit_supernet(
        tap_space(),
        five_tap_data(seed),
        epochs=20,
        loss=torch.nn.functional.mse_loss,
        seed=seed,
        progress=False,
        on_undecided="ignore",
        optim={"arch_lr": 3e-3},
    )
    assert list(result.chosen_options.values()) == ["conv5"]


def test_same_seed_same_result_and_different_seed_differs():
    data = five_tap_data(0, n=256)
    run = functools.partial(
        fit_supernet,
        tap_space(),
        data,
        epochs=2,
        loss=torch.nn.functional.mse_loss,
        progress=False,
        on_undecided="ignore",
        optim={"arch_lr": 3e-3},
    )
    a, b, c = run(seed=5), run(seed=5), run(seed=6)
    assert a.architecture == b.architecture and a.history == b.history and a.metrics == b.metrics
    assert a.history != c.history


def test_architecture_step_changes_only_alphas_and_weight_step_only_weights():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))
    from ops import BatchNorm, Relu

    @search_space
    def space(x):
        h = ChoiceOp(functools.partial(conv1d, out_channels=2, kernel_size=3), Identity())(x)
        h = BatchNorm()(Relu()(h))
        return h

    net = space(x)
    supernet = SupernetExecutor(net, seed=0)
    bilevel = BilevelOptimizer(
        supernet, lambda out, y: (out - y).pow(2).mean(), BilevelConfig(arch_lr=0.1), total_epochs=1
    )
    batch = (torch.randn(8, 2, 16), torch.randn(8, 2, 16))
    arch_ids = {id(p) for p in supernet.arch_parameters()}

    def snapshot():
        return {k: v.detach().clone() for k, v in supernet.state_dict().items()}

    before = snapshot()
    bilevel.architecture_step(*batch)
    after = snapshot()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"arch.space_0.ChoiceOp_0.choice"}

    bilevel.weight_step(*batch)
    final = snapshot()
    changed = {k for k in after if not torch.equal(after[k], final[k])}
    assert "arch.space_0.ChoiceOp_0.choice" not in changed
    assert "space_0.Conv1d_0.weight" in changed and "space_0.BatchNorm_0.running_mean" in changed
    assert all(id(p) not in arch_ids for p in bilevel.weights)


def test_result_save_load_round_trip_and_export(tmp_path):
    space = tap_space()
    result = fit_supernet(
        space,
        five_tap_data(0, n=256),
        epochs=2,
        loss=torch.nn.functional.mse_loss,
        seed=0,
        progress=False,
        on_undecided="ignore",
    )
    result.save(tmp_path / "run")
    loaded = SearchResult.load(tmp_path / "run", space=space)
    assert loaded.architecture == result.architecture
    assert loaded.history == result.history
    assert loaded.metrics == result.metrics
    assert loaded.probabilities == result.probabilities
    assert all(torch.equal(loaded.supernet_state[k], v) for k, v in result.supernet_state.items())
    model = loaded.export(inherit_weights=True)
    assert not any("arch" in name for name, _ in model.named_parameters())
    assert not hasattr(model, "alphas")
    assert model(torch.randn(3, 1, 32)).shape == (3, 1, 32)
    with pytest.raises(ValueError, match="no search space"):
        SearchResult.load(tmp_path / "run").export()


def test_history_records_every_step_for_every_switch():
    result = fit_supernet(
        tap_space(),
        five_tap_data(0, n=256),
        epochs=2,
        batch_size=32,
        loss=torch.nn.functional.mse_loss,
        seed=0,
        progress=False,
        on_undecided="ignore",
    )
    steps_per_epoch = 128 // 32  # val=None: half of 256 samples trains
    assert result.history["steps"] == list(range(0, 2 * steps_per_epoch + 1))
    (sid,) = result.history["probabilities"]
    assert len(result.history["probabilities"][sid]) == len(result.history["steps"])
    assert result.history["probabilities"][sid][0] == pytest.approx([0.2] * 5)
    assert result.history["logits"][sid][0] == [0.0] * 5
    assert result.history["options"][sid] == OPTIONS


def test_accepts_datasets_and_loaders_and_default_accuracy_metric():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 1, 32, generator=g)
    y = (x.mean(dim=(1, 2)) > 0).long()
    xc = Tensor("x", (1, 1, 32), ("N", "C", "L"))
    from ops import Flatten, linear

    @search_space
    def classifier(x):
        h = ChoiceOp(Identity(), AvgPooling(3, 1, 1))(x)
        return linear(Flatten()(h), 2)

    space = classifier(xc)
    ds = TensorDataset(x, y)
    r1 = fit_supernet(space, ds, ds, epochs=1, batch_size=32, seed=0, progress=False)
    assert "train_accuracy" in r1.metrics[0] and "val_accuracy" in r1.metrics[0]
    r2 = fit_supernet(space, DataLoader(ds, batch_size=32), (x, y), epochs=1, seed=0, progress=False, metrics=[])
    assert "train_accuracy" not in r2.metrics[0]
    with pytest.raises(ValueError, match="val has 10 samples, fewer than one batch of 32"):
        fit_supernet(space, ds, (x[:10], y[:10]), epochs=1, batch_size=32, progress=False)


def test_plots_write_png(tmp_path):
    result = fit_supernet(
        tap_space(),
        five_tap_data(0, n=256),
        epochs=1,
        loss=torch.nn.functional.mse_loss,
        seed=0,
        progress=False,
        on_undecided="ignore",
    )
    fig = plot_alpha_trajectories(result.history, tmp_path / "traj.png")
    assert [line.get_label() for line in fig.axes[0].lines] == OPTIONS
    plot_alpha_heatmap(result, tmp_path / "heat.png")
    assert (tmp_path / "traj.png").stat().st_size > 1000 and (tmp_path / "heat.png").stat().st_size > 1000
