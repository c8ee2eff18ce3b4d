"""Differentiable value choices: kernel sizes and widths searched over one shared weight."""

import pytest
import torch

from ops import conv1d
from search import fit_supernet, plot_alpha_trajectories
from search.strategies import GDAS
from helpers import value_space
from supernet import (
    get_nodes,
    BasicExecutor,
    CategoricalParameter,
    IntScalarParameter,
    SupernetExecutor,
    Tensor,
    discretize,
    search_space,
)


def one_hot(n, index):
    return torch.where(torch.arange(n) == index, 0.0, float("-inf"))


def test_value_parameters_get_logits_and_labels():
    net, kernel, width = value_space()
    model = SupernetExecutor(net)
    second_kernel = "space_0.Conv1d_1.weight.k"
    assert set(model.alphas) == {kernel.id, width.id, second_kernel}
    assert model.option_names()[kernel.id] == ["k=1", "k=3", "k=5"]
    assert model.option_names()[width.id] == ["w=2", "w=4", "w=6"]
    assert model.option_values()[width.id] == [2, 4, 6]


def test_fixed_and_tied_parameters():
    kernel = CategoricalParameter([1, 3, 5], name="k")
    net, _, width = value_space(kernel=kernel, width=IntScalarParameter(2, 6, step_size=2, name="w").fix(4), tie=True)
    model = SupernetExecutor(net)
    assert list(model.alphas) == [kernel.id]  # width fixed; one kernel logit vector for both convs
    weight = next(n for n in get_nodes(net) if n.id == "space_0.Conv1d_0.weight")
    assert model.weight(weight).shape[0] == 4  # the fixed width runs at its value
    assert model(torch.randn(2, 2, 16)).shape == (2, 3)


@pytest.mark.parametrize("k, w", [(0, 0), (1, 2), (2, 1), (2, 2)])
def test_one_hot_supernet_equals_the_shrunk_export_with_inherited_weights(k, w):
    net, kernel, width = value_space()
    model = SupernetExecutor(net, seed=0)
    opt = torch.optim.SGD(model.weight_parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 2, 16)).pow(2).mean().backward()
        opt.step()
    model.eval()
    second = "space_0.Conv1d_1.weight.k"
    model.set_alphas({kernel.id: one_hot(3, k), width.id: one_hot(3, w), second: one_hot(3, 2 - k)})
    architecture = model.architecture()
    assert architecture == {kernel.id: [1, 3, 5][k], width.id: [2, 4, 6][w], second: [1, 3, 5][2 - k]}
    exported = BasicExecutor(discretize(net, architecture))
    exported.load_shared_state(model.state_dict())
    exported.eval()
    assert exported.get_parameter("space_0.Conv1d_0.weight").shape == ([2, 4, 6][w], 2, [1, 3, 5][k])
    data = torch.randn(5, 2, 16)
    assert torch.allclose(model(data), exported(data), atol=1e-5)
    assert kernel.current_value == 1 and width.current_value == 2  # the forward restored them


def test_value_logits_receive_gradients():
    net, kernel, width = value_space()
    model = SupernetExecutor(net, seed=0)
    model(torch.randn(4, 2, 16)).pow(2).sum().backward()
    assert model.alphas[kernel.id].grad.abs().sum() > 0
    assert model.alphas[width.id].grad.abs().sum() > 0


def test_shrinking_value_choice_is_rejected_with_the_weight_id():
    c = IntScalarParameter(1, 3, name="c")
    x = Tensor("x", (1, 2, 8), ("N", "C", "L"))

    @search_space
    def space(x):
        return conv1d(x, 4 - c, 3)

    with pytest.raises(ValueError, match=r"space_0\.Conv1d_0\.weight.*must not shrink"):
        SupernetExecutor(space(x))


@pytest.mark.parametrize("compared", [2, None])
def test_sampling_search_finds_the_kernel_size_of_a_five_tap_target(tmp_path, compared):
    """With a soft (DARTS) mask the shared weights compensate for any mixture; sampled masks do not.
    GDAS's default compares two options per step and learns slower: at 15 epochs it picks k=5 undecided
    (measured p 0.07 / 0.28 / 0.33 / 0.32), every option compared decides it (0.04 / 0.07 / 0.60 / 0.30)."""

    g = torch.Generator().manual_seed(3)
    x = torch.randn(1024, 1, 32, generator=g)
    y = torch.nn.functional.conv1d(x, torch.randn(1, 1, 5, generator=g), padding=2)
    kernel = CategoricalParameter([1, 3, 5, 7], name="k")
    xt = Tensor("x", (1, 1, 32), ("N", "C", "L"))

    @search_space
    def space(x):
        return conv1d(x, 1, kernel)

    result = fit_supernet(
        space(xt),
        (x, y),
        strategy=GDAS(compared=compared),
        epochs=15,
        loss=torch.nn.functional.mse_loss,
        seed=0,
        progress=False,
        optim={"arch_lr": 3e-2},
        on_undecided="ignore" if compared == 2 else "warn",  # warnings are errors here: None must decide
    )
    assert result.architecture == {kernel.id: 5} or result.architecture == {kernel.id: 7}  # 7 contains the 5 taps
    p1, p3, p5, p7 = result.probabilities[kernel.id]
    assert p5 + p7 > p1 + p3 and p1 < min(p3, p5, p7)
    assert result.chosen_options[kernel.id] == f"k={result.architecture[kernel.id]}"
    assert len(result.history["probabilities"][kernel.id]) == len(result.history["steps"])
    plot_alpha_trajectories(result.history, tmp_path / "k.png")
    exported = result.export(inherit_weights=True)
    assert exported.get_parameter("space_0.Conv1d_0.weight").shape[-1] == result.architecture[kernel.id]
