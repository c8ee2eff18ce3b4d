"""DARTS cell space: switches and ids, options, shapes in 1-D and 2-D, Concat/Slice, DARTS's
discretization and genotype, and a short search whose export trains."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from ops import Add, BatchNorm, Concat, Conv2d, Identity, Relu, Slice, Zero
from search import fit_supernet
from search.derivation import ArgmaxPerChoice, TopInputsPerNode, declare_derivation, derivation_of
from search.selection import derive
from search.strategies import DARTS, FairDARTS
from search.spaces import (
    DARTS_OPS,
    Genotype,
    darts_edges,
    darts_genotype,
    darts_genotype_text,
    darts_genotype_tuple,
    darts_space,
    darts_switch_ids,
    reduction_layers,
)
from supernet import BasicExecutor, ChoiceOp, Node, SupernetExecutor, Tensor, discretize, get_nodes, lazy, search_space
from supernet.graph import topological_order

SWITCH_ID = re.compile(r"^darts_space_0\.(normal|reduction)_cell_0\.edge_(\d)to(\d)_0\.ChoiceOp_0\.choice$")


def _image(batch: int = 2, size: int = 8) -> Tensor:
    return Tensor(name="input", shape=(batch, 3, size, size), axis=("N", "C", "H", "W"))


def _choices(net):
    return [n for n in topological_order(net) if isinstance(n, ChoiceOp)]


def test_two_genotypes_of_fourteen_switches_named_after_the_first_cell_of_each_kind():
    net = darts_space(_image(), channels=4, layers=5)
    params = net.parametrization()
    assert len(params) == 28
    seen = {"normal": set(), "reduction": set()}
    for pid, p in params.items():
        match = SWITCH_ID.match(pid)
        assert match, pid
        assert p.values() == list(range(8))
        seen[match[1]].add((int(match[2]), int(match[3])))
    assert seen["normal"] == seen["reduction"] == set(darts_edges(4))
    assert darts_edges(4)[:5] == [(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
    # 5 cells x 14 edges, every one a ChoiceOp over the DARTS ops in DARTS's order
    choices = _choices(net)
    assert len(choices) == 70 and all(c.option_names() == list(DARTS_OPS) for c in choices)
    assert DARTS_OPS == (
        "none",
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
    )
    assert (
        darts_switch_ids(list(params))["reduction"][(0, 2)]
        == "darts_space_0.reduction_cell_0.edge_0to2_0.ChoiceOp_0.choice"
    )


def test_cell_layout_channels_and_reductions():
    assert reduction_layers(8) == (2, 5) and reduction_layers(3) == (1, 2)
    net = darts_space(_image(size=16), channels=4, layers=8, steps=4, multiplier=4, stem_multiplier=3)
    concats = [n for n in topological_order(net) if isinstance(n, Concat) and n.id.count(".") == 2]
    assert [c.id.split(".")[1] for c in concats] == [
        "normal_cell_0",
        "normal_cell_1",
        "reduction_cell_0",
        "normal_cell_2",
        "normal_cell_3",
        "reduction_cell_1",
        "normal_cell_4",
        "normal_cell_5",
    ]
    shapes = [tuple(lazy(c.shape())[1:]) for c in concats]
    assert shapes == [(16, 16, 16)] * 2 + [(32, 8, 8)] * 3 + [(64, 4, 4)] * 3
    stem_conv = next(n for n in topological_order(net) if isinstance(n, Conv2d))
    assert lazy(stem_conv.shape())[1] == 12
    assert lazy(net.shape()) == (2, 10)


def test_cifar_sized_search_network_has_the_darts_parameter_count():
    # DARTS's search model (C=16, 8 layers, CIFAR-10) logs "param size = 1.930618MB"
    net = darts_space(_image(1, size=32), channels=16, layers=8, num_classes=10)
    assert sum(p.numel() for p in SupernetExecutor(net).weight_parameters()) == 1_930_618


def test_reduction_edges_have_stride_two_and_factorized_reduce_skips():
    net = darts_space(_image(), channels=4, layers=3, steps=2, multiplier=2)
    for choice in _choices(net):
        names = choice.option_names()
        zero = choice.operands[names.index("none")]
        skip = choice.operands[names.index("skip_connect")]
        strided = ".reduction_cell_" in choice.id and re.search(r"edge_[01]to", choice.id)
        assert isinstance(zero, Zero) and zero.stride == (2 if strided else 1)
        if strided:
            assert ".factorized_reduce_0." in skip.id and isinstance(skip, BatchNorm)
        else:
            assert type(skip).__name__ == "Identity"
    # the BatchNorms of the cells are affine=False, those of the stem are not
    norms = [n for n in topological_order(net) if isinstance(n, BatchNorm)]
    assert all(not n.affine for n in norms if "_cell_" in n.id)
    assert all(n.affine for n in norms if ".stem_" in n.id)
    # the second cell reads a cell output of twice its spatial size: its node 0 is factorized
    assert any(n.id.startswith("darts_space_0.reduction_cell_1.factorized_reduce_0.") for n in get_nodes(net))


@pytest.mark.parametrize("dims", [1, 2])
def test_supernet_and_sampled_architectures_run(dims):
    x = _image(3) if dims == 2 else Tensor(name="input", shape=(3, 1, 40), axis=("N", "C", "L"))
    net = darts_space(x, channels=4, layers=3, num_classes=5)
    data = torch.randn(*lazy(x.shape()))
    out = SupernetExecutor(net, seed=0)(data)
    assert tuple(out.shape) == (3, 5) and torch.isfinite(out).all()
    model = BasicExecutor(net, seed=0)
    for seed in range(3):
        net.sample(seed=seed)
        out = model(data)
        assert tuple(out.shape) == tuple(lazy(net.shape())) == (3, 5) and torch.isfinite(out).all()


def test_odd_sizes_are_refused_where_factorized_reduce_cannot_halve():
    with pytest.raises(ValueError, match="even"):
        darts_space(_image(size=6), channels=4, layers=3)  # 6 -> 3 -> 2: cell 2 reads 3 and 2


def test_concat_and_slice_ops():
    x = Tensor("x", (2, 3, 6, 5), ("N", "C", "H", "W"))
    y = Tensor("y", (2, 4, 6, 5), ("N", "C", "H", "W"))

    @search_space
    def space(x, y):
        return Slice(3, start=1)(Slice(2, start=1, step=2)(Concat(axis=1)(x, y)))

    out = space(x, y)
    assert lazy(out.shape()) == (2, 7, 3, 4)
    a, b = torch.randn(2, 3, 6, 5), torch.randn(2, 4, 6, 5)
    assert torch.equal(BasicExecutor(out)(a, b), torch.cat([a, b], 1)[:, :, 1::2, 1:])
    assert out.flops() == 0 and out.operands[0].operands[0].flops() == 0
    with pytest.raises(ValueError, match="agree"):
        Concat()(x, Tensor("z", (2, 4, 6, 6), ("N", "C", "H", "W")))
    with pytest.raises(ValueError, match="batch"):
        Slice(0, start=1)(Tensor("w", (2, 4), ("N", "C")))


def _probabilities(net, strongest):
    """Uniform-ish probabilities where `strongest[(kind, i, j)] = (op, p)` lifts one op on an edge."""
    probs = {}
    for kind, edges in darts_switch_ids(list(net.parametrization())).items():
        for (i, j), sid in edges.items():
            p = [0.1] * 8
            p[0] = 0.2  # `none` may be the argmax: DARTS ignores it
            if (kind, i, j) in strongest:
                op, value = strongest[(kind, i, j)]
                p[DARTS_OPS.index(op)] = value
            probs[sid] = p
    return probs


def test_darts_genotype_keeps_the_two_strongest_non_none_edges_per_node():
    net = darts_space(_image(), channels=4, layers=3)
    probs = _probabilities(
        net,
        {
            ("normal", 1, 2): ("sep_conv_3x3", 0.5),
            ("normal", 0, 2): ("skip_connect", 0.4),
            ("normal", 2, 3): ("dil_conv_5x5", 0.3),
            ("normal", 0, 3): ("max_pool_3x3", 0.6),
            ("normal", 3, 4): ("sep_conv_5x5", 0.3),
            ("normal", 4, 5): ("avg_pool_3x3", 0.3),
            ("normal", 0, 5): ("none", 0.9),
            ("reduction", 0, 2): ("max_pool_3x3", 0.3),
            ("reduction", 1, 2): ("max_pool_3x3", 0.3),
        },
    )
    ids = darts_switch_ids(list(probs))
    architecture = darts_genotype(probs)
    assert set(architecture) == set(probs)
    normal = {edge: DARTS_OPS[architecture[sid]] for edge, sid in ids["normal"].items()}
    assert normal[(0, 2)] == "skip_connect" and normal[(1, 2)] == "sep_conv_3x3"
    assert normal[(0, 3)] == "max_pool_3x3" and normal[(2, 3)] == "dil_conv_5x5" and normal[(1, 3)] == "none"
    # node 4: one strong edge, the tie between the others goes to the earliest (DARTS's stable sort)
    assert [normal[(i, 4)] for i in range(4)] == ["max_pool_3x3", "none", "none", "sep_conv_5x5"]
    # node 5: a strong `none` does not count; the first non-none op wins ties within an edge
    assert [normal[(i, 5)] for i in range(5)] == ["max_pool_3x3", "none", "none", "none", "avg_pool_3x3"]
    assert sum(1 for op in normal.values() if op != "none") == 8
    genotype = darts_genotype_tuple(architecture)
    assert isinstance(genotype, Genotype)
    assert genotype.normal == [
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("max_pool_3x3", 0),
        ("dil_conv_5x5", 2),
        ("max_pool_3x3", 0),
        ("sep_conv_5x5", 3),
        ("max_pool_3x3", 0),
        ("avg_pool_3x3", 4),
    ]
    assert genotype.reduce[:2] == [("max_pool_3x3", 0), ("max_pool_3x3", 1)]
    text = darts_genotype_text(architecture)
    assert text.startswith("Genotype(normal=[('skip_connect', 0), ('sep_conv_3x3', 1), ('max_pool_3x3', 0), ")
    assert text.endswith(", reduce_concat=range(2, 6))") and "normal_concat=range(2, 6)" in text
    # the architecture discretizes the space: exactly two non-zero inputs per intermediate node
    fixed = discretize(net, architecture)
    assert not any(isinstance(n, ChoiceOp) for n in get_nodes(fixed))


def test_search_then_darts_genotype_then_export_trains():
    torch.manual_seed(0)
    x = torch.randn(64, 3, 8, 8)
    y = (x[:, 0].mean((1, 2)) > 0).long() + 2 * (x[:, 1].mean((1, 2)) > 0).long()
    net = darts_space(_image(), channels=4, layers=3, num_classes=4)
    result = fit_supernet(net, (x[:32], y[:32]), epochs=2, batch_size=8, seed=0, progress=False, on_undecided="ignore")
    assert len(result.history["steps"]) == 1 + 4
    architecture = darts_genotype(result)
    # the space declares DARTS's derivation: the default architecture is already the genotype
    assert result.architecture == architecture
    assert result.config["selection"]["derivation"] == "top-2 inputs per node (none excluded)"
    assert "derived by the space's rule: top-2 inputs per node" in result.summary()
    chosen = result.with_architecture(architecture)
    assert chosen.architecture == architecture
    assert all(chosen.option_names[sid][k] == DARTS_OPS[k] for sid, k in architecture.items())
    text = darts_genotype_text(chosen)
    assert text.count("('") == 16  # 2 edges x 4 nodes x 2 cell kinds
    with pytest.raises(KeyError):
        result.with_architecture({"no.such.switch": 1})

    model = chosen.export(seed=0)
    assert not any(isinstance(n, ChoiceOp) for n in get_nodes(model.output_node))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(model(x[32:]), y[32:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_default_export_of_a_darts_search_is_the_darts_genotype_network():
    torch.manual_seed(0)
    x = torch.randn(16, 3, 8, 8)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    net = darts_space(_image(), channels=4, layers=3, num_classes=2)
    result = fit_supernet(net, (x, y), epochs=1, batch_size=8, seed=0, progress=False, on_undecided="ignore")
    genotype = result.with_architecture(darts_genotype(result))
    default, reference = result.export(seed=0), genotype.export(seed=0)
    assert sorted(default.state_dict()) == sorted(reference.state_dict())
    with torch.no_grad():
        assert torch.equal(default.eval()(x), reference.eval()(x))
    # two kept inputs per intermediate node and cell kind, as DARTS
    assert darts_genotype_text(result).count("('") == 16
    # dropped edges are judged on their node's ranking: the margin to the weakest kept input, never negative
    ids = darts_switch_ids(list(result.architecture))
    dropped = [sid for edges in ids.values() for sid in edges.values() if result.architecture[sid] == 0]
    assert len(dropped) == 2 * (14 - 8)
    assert all(result.confidence[sid]["dropped"] and result.confidence[sid]["margin"] >= 0 for sid in dropped)
    # the trajectories, grouped by cell, say which edges the rule dropped
    import matplotlib

    matplotlib.use("Agg")
    from search import plot_alpha_heatmap, plot_alpha_trajectories
    from search.plots import DROPPED_LABEL

    figure = plot_alpha_trajectories(result)
    assert [sub.get_suptitle() for sub in figure.subfigs] == [
        "normal_cell_0: 14 choices",
        "reduction_cell_0: 14 choices",
    ]
    heat = plot_alpha_heatmap(result).axes[0]
    rows = [label.get_text() for label in heat.get_yticklabels()]
    assert [sid for sid, row in zip(result.probabilities, rows) if "[dropped]" in row] == dropped
    titles = [ax.get_title() for ax in figure.axes if ax.lines]
    assert sum(DROPPED_LABEL in t for t in titles) == len(dropped) and all(
        "selected: none" in t for t in titles if DROPPED_LABEL in t
    )


def _supernet_with(net, probabilities):
    supernet = SupernetExecutor(net)
    with torch.no_grad():
        for sid, p in probabilities.items():
            supernet.alphas[sid].copy_(torch.tensor(p).log())
    return supernet


def test_the_declared_top_two_rule_equals_darts_genotype_and_other_spaces_keep_the_argmax():
    net = darts_space(_image(), channels=4, layers=3)
    assert derivation_of(net) == TopInputsPerNode(inputs=2)
    probs = _probabilities(net, {("normal", 1, 2): ("sep_conv_3x3", 0.5), ("normal", 0, 5): ("none", 0.9)})
    argmax = {sid: max(range(len(p)), key=p.__getitem__) for sid, p in probs.items()}
    assert TopInputsPerNode(2).derive(SupernetExecutor(net), argmax, probs) == darts_genotype(probs)

    @search_space
    def tiny(x: Tensor) -> Node:
        a = ChoiceOp(Zero(), Identity(), Relu(), names=["none", "skip", "relu"])(x)
        b = ChoiceOp(Zero(), Identity(), Relu(), names=["none", "skip", "relu"])(x)
        c = ChoiceOp(Zero(), Identity(), Relu(), names=["none", "skip", "relu"])(x)
        return Add()(a, b, c)

    plain = tiny(_image())
    assert derivation_of(plain) == ArgmaxPerChoice()  # a user's space declares nothing: argmax per choice
    declared = declare_derivation(tiny(_image()), TopInputsPerNode(inputs=1))
    ids = list(dict.fromkeys(c.switch.id for c in _choices(declared)))
    supernet = _supernet_with(declared, dict(zip(ids, ([0.5, 0.2, 0.3], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1]))))
    # node strengths (best non-none): 0.3, 0.8, 0.7 -> one input kept, the second edge's relu
    assert TopInputsPerNode(1).derive(supernet, supernet.architecture(), supernet.probabilities()) == dict(
        zip(ids, (0, 2, 0))
    )
    with pytest.raises(ValueError, match="positive int"):
        TopInputsPerNode(inputs=0)
    with pytest.raises(TypeError, match="derive"):
        declare_derivation(plain, "top-2")


def test_fairdarts_keeps_its_own_threshold_derivation_on_the_darts_space():
    assert FairDARTS.derives_architecture and not DARTS.derives_architecture
    net = darts_space(_image(), channels=4, layers=3)
    supernet = SupernetExecutor(net)
    picked = {sid: 0 for sid in supernet.switches}
    assert derive(FairDARTS(), supernet, picked) == (picked, "")
    derived, rule = derive(DARTS(), supernet, picked)
    assert rule.startswith("top-2") and sum(v != 0 for v in derived.values()) == 16
