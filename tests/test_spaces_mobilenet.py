"""MobileNetV2-style space: per-stage expansion / kernel / width / depth parameters, residuals,
1-D and 2-D execution, discretization, and a short search on MNIST-1D whose export trains."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ops import Add, Relu6
from search import fit_supernet
from search.spaces import mobilenet_parameters, mobilenet_space, stage_widths
from supernet import (
    BasicExecutor,
    CategoricalParameter,
    ChoiceOp,
    SupernetExecutor,
    Tensor,
    discretize,
    get_nodes,
    lazy,
    search_space,
)
from supernet.cost import architecture_cost
from supernet.graph import topological_order

SMALL = dict(
    stem_channels=8,
    stages=((8, 1, 1), (12, 2, 2), (16, 3, 2)),
    expansion_ratios=(2, 4),
    kernel_sizes=(3, 5),
    width_multipliers=(0.5, 1.0),
)


def _signal(batch: int = 2) -> Tensor:
    return Tensor(name="input", shape=(batch, 1, 40), axis=("N", "C", "L"))


def test_each_stage_has_its_expansion_kernel_width_and_depth_parameters():
    net = mobilenet_space(_signal(), **SMALL)
    stages = mobilenet_parameters(net)
    assert [sorted(s) for s in stages] == [["expansion", "kernel", "width"]] + [
        ["depth", "expansion", "kernel", "width"]
    ] * 2
    assert sum(len(s) for s in stages) == len(net.parametrization())
    assert [s["width"].choices for s in stages] == [[4, 8], [6, 12], [8, 16]]
    assert all(
        isinstance(s["width"], CategoricalParameter) and s["width"].current_value == max(s["width"].choices)
        for s in stages
    )
    assert [s["depth"].values() for s in stages[1:]] == [[0, 1], [0, 1, 2]]
    assert all(s["depth"].current_value == s["depth"].max for s in stages[1:])  # deepest unless searched
    assert stages[2]["expansion"].id == "mobilenet_space_0.stage_2.inverted_residual_0.ChoiceOp_0.expansion"
    assert stages[2]["kernel"].id == "mobilenet_space_0.stage_2.inverted_residual_0.expand_0.ChoiceOp_0.kernel"
    assert stages[2]["depth"].id == "mobilenet_space_0.stage_2.ChoiceOp_0.depth"
    assert stages[2]["width"].id.startswith("mobilenet_space_0.stage_2.") and stages[2]["width"].id.endswith(".width")
    choices = [n for n in topological_order(net) if isinstance(n, ChoiceOp)]
    # blocks: 1 + 2 + 3; each an expansion choice over two bodies with a kernel choice each
    assert sum(c.option_names() == ["expand2", "expand4"] for c in choices) == 6
    assert sum(c.option_names() == ["kernel3", "kernel5"] for c in choices) == 12
    assert [c.option_names() for c in choices if c.switch.name == "depth"] == [
        ["depth1", "depth2"],
        ["depth1", "depth2", "depth3"],
    ]
    # the blocks of a stage share its switches
    for s in stages:
        assert len({id(c.switch) for c in choices if c.switch is s["expansion"]}) == 1
    assert sum(c.switch is stages[2]["kernel"] for c in choices) == 3 * 2


def test_residuals_where_shapes_allow():
    net = mobilenet_space(_signal(), **SMALL)
    adds = [n for n in topological_order(net) if isinstance(n, Add)]
    # every block after the first of its stage; stage 0's first block changes the (parametrized) width
    assert sorted(a.id.rsplit(".", 1)[0] for a in adds) == [
        "mobilenet_space_0.stage_1.inverted_residual_1",
        "mobilenet_space_0.stage_2.inverted_residual_1",
        "mobilenet_space_0.stage_2.inverted_residual_2",
    ]
    fixed_width = mobilenet_space(_signal(), **{**SMALL, "width_multipliers": (1.0,)})
    first = [
        n for n in topological_order(fixed_width) if isinstance(n, Add) and ".stage_0.inverted_residual_0." in n.id
    ]
    assert len(first) == 1  # 8 -> 8 channels at stride 1: a residual


@pytest.mark.parametrize("dims", [1, 2])
def test_supernet_and_sampled_architectures_run(dims):
    x = _signal(3) if dims == 1 else Tensor(name="input", shape=(3, 3, 12, 12), axis=("N", "C", "H", "W"))
    net = mobilenet_space(x, num_classes=5, head_channels=24, activation="relu" if dims == 2 else "relu6", **SMALL)
    data = torch.randn(*lazy(x.shape()))
    assert tuple(SupernetExecutor(net, seed=0)(data).shape) == (3, 5)
    model = BasicExecutor(net, seed=0)
    for seed in range(4):
        net.sample(seed=seed)
        out = model(data)
        assert tuple(out.shape) == tuple(lazy(net.shape())) == (3, 5) and torch.isfinite(out).all()


def test_discretized_width_and_depth_shrink_the_exported_model():
    net = mobilenet_space(_signal(), **SMALL)
    stages = mobilenet_parameters(net)
    deepest = {p.id: (p.max if name == "depth" else 0) for s in stages for name, p in s.items() if name != "width"}
    narrowest = {s["width"].id: min(s["width"].choices) for s in stages}
    wide = discretize(net, deepest)  # widths stay at their current value, the widest
    narrow = discretize(net, {**deepest, **narrowest})  # value parameters narrowed to one value
    shallow = discretize(net, {**deepest, **narrowest, stages[2]["depth"].id: 0})
    for kind in ("params", "flops"):
        assert architecture_cost(shallow, kind) < architecture_cost(narrow, kind) < architecture_cost(wide, kind)
    sizes = [sum(p.numel() for p in BasicExecutor(f).parameters()) for f in (shallow, narrow, wide)]
    assert sizes == [architecture_cost(f, "params") for f in (shallow, narrow, wide)] and sizes[0] < sizes[1] < sizes[2]
    assert not any(isinstance(n, ChoiceOp) for n in get_nodes(narrow))
    assert tuple(BasicExecutor(narrow)(torch.randn(2, 1, 40)).shape) == (2, 10)
    assert lazy(narrow.operands[0].shape()) == (2, 8)  # flattened pooled features: stage 2 at width 8
    assert [s["width"].current_value for s in stages] == [8, 12, 16]  # the space itself is unchanged
    assert stage_widths(24, (0.5, 0.75, 1.0)) == [12, 18, 24]


def test_relu6_op():
    x = Tensor("x", (2, 3, 5), ("N", "C", "L"))

    @search_space
    def space(x):
        return Relu6()(x)

    out = space(x)
    values = torch.linspace(-10, 10, 30).reshape(2, 3, 5)
    assert torch.equal(BasicExecutor(out)(values), values.clamp(0, 6))
    assert lazy(out.flops()) == 15


def test_search_on_mnist1d_then_export_trains():
    from search.datasets import load_mnist1d

    torch.manual_seed(0)
    (x, y), _ = load_mnist1d()
    net = mobilenet_space(_signal(), **SMALL)
    result = fit_supernet(net, (x[:64], y[:64]), epochs=2, batch_size=16, seed=0, progress=False, on_undecided="ignore")
    switches = {p.id for s in mobilenet_parameters(net) for name, p in s.items()}
    assert switches <= set(result.architecture)  # widths are value choices: searched with their own logits
    widths = {s["width"].id: s["width"] for s in mobilenet_parameters(net)}
    assert all(result.architecture[k] in p.choices for k, p in widths.items())
    assert all(len(result.probabilities[k]) == len(result.option_names[k]) for k in result.architecture)
    stages = mobilenet_parameters(net)
    narrowest = {s["width"].id: min(s["width"].choices) for s in stages}
    chosen = result.with_architecture(narrowest)  # overriding the searched widths by hand
    model = chosen.export(seed=0)
    widest = result.with_architecture({k: max(p.choices) for k, p in widths.items()})
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in widest.export(seed=0).parameters())
    xb, yb = x[64:192], y[64:192]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
