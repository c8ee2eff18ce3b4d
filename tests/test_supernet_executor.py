"""SupernetExecutor and discretize: mixtures, the arch/weight split, shapes, one-hot equivalence."""

import functools

import pytest
import torch

from ops import (
    AvgPooling,
    BatchNorm,
    Identity,
    MaxPooling,
    Relu,
    Zero,
    conv1d,
    conv2d,
    linear,
    Flatten,
    AdaptiveAvgPooling,
)
from supernet import (
    BasicExecutor,
    ChoiceOp,
    IntScalarParameter,
    SupernetExecutor,
    Tensor,
    discretize,
    get_nodes,
    lazy,
    scope,
    search_space,
)


def conv_bn(x, kernel_size, channels):
    return BatchNorm()(Relu()(conv1d(x, channels, kernel_size)))


def cell_space(tied: bool = False, channels: int = 4):
    x = Tensor("x", (1, channels, 12), ("N", "C", "L"))
    shared = IntScalarParameter(0, 3, name="choice") if tied else None

    @scope
    def edge(h):
        switch = shared if shared is not None else IntScalarParameter(0, 3, name="choice")
        return ChoiceOp(
            functools.partial(conv_bn, kernel_size=3, channels=channels),
            functools.partial(conv_bn, kernel_size=5, channels=channels),
            Identity(),
            Zero(),
            switch=switch,
            names=["conv3", "conv5", "skip", "none"],
        )(h)

    @search_space
    def space(x):
        h = edge(x)
        h = edge(h)
        return linear(Flatten()(AdaptiveAvgPooling(1)(h)), 3)

    return space(x)


def test_parameters_split_and_alphas_by_switch_id():
    net = cell_space()
    model = SupernetExecutor(net, seed=0)
    arch, weights = model.arch_parameters(), model.weight_parameters()
    assert {id(p) for p in arch}.isdisjoint({id(p) for p in weights})
    assert {id(p) for p in arch} | {id(p) for p in weights} == {id(p) for p in model.parameters()}
    assert sorted(model.alphas) == ["space_0.edge_0.ChoiceOp_0.choice", "space_0.edge_1.ChoiceOp_0.choice"]
    for alpha in arch:
        assert torch.equal(alpha, torch.zeros(4))
    assert model.option_names()["space_0.edge_0.ChoiceOp_0.choice"] == ["conv3", "conv5", "skip", "none"]


def test_tied_switch_shares_one_alpha():
    model = SupernetExecutor(cell_space(tied=True), seed=0)
    assert list(model.alphas) == ["space_0.edge_0.ChoiceOp_0.choice"]
    assert len(model.arch_parameters()) == 1


def test_mixture_is_softmax_weighted_sum_of_options():
    x = Tensor("x", (1, 2, 8), ("N", "C", "L"))

    @search_space
    def space(x):
        return ChoiceOp(Identity(), MaxPooling(3, 1, 1), AvgPooling(3, 1, 1))(x)

    model = SupernetExecutor(space(x))
    alpha = torch.tensor([0.3, -1.0, 2.0])
    model.set_alphas({"space_0.ChoiceOp_0.choice": alpha})
    data = torch.randn(5, 2, 8)
    w = torch.softmax(alpha, 0)
    expected = (
        w[0] * data
        + w[1] * torch.nn.functional.max_pool1d(data, 3, 1, 1)
        + w[2] * torch.nn.functional.avg_pool1d(data, 3, 1, 1)
    )
    assert torch.allclose(model(data), expected, atol=1e-6)


def test_mismatched_option_shapes_are_rejected_with_ids():
    x = Tensor("x", (1, 2, 8), ("N", "C", "L"))

    @search_space
    def space(x):
        return ChoiceOp(Identity(), MaxPooling(2), names=["skip", "pool"])(x)

    with pytest.raises(ValueError, match=r"space_0\.ChoiceOp_0.*skip: \(1, 2, 8\).*pool: \(1, 2, 4\)"):
        SupernetExecutor(space(x))


def test_zero_option_is_never_computed(monkeypatch):
    calls = []
    original = Zero._forward_implementation
    monkeypatch.setattr(Zero, "_forward_implementation", lambda self, x: calls.append(self.id) or original(self, x))
    model = SupernetExecutor(cell_space(), seed=0)
    model(torch.randn(2, 4, 12)).sum().backward()
    assert calls == []


def test_one_hot_alphas_match_exported_architecture_with_inherited_weights():
    net = cell_space()
    model = SupernetExecutor(net, seed=0)
    # train a little so BN statistics and weights are not at their initial values
    opt = torch.optim.SGD(model.weight_parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 4, 12)).pow(2).mean().backward()
        opt.step()
    model.eval()
    data = torch.randn(6, 4, 12)
    switches = list(model.alphas)
    for a in range(4):
        for b in range(4):
            architecture = {switches[0]: a, switches[1]: b}
            model.set_alphas(
                {sid: torch.where(torch.arange(4) == idx, 0.0, float("-inf")) for sid, idx in architecture.items()}
            )
            fixed = BasicExecutor(discretize(net, architecture))
            fixed.load_state_dict({k: v for k, v in model.state_dict().items() if k in fixed.state_dict()})
            fixed.eval()
            assert torch.allclose(model(data), fixed(data), atol=1e-6), architecture


def test_discretize_removes_choices_and_keeps_original():
    net = cell_space()
    switches = [n.switch.id for n in get_nodes(net) if isinstance(n, ChoiceOp)]
    fixed = discretize(net, {switches[0]: 2, switches[1]: 0})
    kinds = [type(n).__name__ for n in get_nodes(fixed)]
    assert "ChoiceOp" not in kinds
    assert not any(k.endswith(".choice") for k in fixed.parametrization())
    assert sum(isinstance(n, ChoiceOp) for n in get_nodes(net)) == 2  # original intact
    exported = BasicExecutor(fixed)
    assert not any("arch" in name or "choice" in name for name, _ in exported.named_parameters())
    assert exported(torch.randn(2, 4, 12)).shape == (2, 3)
    with pytest.raises(KeyError, match="unknown switch or parameter 'nope'"):
        discretize(net, {"nope": 0})
    with pytest.raises(ValueError, match="option 7"):
        discretize(net, {switches[0]: 7})


def test_supernet_output_shape_matches_symbolic_shape_2d():
    x = Tensor("x", (1, 3, 8, 8), ("N", "C", "H", "W"))

    @search_space
    def space(x):
        h = ChoiceOp(
            functools.partial(conv2d, out_channels=5, kernel_size=3),
            functools.partial(conv2d, out_channels=5, kernel_size=1),
        )(x)
        return h

    net = space(x)
    model = SupernetExecutor(net)
    assert tuple(model(torch.randn(1, 3, 8, 8)).shape) == lazy(net.shape())


def value_choice_conv():
    """A Conv1d whose width (2..8) and kernel (1, 3, 5) are value choices: (net, kernel, width)."""
    from supernet import CategoricalParameter

    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))
    kernel = CategoricalParameter([1, 3, 5], name="k")
    width = IntScalarParameter(2, 8, step_size=2, name="w")

    @search_space
    def space(x):
        return conv1d(x, width, kernel)

    return space(x), kernel, width


def test_discretize_narrows_chosen_value_parameters_so_weights_shrink():
    net, kernel, width = value_choice_conv()
    fixed = discretize(net, {kernel.id: 3, width.id: 4})
    model = BasicExecutor(fixed)
    assert model.get_parameter("space_0.Conv1d_0.weight").shape == (4, 2, 3)
    assert BasicExecutor(net).get_parameter("space_0.Conv1d_0.weight").shape == (8, 2, 5)  # original untouched
    assert kernel.current_value == 1 and kernel.choices == [1, 3, 5]
    with pytest.raises(ValueError, match="picks value 4 for space_0.Conv1d_0.weight.k"):
        discretize(net, {kernel.id: 4})


def test_load_shared_state_cuts_centred_kernels_and_leading_channels():
    net, kernel, width = value_choice_conv()
    wide = BasicExecutor(net, seed=0)
    small = BasicExecutor(discretize(net, {kernel.id: 3, width.id: 4}))
    small.load_shared_state(wide.state_dict())
    full = wide.get_parameter("space_0.Conv1d_0.weight")
    assert torch.equal(small.get_parameter("space_0.Conv1d_0.weight"), full[:4, :, 1:4])
    kernel.set_current(3)
    width.set_current(4)
    data = torch.randn(3, 2, 16)
    assert torch.equal(small(data), wide(data))
