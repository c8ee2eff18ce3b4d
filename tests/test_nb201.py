"""NAS-Bench-201 cell spaces: parameters, ids, option names, execution in 1-D and 2-D, training."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from supernet import BasicExecutor, ChoiceOp, IntScalarParameter, Tensor, get_nodes, lazy, search_space
from search.spaces import (
    NB201_EDGES,
    NB201_OPS,
    cell,
    cell_switches,
    genotype_string,
    nb201_1d_space,
    nb201_space,
    nb201_switches,
)


SWITCH_ID = re.compile(r"^nb201_space_0\.cell_(\d+)\.edge_([0-2])to([1-3])_0\.ChoiceOp_0\.choice$")


def _input_2d(batch: int = 1, size: int = 32) -> Tensor:
    return Tensor(name="input", shape=(batch, 3, size, size), axis=("N", "C", "H", "W"))


def _input_1d(batch: int = 1) -> Tensor:
    return Tensor(name="input", shape=(batch, 1, 40), axis=("N", "C", "L"))


def test_tied_space_has_six_switches_named_after_cell_0_edges():
    net = nb201_space(_input_2d(), channels=16, cells_per_stage=5)
    params = net.parametrization()
    assert len(params) == 6
    assert all(isinstance(p, IntScalarParameter) and p.values() == [0, 1, 2, 3, 4] for p in params.values())
    edges = set()
    for pid in params:
        match = SWITCH_ID.match(pid)
        assert match and match[1] == "0", pid
        edges.add((int(match[2]), int(match[3])))
    assert edges == set(NB201_EDGES)


def test_untied_space_has_six_switches_per_cell():
    net = nb201_space(_input_2d(), channels=16, cells_per_stage=5, tied=False)
    params = net.parametrization()
    assert len(params) == 6 * 15
    cells = {int(SWITCH_ID.match(pid)[1]) for pid in params}
    assert cells == set(range(15))


def test_cell_switches_and_genotype_string():
    net = nb201_space(_input_2d(), channels=4, cells_per_stage=2)
    per_cell = cell_switches(net)
    assert len(per_cell) == 6 and all(s == per_cell[0] for s in per_cell)  # tied: the same objects
    net.set_parametrization({s.id: k % 5 for k, s in enumerate(per_cell[0])})
    assert genotype_string(per_cell[0]) == (
        "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    )
    untied = cell_switches(nb201_space(_input_2d(), channels=4, cells_per_stage=2, tied=False))
    assert len({id(s) for cell_list in untied for s in cell_list}) == 36


def test_option_names_are_the_nb201_ops_in_order():
    net = nb201_1d_space(_input_1d(), channels=4)
    choices = [n for n in get_nodes(net) if isinstance(n, ChoiceOp)]
    assert len(choices) == 3 * 6
    assert NB201_OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert all(c.option_names() == list(NB201_OPS) for c in choices)


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("tied", [True, False])
def test_random_samples_run_with_the_symbolic_shape(dims, tied):
    batch = 3
    x = _input_1d(batch) if dims == 1 else _input_2d(batch, size=16)
    net = nb201_space(x, channels=4, cells_per_stage=1, tied=tied)
    model = BasicExecutor(net, seed=0)
    for seed in range(4):
        net.sample(seed=seed)
        out = model(torch.randn(*lazy(x.shape())))
        assert tuple(out.shape) == tuple(lazy(net.shape())) == (batch, 10)
        assert torch.isfinite(out).all()


def test_all_none_cells_still_run():
    x = _input_2d(2, size=16)
    net = nb201_space(x, channels=4, cells_per_stage=2, tied=False)
    net.set_parametrization({pid: 0 for pid in net.parametrization()})
    model = BasicExecutor(net, seed=0).eval()
    out = model(torch.randn(2, 3, 16, 16))
    assert tuple(out.shape) == (2, 10) and torch.isfinite(out).all()


def test_shared_switches_tie_cells_across_spaces_built_by_hand():
    switches = nb201_switches()

    @search_space
    def two_cells(x):
        return cell(cell(x, 4, switches), 4, switches)

    x = Tensor(name="input", shape=(2, 4, 12), axis=("N", "C", "L"))
    net = two_cells(x)
    assert set(net.parametrization().values()) == set(switches)
    assert sorted(net.parametrization()) == sorted(s.id for s in switches)
    assert all(s.id.startswith("two_cells_0.cell_0.") for s in switches)
    assert tuple(BasicExecutor(net)(torch.randn(2, 4, 12)).shape) == (2, 4, 12)


def test_cell_rejects_wrong_channels_and_switch_count():
    x = Tensor(name="input", shape=(1, 4, 12), axis=("N", "C", "L"))
    with pytest.raises(ValueError, match="channel"):
        cell(x, 8)
    with pytest.raises(ValueError, match="6 switches"):
        cell(x, 4, nb201_switches()[:5])


def test_1d_space_trains_on_mnist1d():
    from search.datasets import load_mnist1d

    torch.manual_seed(0)
    (x, y), _ = load_mnist1d()
    xb, yb = x[:128], y[:128]
    net = nb201_1d_space(channels=8)
    net.sample(seed=0)
    model = BasicExecutor(net, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(12):
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("dims", [1, 2])
def test_search_a_few_steps_then_export_trains(dims):
    from search import fit_supernet

    torch.manual_seed(0)
    shape = (1, 3, 16) if dims == 1 else (1, 3, 8, 8)
    x = torch.randn(64, *shape[1:])
    y = (x.mean(dim=tuple(range(1, x.dim()))) > 0).long()
    net = nb201_space(
        Tensor("x", shape, ("N", "C", "L") if dims == 1 else ("N", "C", "H", "W")),
        channels=4,
        cells_per_stage=1,
        num_classes=2,
    )
    result = fit_supernet(net, (x, y), epochs=2, batch_size=16, seed=0, progress=False, on_undecided="ignore")
    model = result.export(seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
