"""Hardware-aware search: the cost term steers the search towards cheaper architectures."""

import functools

import pytest

from ops import AdaptiveAvgPooling, BatchNorm, Flatten, Identity, MaxPooling, Relu, conv1d, linear
from search import fit_supernet
from supernet import ChoiceOp, Tensor, scope, search_space
from supernet.cost import architecture_cost


@scope
def conv_bn(x, kernel_size):
    return Relu()(BatchNorm()(conv1d(x, 8, kernel_size)))


def cost_space():
    x = Tensor("x", (1, 1, 40), ("N", "C", "L"))

    @scope
    def block(h):
        return ChoiceOp(
            functools.partial(conv_bn, kernel_size=7),
            functools.partial(conv_bn, kernel_size=3),
            MaxPooling(3, 1, 1),
            Identity(),
            names=["conv7", "conv3", "maxpool", "skip"],
        )(h)

    @search_space
    def space(x):
        h = conv_bn(x, 5)
        for _ in range(3):
            h = block(h)
        return linear(Flatten()(AdaptiveAvgPooling(1)(h)), 10)

    return space(x)


@pytest.fixture(scope="module")
def data():
    from search.datasets import load_mnist1d

    (x, y), _ = load_mnist1d()
    return x[:768], y[:768]


def exported_flops(result):
    return architecture_cost(result.discretized(), "flops")


def test_larger_cost_weight_gives_monotonically_fewer_flops(data):
    flops = []
    for weight in (0.0, 0.3, 1.0, 3.0):
        result = fit_supernet(
            cost_space(),
            data,
            epochs=3,
            seed=0,
            progress=False,
            on_undecided="ignore",
            cost="flops",
            cost_weight=weight,
            optim={"arch_lr": 3e-2},
        )
        flops.append(exported_flops(result))
        assert "expected_flops" in result.metrics[-1] and result.config["cost_weight"] == weight
    assert all(a >= b for a, b in zip(flops, flops[1:])), flops
    assert flops[-1] < flops[0], flops


def test_target_form_only_penalises_above_the_target(data):
    base = fit_supernet(
        cost_space(), data, epochs=2, seed=0, progress=False, on_undecided="ignore", optim={"arch_lr": 3e-2}
    )
    generous = fit_supernet(
        cost_space(),
        data,
        epochs=2,
        seed=0,
        progress=False,
        on_undecided="ignore",
        cost="flops",
        cost_weight=5.0,
        cost_target=1e12,
        optim={"arch_lr": 3e-2},
    )
    assert generous.architecture == base.architecture  # a target never reached adds nothing
    with pytest.warns(RuntimeWarning, match="no architecture reachable .* cost_target 1.0"):  # below every architecture
        tight = fit_supernet(
            cost_space(),
            data,
            epochs=2,
            seed=0,
            progress=False,
            on_undecided="ignore",
            cost="flops",
            cost_weight=5.0,
            cost_target=1.0,
            optim={"arch_lr": 3e-2},
        )
    assert exported_flops(tight) < exported_flops(base)


def test_cost_arguments_are_checked(data):
    with pytest.raises(ValueError, match="cost_weight, cost_target and latency_table need cost="):
        fit_supernet(cost_space(), data, epochs=1, progress=False, cost_weight=1.0)
    with pytest.raises(ValueError, match="unknown cost kind 'watts'"):
        fit_supernet(cost_space(), data, epochs=1, progress=False, cost="watts", cost_weight=1.0)
