"""Never a dead network: selections keep a path of non-Zero ops from the input to the output."""

import warnings

import pytest
import torch

from search import fit_supernet
from search.connectivity import connected_architecture, is_connected
from search.spaces.nb201 import NB201_EDGES, NB201_OPS, cell_switches, nb201_1d_space
from search.strategies import DARTS, FairDARTS
from search.strategies.cell_nodes import cell_nodes
from supernet import SupernetExecutor

NONE, SKIP, CONV1, CONV3, POOL = range(5)


def space_and_ids():
    space = nb201_1d_space(channels=4, cells_per_stage=1)
    ids = [s.id for s in cell_switches(space)[0]]  # tied: one genotype, NB201_EDGES order
    return space, dict(zip(NB201_EDGES, ids))


def genotype(ids, **ops):
    """NB201_EDGES -> op index; edges not named are none."""
    return {ids[e]: ops.get(f"e{e[0]}{e[1]}", NONE) for e in NB201_EDGES}


def test_is_connected_follows_the_selected_options_and_stops_at_zero():
    space, ids = space_and_ids()
    assert not is_connected(space, genotype(ids))
    assert is_connected(space, genotype(ids, e03=SKIP))
    assert is_connected(space, genotype(ids, e01=CONV3, e13=POOL))
    # node 2 sums two `none` edges: a conv after it carries zeros, as does the edge into node 1 alone
    assert not is_connected(space, genotype(ids, e01=CONV1, e23=CONV3))
    assert is_connected(space, genotype(ids, e01=CONV1, e12=SKIP, e23=CONV3))


def test_repair_takes_the_connected_alternative_of_lowest_regret():
    space, ids = space_and_ids()
    dead = genotype(ids)
    probabilities = {sid: [0.6, 0.1, 0.1, 0.1, 0.1] for sid in ids.values()}
    probabilities[ids[(0, 3)]] = [0.5, 0.1, 0.1, 0.1, 0.2]  # pool is the cheapest way to connect
    repaired, changed = connected_architecture(space, dead, probabilities)
    assert changed == [ids[(0, 3)]]
    assert repaired == {**dead, ids[(0, 3)]: POOL}
    # a two-edge path is cheaper than one edge whose replacement is very unlikely
    probabilities[ids[(0, 3)]] = [0.9, 0.025, 0.025, 0.025, 0.025]
    probabilities[ids[(0, 1)]] = [0.4, 0.1, 0.3, 0.1, 0.1]
    probabilities[ids[(1, 3)]] = [0.4, 0.1, 0.1, 0.3, 0.1]
    repaired, changed = connected_architecture(space, dead, probabilities)
    assert sorted(changed) == sorted([ids[(0, 1)], ids[(1, 3)]])
    assert repaired[ids[(0, 1)]] == CONV1 and repaired[ids[(1, 3)]] == CONV3
    assert is_connected(space, repaired)
    connected = genotype(ids, e03=SKIP)
    assert connected_architecture(space, connected, probabilities) == (connected, [])


def test_fairdarts_below_threshold_keeps_the_strongest_edge_of_every_node():
    space, ids = space_and_ids()
    strategy = FairDARTS(undecided="drop")  # the paper's rule: every gate below 0.85 is off
    supernet = SupernetExecutor(space, mixture=strategy.mixture(), seed=0)
    logits = {sid: [1.0, -2.0, -1.0, -1.5, -3.0] for sid in ids.values()}  # every gate < 0.85, none strongest
    logits[ids[(0, 2)]] = [1.0, -2.0, -1.0, 0.5, -3.0]  # node 2: edge 0->2's conv3 beats edge 1->2
    logits[ids[(2, 3)]] = [1.0, 0.8, -1.0, -1.5, -3.0]  # node 3: edge 2->3's skip is the strongest
    supernet.set_alphas(logits)
    chosen = strategy.select(supernet)
    assert chosen[ids[(0, 1)]] == CONV1  # node 1 has one edge: kept, with its strongest option
    assert chosen[ids[(0, 2)]] == CONV3 and chosen[ids[(1, 2)]] == NONE
    assert chosen[ids[(2, 3)]] == SKIP and chosen[ids[(0, 3)]] == NONE and chosen[ids[(1, 3)]] == NONE
    assert is_connected(space, chosen)
    # above the threshold the rule is FairDARTS's own: every edge whose gate passes is kept
    supernet.set_alphas({ids[(1, 3)]: [1.0, -2.0, -1.0, 2.5, -3.0]})
    chosen = strategy.select(supernet)
    assert chosen[ids[(1, 3)]] == CONV3 and chosen[ids[(2, 3)]] == NONE
    assert sorted(len(group) for group in cell_nodes(supernet)[:3]) == [1, 2, 3]


class DeadDARTS(DARTS):
    """A selection that drops every edge (what FairDARTS used to return on a short budget)."""

    name = "dead-darts"

    def select(self, supernet):
        return {sid: 0 for sid in supernet.alphas}


def test_a_disconnecting_selection_is_repaired_with_a_warning():
    space, ids = space_and_ids()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 40, generator=g), torch.randint(0, 10, (64,), generator=g)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_supernet(space, (x, y), strategy=DeadDARTS(), epochs=1, batch_size=16, progress=False)
    messages = [str(w.message) for w in caught if "dead network" in str(w.message)]
    assert len(messages) == 1 and "none ->" in messages[0]
    assert is_connected(space, result.architecture)
    changed = [sid for sid in ids.values() if result.architecture[sid] != NONE]
    assert changed and all(sid in messages[0] for sid in changed)
    assert result.export()(x[:2]).shape == (2, 10)


def test_export_warns_about_a_dead_architecture():
    space, ids = space_and_ids()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 40, generator=g), torch.randint(0, 10, (64,), generator=g)
    result = fit_supernet(space, (x, y), epochs=1, batch_size=16, progress=False, on_undecided="ignore")
    with pytest.warns(RuntimeWarning, match="without a path from its input"):
        result.with_architecture(genotype(ids)).export()
    assert NB201_OPS[NONE] == "none"


def test_a_user_op_declaring_data_independence_cuts_the_path_and_an_undeclared_one_does_not():
    import functools
    from ops import AdaptiveAvgPooling, Flatten, conv1d, linear
    from supernet import ChoiceOp, Op, OpTraits, Tensor, scope, search_space

    class Constant(Op):  # ones of the input's shape: nothing of the data passes
        traits = OpTraits(data_independent=True)

        def _forward_implementation(self, x):
            return torch.ones_like(x)

    class Noise(Op):  # declares nothing: treated as carrying data
        def _forward_implementation(self, x):
            return x + torch.randn_like(x)

    @scope
    def edge(x):
        return ChoiceOp(
            Constant(),
            Noise(),
            functools.partial(conv1d, out_channels=2, kernel_size=1),
            names=["const", "noise", "conv"],
        )(x)

    @search_space
    def space(x):
        return linear(Flatten()(AdaptiveAvgPooling(1)(edge(x))), 2)

    net = space(Tensor("x", (1, 2, 8), ("N", "C", "L")))
    (switch,) = [p for p in net.parametrization() if p.endswith(".choice")]
    assert not is_connected(net, {switch: 0})
    assert is_connected(net, {switch: 1}) and is_connected(net, {switch: 2})


def test_a_budget_never_buys_a_dead_network_and_the_confidence_describes_the_adjusted_pick():
    space, ids = space_and_ids()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 40, generator=g), torch.randint(0, 10, (64,), generator=g)
    # an unreachable FLOPs target: the cheapest architectures (all `none`) are dead, so the budget stops short
    with pytest.warns(RuntimeWarning, match="costs at most the cost_target"):
        result = fit_supernet(
            space, (x, y), epochs=1, batch_size=16, progress=False, cost="flops", cost_target=1.0, on_undecided="ignore"
        )
    assert is_connected(space, result.architecture)
    assert {sid: c["option"] for sid, c in result.confidence.items() if sid in result.architecture} == {
        sid: result.option_names[sid][i] for sid, i in result.architecture.items()
    }
