"""The strategy/mixture contract: the executor tells the mixture the switch id and the phase, a
strategy's schedule sets the mixture's hyper-parameters through `configure`, and both keep their
checkpointed state in `state_dict()`."""

import functools

import pytest
import torch

from ops import Add, Flatten, Identity, MaxPooling, Zero, conv1d, linear
from search.bilevel import BilevelConfig, BilevelOptimizer
from search.strategies import DARTSMinus, DrNAS, EarlyStopping, FairNAS, Proxyless, SNAS, STRATEGIES
from search.strategies.cell_nodes import cell_nodes
from search.strategies.early_stopping import parameter_free_winners
from supernet import ChoiceOp, Op, OpTraits, SoftmaxMixture, SupernetExecutor, Tensor, search_space
from supernet.mixture import Phase


def space(sum_op=Add):
    x = Tensor("x", (1, 2, 8), ("N", "C", "L"))

    @search_space
    def build(x):
        a = ChoiceOp(functools.partial(conv1d, out_channels=2, kernel_size=3), MaxPooling(3, 1, 1), Zero())(x)
        b = ChoiceOp(Identity(), Zero())(x)
        return linear(Flatten()(sum_op()(a, b)), 3)

    return build(x)


class Recording(SoftmaxMixture):
    def __init__(self):
        super().__init__()
        self.calls = []

    def weights(self, alpha, training, sid=None, phase=None):
        self.calls.append((sid, phase))
        return super().weights(alpha, training, sid, phase)


def test_the_mixture_is_told_the_switch_id_and_the_phase_of_every_pass():
    mixture = Recording()
    supernet = SupernetExecutor(space(), mixture=mixture, seed=0)
    bilevel = BilevelOptimizer(supernet, torch.nn.functional.cross_entropy, BilevelConfig(arch_lr=1e-2), 1)
    x, y = torch.randn(4, 2, 8), torch.tensor([0, 1, 2, 0])
    sids = list(supernet.alphas)
    seen = {}
    passes = [
        ("weight", lambda: bilevel.weight_step(x, y)),
        ("architecture", lambda: bilevel.architecture_step(x, y)),
        ("training", lambda: supernet.train()(x)),
        ("evaluation", lambda: supernet.eval()(x)),
    ]
    for label, run in passes:
        mixture.calls.clear()
        run()
        seen[label] = list(mixture.calls)
    assert seen["weight"] == [(sid, Phase.WEIGHT_STEP) for sid in sids]
    assert seen["architecture"] == [(sid, Phase.ARCHITECTURE_STEP) for sid in sids]
    assert seen["training"] == [(sid, Phase.TRAINING) for sid in sids]
    assert seen["evaluation"] == [(sid, Phase.EVALUATION) for sid in sids]


def test_configure_sets_declared_hyper_parameters_and_names_an_unknown_one():
    mixture = DARTSMinus().mixture()
    mixture.configure(temperature=0.5, skip_weight=0.25)
    assert (mixture.temperature, mixture.skip_weight) == (0.5, 0.25)
    assert mixture.state_dict() == {"temperature": 0.5, "skip_weight": 0.25}
    with pytest.raises(TypeError, match="AuxiliarySkipMixture has no hyper-parameter 'paths'"):
        mixture.configure(paths=2)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_schedule_sets_only_its_mixtures_hyper_parameters(name):
    strategy = STRATEGIES[name]()
    mixture = strategy.mixture()
    for epoch in range(4):
        assert set(strategy.schedule(epoch, 4)) <= set(mixture.hyperparameters)


def test_schedules_reach_the_mixture_through_on_epoch_start():
    supernet = SupernetExecutor(space(), mixture=(snas := SNAS()).mixture(), seed=0)
    snas.on_epoch_start(2, 5, supernet)
    assert supernet.mixture.temperature == pytest.approx(0.97**2) == snas.state_dict()["temperature"]
    drnas = DrNAS()
    supernet = SupernetExecutor(space(), mixture=drnas.mixture(), seed=0)
    drnas.on_epoch_start(9, 10, supernet)  # the last epoch of the decision phase
    assert supernet.mixture.temperature == pytest.approx(0.02)


def test_proxyless_runs_two_paths_in_architecture_steps_only():
    supernet = SupernetExecutor(space(), mixture=Proxyless().mixture(), seed=0)
    sid, alpha = next(iter(supernet.alphas.items()))
    torch.manual_seed(0)
    assert len(supernet.mixture.weights(alpha, True, sid, Phase.ARCHITECTURE_STEP)[1]) == 2
    assert supernet.mixture.sampled[sid]  # the pair is kept by switch id
    assert len(supernet.mixture.weights(alpha, True, sid, Phase.WEIGHT_STEP)[1]) == 1
    assert len(supernet.mixture.weights(alpha, True, sid, Phase.TRAINING)[1]) == 1


def test_fairnas_counts_only_weight_step_passes():
    supernet = SupernetExecutor(space(), mixture=FairNAS().mixture(), seed=0)
    bilevel = BilevelOptimizer(supernet, torch.nn.functional.cross_entropy, BilevelConfig(), 1)
    x, y = torch.randn(4, 2, 8), torch.tensor([0, 1, 2, 0])
    supernet.train()(x)  # a pass outside a weight step: counts for nothing
    assert all(sum(c) == 0 for c in supernet.mixture.counts.values())
    FairNAS().weight_step(bilevel, (x, y))
    cycle = supernet.mixture.cycle
    assert {sid: c for sid, c in supernet.mixture.counts.items()} == {
        sid: [cycle // len(a)] * len(a) for sid, a in supernet.alphas.items()
    }
    restored = FairNAS().mixture()
    restored.load_state_dict(supernet.mixture.state_dict())
    assert restored.counts == supernet.mixture.counts and restored.queues == supernet.mixture.queues


class Total(Op):
    """A sum declared by traits alone (not the `Add` class): cell grouping must follow the trait."""

    traits = OpTraits(pure=True, sum=True)

    def _forward_implementation(self, a, b):
        return a + b


class Concat2(Op):
    """Not a sum: its operands are not one cell node's edges."""

    def _forward_implementation(self, a, b):
        return a * b


def test_cell_nodes_follow_the_declared_sum_trait():
    assert [len(group) for group in cell_nodes(SupernetExecutor(space(Total), seed=0))] == [2]
    assert [len(group) for group in cell_nodes(SupernetExecutor(space(Concat2), seed=0))] == [1, 1]


def test_parameter_free_winners_leave_declared_zeros_out_unless_counted():
    supernet = SupernetExecutor(space(), seed=0)
    first, second = list(supernet.alphas)
    architecture = {first: 1, second: 1}  # max pooling, Zero
    assert parameter_free_winners(supernet, architecture) == [first]
    assert parameter_free_winners(supernet, architecture, count_zero=True) == [first, second]


def test_early_stopping_state_round_trips():
    stopper = EarlyStopping(lambda state: True, patience=3)
    assert not stopper({"epoch": 0}) and not stopper({"epoch": 1})
    again = EarlyStopping(lambda state: True, patience=3)
    again.load_state_dict(stopper.state_dict())
    assert again({"epoch": 2}) and again.stopped_epoch == 2 and again.history == [True] * 3
