"""Train once, search many: SPOS / FairNAS training, inherited-weight evaluation, constrained evolution."""

import collections
import functools

import pytest
import torch
from torch import nn

from ops import AdaptiveAvgPooling, AvgPooling, BatchNorm, Flatten, Identity, Relu, Zero, conv1d, linear
from search import BilevelConfig, BilevelOptimizer, evolve, fit_supernet
from search.evaluate import PathEvaluator, evaluate_module
from search.recalibration import recalibrate_statistics, recalibration_batches
from search.strategies import SPOS, FairNAS, get_strategy
from search.strategies.paths import UniformPathMixture
from supernet import (
    BasicExecutor,
    CategoricalParameter,
    ChoiceOp,
    IntScalarParameter,
    SupernetExecutor,
    Tensor,
    scope,
    search_space,
)
from supernet.cost import architecture_cost
from supernet.latency import LatencyTable, MeasureSettings

OPTIONS = ["conv3", "conv1", "skip", "avgpool", "none"]


def mixed_space():
    """A stem whose width (2, 4, 6) and kernel (1, 3, 5) are value choices, two 5-option edges, a head."""
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))
    width = IntScalarParameter(2, 6, step_size=2, name="w")
    kernel = CategoricalParameter([1, 3, 5], name="k")

    def conv(h, kernel_size):
        return BatchNorm()(conv1d(Relu()(h), 6, kernel_size))

    @scope
    def edge(h):
        return ChoiceOp(
            functools.partial(conv, kernel_size=3),
            functools.partial(conv, kernel_size=1),
            Identity(),
            AvgPooling(3, 1, 1),
            Zero(),
            names=OPTIONS,
        )(h)

    @search_space
    def space(x):
        h = Relu()(BatchNorm()(conv1d(x, width, kernel)))
        h = conv1d(h, 6, 1)
        h = edge(edge(h))
        return linear(Flatten()(AdaptiveAvgPooling(1)(h)), 3)

    return space(x)


def data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, 16, generator=g)
    y = (x[:, 0, :8].mean(1) > 0).long() + (x[:, 1].mean(1) > 0.1).long()
    return x, y


def bilevel_for(supernet):
    return BilevelOptimizer(supernet, nn.functional.cross_entropy, BilevelConfig(), total_epochs=1)


# --- single-path training -----------------------------------------------------------------------


def test_fairnas_trains_every_option_exactly_equally_often():
    supernet = SupernetExecutor(mixed_space(), mixture=FairNAS().mixture(), seed=0)
    assert sorted(len(a) for a in supernet.alphas.values()) == [3, 3, 5, 5]
    strategy, bilevel = FairNAS(), bilevel_for(supernet)
    strategy.on_epoch_start(0, 1, supernet)
    x, y = data(32)
    forwards = collections.Counter()
    supernet.register_forward_pre_hook(lambda *_: forwards.update(["forward"]))
    torch.manual_seed(0)
    for step in range(1, 4):
        strategy.weight_step(bilevel, (x, y))
        assert forwards["forward"] == 15 * step  # lcm(3, 5) paths per step, one optimizer step
        for sid, counts in supernet.mixture.counts.items():
            assert counts == [15 * step // len(counts)] * len(counts), sid
    with torch.no_grad():  # outside weight steps nothing is counted
        supernet.train()(x)
    assert all(sum(c) == 45 for c in supernet.mixture.counts.values())


def test_fairnas_one_step_sums_the_gradients_of_its_paths():
    torch.manual_seed(0)
    supernet = SupernetExecutor(mixed_space(), mixture=FairNAS().mixture(), seed=0)
    before = {n: p.detach().clone() for n, p in supernet.named_weight_parameters()}
    bilevel = bilevel_for(supernet)
    steps = collections.Counter()
    bilevel.weight_optimizer.register_step_post_hook(lambda *_: steps.update(["step"]))
    FairNAS().weight_step(bilevel, data(32))
    assert steps["step"] == 1
    assert any(not torch.equal(before[n], p) for n, p in supernet.named_weight_parameters())


def test_fairnas_refuses_cycles_over_max_paths():
    supernet = SupernetExecutor(mixed_space(), mixture=FairNAS().mixture(), seed=0)
    with pytest.raises(ValueError, match="cycles of 15 paths.*max_paths=10"):
        FairNAS(max_paths=10).on_epoch_start(0, 1, supernet)


def test_spos_sampled_paths_cover_every_option_and_value():
    supernet = SupernetExecutor(mixed_space(), mixture=UniformPathMixture(), seed=0).train()
    torch.manual_seed(0)
    seen = collections.defaultdict(set)
    for _ in range(60):
        for sid, alpha in supernet.alphas.items():
            gates, active = supernet.mixture.weights(alpha, training=True)
            assert gates.sum() == 1.0 and active == [int(gates.argmax())] and not gates.requires_grad
            seen[sid].add(active[0])
    assert {sid: len(s) for sid, s in seen.items()} == {sid: len(a) for sid, a in supernet.alphas.items()}


@pytest.mark.parametrize("name", ["spos", "fairnas"])
def test_single_path_search_trains_weights_only(name):
    x, y = data()
    calls = collections.Counter()
    strategy = get_strategy(name)
    original = strategy.architecture_step
    strategy.architecture_step = lambda *a: (calls.update(["arch"]), original(*a))[1]
    result = fit_supernet(
        mixed_space(), (x, y), val=data(32, seed=1), strategy=strategy, epochs=2, batch_size=16, seed=0, progress=False
    )
    assert calls["arch"] == 0 and not get_strategy(name).learns_architecture
    assert all(torch.equal(v, torch.zeros_like(v)) for k, v in result.supernet_state.items() if k.startswith("arch."))
    assert result.config["strategy"]["name"] == name
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in result.metrics)
    again = fit_supernet(
        mixed_space(), (x, y), val=data(32, seed=1), strategy=name, epochs=2, batch_size=16, seed=0, progress=False
    )
    assert all(torch.equal(result.supernet_state[k], again.supernet_state[k]) for k in result.supernet_state)


def test_single_path_search_refuses_a_cost_term():
    with pytest.raises(ValueError, match="'spos' learns no architecture.*evolve"):
        fit_supernet(
            mixed_space(),
            data(),
            strategy=SPOS(),
            epochs=1,
            batch_size=16,
            cost="flops",
            cost_weight=1.0,
            progress=False,
        )


# --- inherited-weight evaluation --------------------------------------------------------------


@pytest.fixture(scope="module")
def spos_result():
    x, y = data()
    return fit_supernet(
        mixed_space(), (x, y), val=data(32, seed=1), strategy="spos", epochs=3, batch_size=16, seed=0, progress=False
    )


def test_recalibration_is_the_exact_mean_of_the_batch_statistics():
    x = Tensor("x", (1, 3, 8), ("N", "C", "L"))

    @search_space
    def space(x):
        return Flatten()(BatchNorm(momentum=0.1)(x))

    model = BasicExecutor(space(x))
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(4, 3, 8, generator=g) * (i + 1) + i for i in range(3)]
    assert recalibrate_statistics(model, batches) == 3 and not model.training
    state = model.state_dict()
    mean = next(v for k, v in state.items() if k.endswith("running_mean"))
    var = next(v for k, v in state.items() if k.endswith("running_var"))
    torch.testing.assert_close(mean, torch.stack([b.mean(dim=(0, 2)) for b in batches]).mean(0))
    torch.testing.assert_close(var, torch.stack([b.transpose(0, 1).reshape(3, -1).var(1) for b in batches]).mean(0))
    bn = next(n for n in model.active_nodes() if isinstance(n, BatchNorm))
    assert bn.momentum == 0.1  # restored
    with pytest.raises(ValueError, match="no batch"):
        recalibrate_statistics(model, [])


@pytest.mark.parametrize("recalibrate", [True, False])
def test_evaluate_equals_the_exported_module_with_inherited_weights(spos_result, recalibrate):
    val, train = data(40, seed=2), data()
    # a connected architecture (the last option of an edge is none, and a dead network warns on export)
    architecture = {
        sid: values[-1] if i % 2 and ".edge_" not in sid else values[1]
        for i, (sid, values) in enumerate(PathEvaluator(spos_result).values.items())
    }
    metrics = spos_result.evaluate(
        val, architecture, recalibrate_bn=recalibrate, batches=3, train=train, batch_size=16, seed=5
    )
    chosen = spos_result.with_architecture(architecture)
    exported = chosen.export(inherit_weights=True)
    trained = {k: v.clone() for k, v in exported.state_dict().items()}
    if recalibrate:  # the architecture's own executor, recalibrated alike, gives the exported module its statistics
        executor = BasicExecutor(chosen.discretized())
        executor.load_shared_state(spos_result.supernet_state)
        recalibrate_statistics(executor, recalibration_batches(train, 16, 3, seed=5))
        exported.load_state_dict(executor.state_dict())
        changed = [k for k, v in exported.state_dict().items() if not torch.equal(v, trained[k])]
        assert changed and all("running" in k for k in changed)  # only the statistics were re-estimated
        with pytest.raises(TypeError, match="BasicExecutor"):
            recalibrate_statistics(exported, [val[0]])
    expected = evaluate_module(exported, val, batch_size=16)
    assert metrics["accuracy"] == expected["accuracy"]
    assert metrics["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert metrics["recalibration_batches"] == (3 if recalibrate else 0) and metrics["architecture"] == architecture
    evaluator = PathEvaluator(spos_result)
    evaluator.evaluate(val, architecture, recalibrate_bn=recalibrate, batches=3, train=train, batch_size=16, seed=5)
    with torch.no_grad():
        torch.testing.assert_close(evaluator.supernet(val[0]), exported.eval()(val[0]), rtol=1e-4, atol=1e-5)
    assert spos_result.supernet_state is not evaluator.supernet.state_dict()


def test_evaluate_defaults_to_the_result_architecture_for_any_strategy():
    result = fit_supernet(
        mixed_space(), data(), strategy="darts", epochs=1, batch_size=16, progress=False, on_undecided="ignore"
    )
    metrics = result.evaluate(data(40, seed=2), train=data(), batch_size=16)
    assert metrics["architecture"] == result.architecture and 0.0 <= metrics["accuracy"] <= 1.0
    with pytest.raises(ValueError, match="allows"):
        result.evaluate(data(40), {next(iter(result.architecture)): 99})
    with pytest.raises(KeyError, match="nope"):
        result.evaluate(data(40), {"nope": 0})


# --- constrained evolution --------------------------------------------------------------------


def flops_of(result, architecture):
    return architecture_cost(result.with_architecture(architecture).discretized(), "flops")


@pytest.mark.parametrize("kind", ["flops", "params", "latency"])
def test_evolution_never_evaluates_a_candidate_over_a_constraint(spos_result, monkeypatch, kind):
    # latency: one measured table prices every candidate, so the bound is checked on the same numbers
    table = (
        LatencyTable.measure(
            spos_result.space, progress=False, settings=MeasureSettings(rounds=1, block_seconds=1e-5, calibration=0)
        )
        if kind == "latency"
        else None
    )
    costs = lambda arch: float(architecture_cost(spos_result.with_architecture(arch).discretized(), kind, table=table))  # noqa: E731
    evaluator = PathEvaluator(spos_result)
    torch.manual_seed(0)
    everything = [
        costs({sid: v[int(torch.randint(len(v), ()))] for sid, v in evaluator.values.items()}) for _ in range(40)
    ]
    bound = sorted(everything)[len(everything) // 2]  # about half of the space is over it
    evaluated = []
    original = PathEvaluator.evaluate

    def spy(self, data, architecture=None, **kwargs):
        evaluated.append(dict(architecture))
        return original(self, data, architecture, **kwargs)

    monkeypatch.setattr(PathEvaluator, "evaluate", spy)
    picks = evolve(
        spos_result,
        data(40, seed=2),
        population=6,
        generations=3,
        constraints={kind: bound},
        train=data(),
        batches=2,
        batch_size=16,
        seed=3,
        progress=False,
        latency_table=table,
    )
    assert evaluated and all(costs(a) <= bound for a in evaluated)
    assert len({tuple(sorted(a.items())) for a in evaluated}) == len(evaluated)  # nothing scored twice
    assert 1 <= len(picks) <= 5
    scores = [p.config["evolution"]["val_accuracy"] for p in picks]
    assert scores == sorted(scores, reverse=True) and [p.config["evolution"]["rank"] for p in picks] == list(
        range(1, len(picks) + 1)
    )
    for pick in picks:
        assert costs(pick.architecture) <= bound and pick.config["evolution"]["costs"][kind] == costs(pick.architecture)
        assert pick.export(inherit_weights=True)(data(4)[0]).shape == (4, 3)


def test_evolution_is_seeded(spos_result):
    run = functools.partial(
        evolve,
        spos_result,
        data(40, seed=2),
        population=5,
        generations=2,
        constraints={"flops": 2e4},
        train=data(),
        batches=2,
        batch_size=16,
        progress=False,
    )
    first, again, other = run(seed=1), run(seed=1), run(seed=2)
    assert [p.architecture for p in first] == [p.architecture for p in again]
    assert [p.config["evolution"] for p in first] == [p.config["evolution"] for p in again]
    assert [p.architecture for p in first] != [p.architecture for p in other]


def test_evolution_rejects_bad_constraints(spos_result):
    with pytest.raises(ValueError, match="unknown constraint.*'energy'"):
        evolve(spos_result, data(40), constraints={"energy": 1.0}, progress=False)
    with pytest.raises(ValueError, match="'flops' must be a positive number"):
        evolve(spos_result, data(40), constraints={"flops": -1}, progress=False)
    with pytest.raises(ValueError, match="no random architecture within the constraints"):
        evolve(spos_result, data(40), population=2, generations=0, constraints={"params": 1}, progress=False)
    with pytest.raises(ValueError, match="mutation must be a probability"):
        evolve(spos_result, data(40), mutation=2.0, progress=False)


def test_fairnas_search_resumes_bit_identically(tmp_path):
    class Crash(Exception):
        pass

    def crash(state):
        if state["epoch"] == 1:
            raise Crash

    run = functools.partial(
        fit_supernet, mixed_space(), data(64), strategy="fairnas", epochs=2, batch_size=16, seed=1, progress=False
    )
    uninterrupted = run()
    with pytest.raises(Crash):
        run(checkpoint_dir=tmp_path, callbacks=[crash])
    assert run(checkpoint_dir=tmp_path, resume=True) == uninterrupted


def test_a_weights_only_result_selects_no_architecture_and_says_so(spos_result):
    assert spos_result.architecture == {} and spos_result.confidence == {} and spos_result.chosen_options == {}
    with pytest.raises(ValueError, match="spos or fairnas selects none.*search.evolve"):
        spos_result.export()
    with pytest.raises(ValueError, match="chooses nothing for .*weights-only search"):
        spos_result.evaluate(data(40), train=data(), batch_size=16)
    chosen = PathEvaluator(spos_result).values
    full = {sid: values[-1] for sid, values in chosen.items()}
    assert spos_result.evaluate(data(40), full, train=data(), batch_size=16)["architecture"] == full


def test_a_weights_only_search_raises_no_undecided_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_supernet(mixed_space(), data(), strategy="spos", epochs=1, batch_size=16, progress=False)


def test_fairdarts_selects_value_choices_too():
    # its threshold selection once looked value-choice switches up among the op switches (KeyError)
    result = fit_supernet(
        mixed_space(), data(), strategy="fairdarts", epochs=1, batch_size=16, progress=False, on_undecided="ignore"
    )
    values = PathEvaluator(result).values
    assert set(result.architecture) == set(values) and all(result.architecture[k] in v for k, v in values.items())
