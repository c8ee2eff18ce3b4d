"""Search strategies: each one's defining property, and every strategy end to end by name."""

import collections
import functools

import pytest
import torch
from torch import nn
from torch.func import functional_call

from ops import Add, AdaptiveAvgPooling, AvgPooling, BatchNorm, Flatten, Identity, Relu, Zero, conv1d, linear
from search import BilevelConfig, BilevelOptimizer, fit_supernet
from search.strategies import (
    DARTS,
    GDAS,
    PCDARTS,
    SNAS,
    STRATEGIES,
    BetaDARTS,
    DARTSMinus,
    DrNAS,
    EarlyStopping,
    FairDARTS,
    Proxyless,
    SecondOrderDARTS,
    get_strategy,
    parameter_free_winners,
)
from search.strategies.pcdarts import channel_shuffle
from supernet import ChoiceOp, SupernetExecutor, Tensor, get_nodes, lazy, scope, search_space

OPTIONS = ["conv3", "conv1", "skip", "avgpool", "none"]


def relu_conv_bn(x, kernel_size, channels):
    return BatchNorm()(conv1d(Relu()(x), channels, kernel_size))


def tiny_space(channels=8, length=16, classes=3, batchnorm=True, first="conv3"):
    """Two cell nodes: n1 = e(x), n2 = e(x) + e(n1), then a linear head; 5 options per edge."""
    x = Tensor("x", (1, channels, length), ("N", "C", "L"))
    conv = relu_conv_bn if batchnorm else (lambda h, kernel_size, channels: conv1d(Relu()(h), channels, kernel_size))

    @scope
    def edge(h):
        options = {
            "conv3": functools.partial(conv, kernel_size=3, channels=channels),
            "conv1": functools.partial(conv, kernel_size=1, channels=channels),
            "skip": Identity(),
            "avgpool": AvgPooling(3, 1, 1),
            "none": Zero(),
        }
        names = [first] + [n for n in OPTIONS if n != first]
        return ChoiceOp(*[options[n] for n in names], names=names)(h)

    @search_space
    def space(x):
        n1 = edge(x)
        n2 = Add()(edge(x), edge(n1))
        return linear(Flatten()(AdaptiveAvgPooling(1)(n2)), classes)

    return space(x)


def tiny_data(n=64, channels=8, length=16, classes=3, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, length, generator=g, dtype=dtype)
    y = (x[:, :, : length // 2].mean(dim=(1, 2)) > 0).long() + (x[:, 0].mean(dim=1) > 0.2).long()
    return x, y.clamp(max=classes - 1)


def count_option_calls(supernet):
    """Wrap every option output node: Counter of calls per ChoiceOp id."""
    calls = collections.Counter()
    for choice in supernet.choices:
        for option in choice.operands:
            original = option._forward_implementation

            def wrapped(*args, _original=original, _id=choice.id, **mode):
                calls[_id] += 1
                return _original(*args, **mode)

            option._forward_implementation = wrapped  # instance attribute: what the executor calls
    return calls


def bilevel_for(supernet, **config):
    return BilevelOptimizer(supernet, nn.functional.cross_entropy, BilevelConfig(**config), total_epochs=1)


# --- every strategy, by name, end to end ------------------------------------------------------------


# after one epoch, a strategy may select none on every path of the tiny space: the repair says so
@pytest.mark.filterwarnings("ignore:the .* selection leaves the network without a path:RuntimeWarning")
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_by_name_searches_one_epoch_and_exports(name):
    space = tiny_space()
    x, y = tiny_data()
    result = fit_supernet(
        space, (x, y), strategy=name, epochs=1, batch_size=16, seed=0, progress=False, on_undecided="ignore"
    )
    assert result.config["strategy"]["name"] == name
    switches = {c.switch.id for c in SupernetExecutor(space).choices}
    if not get_strategy(name).learns_architecture:  # weights only: the result selects nothing
        assert result.architecture == {}
        result = result.with_architecture({sid: 1 for sid in switches})
    assert set(result.architecture) == switches
    assert all(0 <= i < len(OPTIONS) for i in result.architecture.values())
    assert all(torch.isfinite(torch.tensor(r["val_loss"])) for r in result.metrics)
    for model in (result.export(), result.export(inherit_weights=True)):
        assert not any("arch" in n for n, _ in model.named_parameters())
        assert model(x[:5]).shape == (5, 3)


def test_unknown_strategy_and_objects_with_hyper_parameters():
    with pytest.raises(ValueError, match="unknown strategy 'nope'.*gdas"):
        get_strategy("nope")
    result = fit_supernet(
        tiny_space(),
        tiny_data(),
        strategy=GDAS(tau_max=5.0, tau_min=1.0),
        epochs=2,
        batch_size=16,
        progress=False,
        on_undecided="ignore",
    )
    assert result.config["strategy"] == {
        "name": "gdas",
        "warmup_epochs": 0,
        "temperature": 5.0,
        "tau_max": 5.0,
        "tau_min": 1.0,
        "relative_gradient": True,
        "compared": 2,
    }


def test_softmax_temperature_schedule():
    strategy = DARTS(temperature=(4.0, 1.0))
    supernet = SupernetExecutor(tiny_space(), mixture=strategy.mixture())
    assert supernet.mixture.temperature == 4.0
    strategy.on_epoch_start(3, 4, supernet)
    assert supernet.mixture.temperature == 1.0 and strategy.config()["temperature"] == [4.0, 1.0]
    result = fit_supernet(
        tiny_space(),
        tiny_data(),
        strategy=DARTS(temperature=(4.0, 1.0)),
        epochs=2,
        batch_size=16,
        progress=False,
        on_undecided="ignore",
    )
    assert result.config["strategy"]["temperature"] == [4.0, 1.0]


def test_warmup_epochs_train_only_the_weights():
    result = fit_supernet(
        tiny_space(),
        tiny_data(),
        strategy=GDAS(warmup_epochs=1),
        epochs=2,
        batch_size=16,
        progress=False,
        on_undecided="ignore",
    )
    epochs = result.history["epochs"]
    for logits in result.history["logits"].values():
        warm = [row for row, epoch in zip(logits, epochs) if epoch == 0]
        assert all(row == [0.0] * len(OPTIONS) for row in warm)
        assert logits[-1] != [0.0] * len(OPTIONS)


# --- DARTS, second order --------------------------------------------------------------------------


def test_second_order_gradient_matches_finite_differences_of_the_unrolled_objective():
    torch.manual_seed(0)
    space = tiny_space(channels=2, length=8, batchnorm=False)
    supernet = SupernetExecutor(space, seed=0).double()
    supernet.set_alphas({sid: torch.randn(len(OPTIONS), dtype=torch.float64) for sid in supernet.alphas})
    bilevel = bilevel_for(supernet)
    train, val = tiny_data(16, 2, 8, seed=1, dtype=torch.float64), tiny_data(16, 2, 8, seed=2, dtype=torch.float64)
    xi = 0.5
    strategy = SecondOrderDARTS(xi=xi)
    grads, _, _ = strategy.unrolled_gradient(bilevel, train, val)

    names, weights = zip(*supernet.named_weight_parameters())

    def unrolled_objective():  # L_val(w - xi * grad_w L_train(w, alpha), alpha), exactly
        train_loss = nn.functional.cross_entropy(supernet(train[0]), train[1])
        dw = torch.autograd.grad(train_loss, weights, allow_unused=True)
        unrolled = {n: nn.Parameter((w - xi * (0 if g is None else g)).detach()) for n, w, g in zip(names, weights, dw)}
        with torch.no_grad():
            return float(nn.functional.cross_entropy(functional_call(supernet, unrolled, (val[0],)), val[1]))

    h = 1e-5
    for alpha, grad in zip(bilevel.alphas, grads):
        estimate = torch.zeros_like(alpha)
        for i in range(len(alpha)):
            with torch.no_grad():
                alpha[i] += h
            plus = unrolled_objective()
            with torch.no_grad():
                alpha[i] -= 2 * h
            minus = unrolled_objective()
            with torch.no_grad():
                alpha[i] += h
            estimate[i] = (plus - minus) / (2 * h)
        assert torch.allclose(grad, estimate, rtol=1e-4, atol=1e-7), (grad, estimate)

    first_order, _, _ = SecondOrderDARTS(xi=0.0).unrolled_gradient(bilevel, train, val)
    assert max(float((a - b).abs().max()) for a, b in zip(grads, first_order)) > 1e-3  # the second-order term matters


def test_second_order_step_updates_only_alphas_and_restores_statistics():
    supernet = SupernetExecutor(tiny_space(), seed=0)
    bilevel = bilevel_for(supernet, arch_lr=0.1)
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    SecondOrderDARTS().architecture_step(bilevel, tiny_data(16, seed=1), tiny_data(16, seed=2))
    changed = {k for k, v in supernet.state_dict().items() if not torch.equal(before[k], v)}
    assert changed and all(k.startswith("arch.") for k in changed)


# --- GDAS and SNAS --------------------------------------------------------------------------------


def test_gdas_runs_exactly_one_option_per_choice_op_and_every_logit_learns():
    supernet = SupernetExecutor(tiny_space(), mixture=GDAS().mixture(), seed=0)
    supernet.set_alphas({sid: torch.randn(len(OPTIONS)) for sid in supernet.alphas})
    calls = count_option_calls(supernet)
    x, y = tiny_data(8)
    torch.manual_seed(0)
    for step in range(1, 6):
        nn.functional.cross_entropy(supernet(x), y).backward()
        assert dict(calls) == {c.id: step for c in supernet.choices}
    alpha = supernet.arch_parameters()[0]
    alpha.grad = None
    w, run = supernet.mixture.weights(alpha, training=True)
    assert len(run) == 1 and torch.equal(w.detach(), nn.functional.one_hot(torch.tensor(run[0]), len(OPTIONS)).float())
    (3.0 * w[run[0]]).backward()  # straight-through: the sampled gate carries the gradient of the soft sample
    assert (alpha.grad != 0).all()
    supernet.eval()
    calls.clear()
    supernet(x)
    assert dict(calls) == {c.id: 1 for c in supernet.choices}


def test_gdas_never_samples_nor_selects_a_zero_option():
    supernet = SupernetExecutor(tiny_space(), mixture=GDAS().mixture(), seed=0)
    none = OPTIONS.index("none")
    supernet.set_alphas({sid: torch.tensor([0.0, 0.0, 0.0, 0.0, 5.0]) for sid in supernet.alphas})  # none far ahead
    sid, alpha = next(iter(supernet.alphas.items()))
    torch.manual_seed(0)
    assert all(supernet.mixture.weights(alpha, training=True, sid=sid)[1] != [none] for _ in range(200))
    assert all(p[none] == 0.0 for p in supernet.probabilities().values())
    assert none not in supernet.architecture().values()


def test_gdas_temperature_anneals_linearly_from_10_to_0_1():
    strategy = GDAS()
    supernet = SupernetExecutor(tiny_space(), mixture=strategy.mixture())
    taus = []
    for epoch in range(5):
        strategy.on_epoch_start(epoch, 5, supernet)
        taus.append(supernet.mixture.temperature)
    assert taus == pytest.approx([10.0, 7.525, 5.05, 2.575, 0.1])


def test_snas_weights_are_relaxed_random_samples_and_every_option_runs():
    strategy = SNAS()
    supernet = SupernetExecutor(tiny_space(), mixture=strategy.mixture(), seed=0)
    calls = count_option_calls(supernet)
    alpha = next(iter(supernet.alphas.values()))
    w1, run = supernet.mixture.weights(alpha.detach(), training=True)
    w2, _ = supernet.mixture.weights(alpha.detach(), training=True)
    assert run is None and not torch.equal(w1, w2)
    assert float(w1.sum()) == pytest.approx(1.0) and float(w1.max()) < 1.0  # relaxed, not one-hot
    supernet(tiny_data(4)[0])
    assert dict(calls) == {c.id: len(OPTIONS) - 1 for c in supernet.choices}  # all but Zero
    strategy.on_epoch_start(10, 20, supernet)
    assert supernet.mixture.temperature == pytest.approx(0.97**10)
    # one objective, as in the paper: the architecture step reads the training batch
    bilevel = bilevel_for(supernet)
    strategy.architecture_step(bilevel, tiny_data(8), None)


# --- FairDARTS -------------------------------------------------------------------------------------


def test_fairdarts_weights_are_independent_sigmoids_not_summing_to_one():
    strategy = FairDARTS()
    supernet = SupernetExecutor(tiny_space(), mixture=strategy.mixture(), seed=0)
    alphas = {sid: torch.tensor([2.0, 1.0, 0.5, -1.0, 0.0]) for sid in supernet.alphas}
    supernet.set_alphas(alphas)
    supernet(tiny_data(4)[0])
    for sid, alpha in supernet.alphas.items():
        w, _ = supernet.mixture.weights(alpha, supernet.training)
        assert torch.allclose(w, torch.sigmoid(alphas[sid]))
        assert abs(float(w.detach().sum()) - 1.0) > 0.5
    sig = torch.sigmoid(torch.tensor([2.0, 1.0, 0.5, -1.0, 0.0]))
    assert float(strategy.regularizer(supernet).detach()) == pytest.approx(-10 * float(((sig - 0.5) ** 2).mean()))


def test_fairdarts_keeps_decided_on_and_undecided_edges_and_drops_decided_off_ones():
    logit = lambda p: float(torch.logit(torch.tensor(p)))  # noqa: E731
    for strategy in (FairDARTS(), FairDARTS(undecided="drop")):
        supernet = SupernetExecutor(tiny_space(), mixture=strategy.mixture())
        into_n2, into_n1, n1_into_n2 = supernet.alphas  # n1 = e(x); n2 = e(x) + e(n1)
        supernet.set_alphas(
            {
                into_n2: [
                    logit(0.9),
                    logit(0.95),
                    0.0,
                    0.0,
                    5.0,
                ],  # conv1 above the threshold (Zero's own gate ignored)
                into_n1: [0.0, 0.0, logit(0.86), 0.0, 0.0],
                n1_into_n2: [logit(0.8), logit(0.6), 0.0, 0.0, -5.0],  # undecided: between 0.15 and 0.85
            }
        )
        paper = strategy.undecided == "drop"
        # the paper's rule drops the undecided edge; the default keeps its strongest option
        assert strategy.select(supernet) == {into_n2: 1, into_n1: 2, n1_into_n2: 4 if paper else 0}
        supernet.set_alphas({n1_into_n2: [logit(0.12), logit(0.1), -3.0, -3.0, -5.0]})  # decided off: dropped by both
        assert strategy.select(supernet) == {into_n2: 1, into_n1: 2, n1_into_n2: 4}
        # n1's only edge off: a node keeps its strongest edge rather than none
        supernet.set_alphas({into_n1: [logit(0.1), logit(0.05), -4.0, -4.0, 0.0]})
        assert strategy.select(supernet) == {into_n2: 1, into_n1: 0, n1_into_n2: 4}
    with pytest.raises(ValueError, match="undecided"):
        FairDARTS(undecided="maybe")
    with pytest.raises(ValueError, match="threshold"):
        FairDARTS(threshold=0.3)


# --- DrNAS ----------------------------------------------------------------------------------------


def test_drnas_weights_are_random_in_training_and_the_dirichlet_mean_in_eval():
    strategy = DrNAS()
    supernet = SupernetExecutor(tiny_space(), mixture=strategy.mixture(), seed=0)
    alpha = next(iter(supernet.alphas.values()))
    with torch.no_grad():
        alpha.copy_(torch.tensor([1.0, 0.5, 0.0, -0.5, 2.0]))
    mixture = supernet.mixture
    w1, _ = mixture.weights(alpha, training=True)
    w2, _ = mixture.weights(alpha, training=True)
    assert not torch.allclose(w1, w2)
    assert float(w1.detach().sum()) == pytest.approx(1.0) and (w1 > 0).all()
    e1, _ = mixture.weights(alpha, training=False)
    e2, _ = mixture.weights(alpha, training=False)
    beta = nn.functional.elu(alpha.detach()) + 1
    assert torch.equal(e1, e2) and torch.allclose(e1, beta / beta.sum())
    w1.pow(2).sum().backward()  # pathwise gradient through the draw
    assert (alpha.grad != 0).all()
    x = tiny_data(4)[0]
    supernet.eval()
    assert torch.equal(supernet(x), supernet(x))
    supernet.train()
    assert not torch.equal(supernet(x), supernet(x))


def test_drnas_regulariser_is_the_kl_to_the_uniform_dirichlet():
    strategy = DrNAS()
    supernet = SupernetExecutor(tiny_space(), mixture=strategy.mixture())
    assert float(strategy.regularizer(supernet).detach()) == pytest.approx(0.0, abs=1e-6)  # alpha = 0: beta = 1
    supernet.set_alphas({sid: torch.tensor([3.0, 0.0, 0.0, 0.0, 0.0]) for sid in supernet.alphas})
    reg = strategy.regularizer(supernet)
    assert float(reg.detach()) > 0
    reg.backward()
    assert all(a.grad[0] > 0 for a in supernet.arch_parameters())  # pulls the concentration back


# --- PC-DARTS --------------------------------------------------------------------------------------


def test_pcdarts_sends_one_kth_of_the_channels_through_the_options():
    supernet = SupernetExecutor(tiny_space(channels=8), mixture=PCDARTS(k=4).mixture(), seed=0)
    assert set(supernet.mixture.partial) == set(supernet.choices)
    seen = collections.defaultdict(set)
    for choice in supernet.choices:
        for nodes in supernet.option_subgraphs(choice)[1]:
            for node in nodes:
                if isinstance(node, Tensor):
                    continue
                original = node._forward_implementation

                def wrapped(x, *rest, _original=original, _id=choice.id, **mode):
                    seen[_id].add(x.shape[1])
                    out = _original(x, *rest, **mode)
                    seen[_id].add(out.shape[1])
                    return out

                node._forward_implementation = wrapped
    out = supernet(tiny_data(4)[0])
    out.sum().backward()
    assert dict(seen) == {c.id: {2} for c in supernet.choices}  # every op inside an option: C/K = 2 channels
    # only the leading 2 x 2 block of each option conv weight is used, hence trained
    for name, p in supernet.named_weight_parameters():
        if name.endswith("Conv1d_0.weight"):
            assert p.grad[:2, :2].abs().sum() > 0 and p.grad[2:].abs().sum() == 0 and p.grad[:, 2:].abs().sum() == 0


def test_pcdarts_output_is_the_shuffled_partial_mixture_plus_bypass():
    x = Tensor("x", (1, 8, 10), ("N", "C", "L"))

    @search_space
    def space(x):
        return ChoiceOp(
            Identity(), AvgPooling(3, 1, 1), functools.partial(conv1d, out_channels=8, kernel_size=3), Zero()
        )(x)

    supernet = SupernetExecutor(space(x), mixture=PCDARTS(k=4).mixture(), seed=0)
    alpha = torch.tensor([0.3, -0.2, 1.0, 0.5])
    supernet.set_alphas({next(iter(supernet.alphas)): alpha})
    data = torch.randn(3, 8, 10)
    w = torch.softmax(alpha, 0)
    (weight,) = [p for n, p in supernet.named_weight_parameters()]
    part = data[:, :2]
    mixed = (
        w[0] * part
        + w[1] * nn.functional.avg_pool1d(part, 3, 1, 1)
        + w[2] * nn.functional.conv1d(part, weight[:2, :2], padding=1)
    )
    expected = channel_shuffle(torch.cat([mixed, data[:, 2:]], 1), 4)
    assert torch.allclose(supernet(data), expected, atol=1e-6)
    assert torch.equal(
        channel_shuffle(torch.arange(8.0).reshape(1, 8, 1), 4).flatten(), torch.tensor([0.0, 2, 4, 6, 1, 3, 5, 7])
    )


def test_pcdarts_edge_normalisation_weights_the_edges_of_a_sum():
    supernet = SupernetExecutor(tiny_space(), mixture=PCDARTS().mixture(), seed=0)
    betas = [n for n, _ in supernet.arch.named_parameters() if n.startswith("edge_beta")]
    assert len(betas) == 2 and len(supernet.arch_parameters()) == 3 + 2  # the two edges summed into n2
    bilevel = bilevel_for(supernet, arch_lr=0.1)
    before = [p.detach().clone() for p in bilevel.alphas]
    PCDARTS().architecture_step(bilevel, None, tiny_data(16))
    assert all(not torch.equal(b, p) for b, p in zip(before, bilevel.alphas))  # betas learn with the alphas


def test_pcdarts_runs_on_the_nb201_space():
    from search.spaces import nb201_1d_space

    supernet = SupernetExecutor(nb201_1d_space(channels=8, num_classes=3), mixture=PCDARTS().mixture(), seed=0)
    assert set(supernet.mixture.partial) == set(supernet.choices)
    out = supernet(torch.randn(4, 1, 40))
    assert out.shape == (4, 3)
    out.sum().backward()


def test_pcdarts_narrows_depthwise_and_reduction_edges_of_the_darts_space():
    from search.spaces.darts import darts_space

    net = darts_space(Tensor("x", (1, 1, 32), ("N", "C", "L")), channels=8, layers=3, num_classes=3)
    supernet = SupernetExecutor(net, mixture=PCDARTS().mixture(), seed=0)
    assert set(supernet.mixture.partial) == set(supernet.choices)
    assert sorted(set(supernet.mixture.partial.values())) == [1, 2]  # normal and stride-2 edges
    convs = []
    for choice in supernet.choices:
        width = lazy(choice.shape())[1]
        for nodes in supernet.option_subgraphs(choice)[1]:
            for node in nodes:
                if type(node).__name__ != "Conv1d":
                    continue
                original = node._forward_implementation

                def wrapped(x, *rest, _node=node, _original=original, _width=width, groups=None):
                    convs.append((_width, x.shape[1], lazy(_node.groups) if groups is None else groups))
                    return _original(x, *rest, groups=groups)

                node._forward_implementation = wrapped
    groups = {n.id: n.groups for n in get_nodes(net) if type(n).__name__ == "Conv1d"}
    out = supernet(torch.randn(2, 1, 32))
    out.sum().backward()
    assert out.shape == (2, 3)
    assert groups == {n.id: n.groups for n in get_nodes(net) if type(n).__name__ == "Conv1d"}  # restored after the run
    depthwise = [(w, c, g) for w, c, g in convs if g != 1]
    assert depthwise and all(c == g == w // 4 for w, c, g in depthwise)  # one group per remaining channel
    assert all(c in (w // 4, w // 8) for w, c, _ in convs)  # C/K, or C/2K inside FactorizedReduce


# --- ProxylessNAS ----------------------------------------------------------------------------------


def saved_activation_bytes(step):
    """Bytes of distinct storages autograd saves for backward while `step()` runs."""
    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(storages.values())


def test_proxyless_keeps_one_or_two_paths_and_less_memory_than_darts():
    x, y = tiny_data(32, channels=8, length=64)
    batch = (x, y)
    peaks = {}
    for strategy in (DARTS(), Proxyless()):
        torch.manual_seed(0)
        supernet = SupernetExecutor(tiny_space(length=64), mixture=strategy.mixture(), seed=0)
        bilevel = bilevel_for(supernet)
        calls = count_option_calls(supernet)
        arch = saved_activation_bytes(lambda: strategy.architecture_step(bilevel, batch, batch))
        arch_calls = dict(calls)
        calls.clear()
        weight = saved_activation_bytes(lambda: bilevel.weight_step(*batch))
        if isinstance(strategy, Proxyless):
            assert dict(calls) == {c.id: 1 for c in supernet.choices}  # weight step: one path
            assert all(1 <= n <= 2 for n in arch_calls.values()) and 2 in arch_calls.values()  # arch step: two
        peaks[strategy.name] = (arch, weight)
    assert max(peaks["proxyless"]) < max(peaks["darts"]), peaks
    assert peaks["proxyless"][1] < 0.5 * peaks["darts"][1], peaks  # one path of four in the weight step


def test_proxyless_architecture_step_keeps_the_unsampled_probabilities():
    strategy = Proxyless()
    supernet = SupernetExecutor(tiny_space(), mixture=strategy.mixture(), seed=0)
    supernet.set_alphas({sid: torch.randn(len(OPTIONS)) for sid in supernet.alphas})
    bilevel = bilevel_for(supernet, arch_lr=0.1)
    before = {sid: a.detach().clone() for sid, a in supernet.alphas.items()}
    strategy.architecture_step(bilevel, None, tiny_data(16))
    moved = 0
    for sid, param in supernet.alphas.items():
        pair, alpha = supernet.mixture.sampled[sid], param.detach()
        rest = [i for i in range(len(OPTIONS)) if i not in pair]
        assert torch.equal(alpha[rest], before[sid][rest])
        assert float(torch.logsumexp(alpha[pair], 0)) == pytest.approx(
            float(torch.logsumexp(before[sid][pair], 0)), abs=1e-5
        )
        moved += not torch.equal(alpha[pair], before[sid][pair])
    assert moved > 0


# --- DARTS- and beta-DARTS -------------------------------------------------------------------------


def test_darts_minus_adds_a_decaying_auxiliary_skip_outside_the_softmax():
    x = Tensor("x", (1, 4, 10), ("N", "C", "L"))

    @search_space
    def space(x):
        return ChoiceOp(functools.partial(conv1d, out_channels=4, kernel_size=3), AvgPooling(3, 1, 1), Zero())(x)

    net = space(x)
    strategy = DARTSMinus()
    supernet = SupernetExecutor(net, mixture=strategy.mixture(), seed=0)
    plain = SupernetExecutor(net, seed=0)
    assert len(supernet.arch_parameters()) == 1  # the skip weight is no architecture parameter
    data = torch.randn(2, 4, 10)
    skip_weights = []
    for epoch in range(4):
        strategy.on_epoch_start(epoch, 4, supernet)
        skip_weights.append(supernet.mixture.skip_weight)
        assert torch.allclose(supernet(data), plain(data) + skip_weights[-1] * data, atol=1e-6)
    assert skip_weights == pytest.approx([1.0, 0.75, 0.5, 0.25])


def test_beta_darts_regulariser_is_the_mean_logsumexp_with_increasing_weight():
    strategy = BetaDARTS()
    supernet = SupernetExecutor(tiny_space(), mixture=strategy.mixture())
    alphas = {sid: torch.randn(len(OPTIONS)) for sid in supernet.alphas}
    supernet.set_alphas(alphas)
    weights = []
    for epoch in (0, 10, 50):
        strategy.on_epoch_start(epoch, 50, supernet)
        weights.append(strategy.weight)
    assert weights == pytest.approx([0.0, 5.0, 25.0])
    reg = strategy.regularizer(supernet)
    expected = 25.0 * torch.stack([torch.logsumexp(a, 0) for a in alphas.values()]).mean()
    assert float(reg.detach()) == pytest.approx(float(expected))
    reg.backward()  # gradient lambda/|S| * softmax(alpha): every logit decays, the largest most
    for sid, alpha in supernet.alphas.items():
        assert torch.allclose(alpha.grad, 25.0 / 3 * torch.softmax(alphas[sid], 0))
    ramped = BetaDARTS(lambda_max=2.0, ramp_epochs=None)
    ramped.on_epoch_start(2, 4, supernet)
    assert ramped.weight == pytest.approx(1.0)


# --- early stopping --------------------------------------------------------------------------------


def test_early_stopping_on_parameter_free_winners():
    space = tiny_space(first="skip")  # at alpha = 0 every edge selects its first option: skip
    supernet = SupernetExecutor(space)
    assert len(parameter_free_winners(supernet, supernet.architecture())) == 3
    stop = EarlyStopping("parameter_free", max_parameter_free=2)
    result = fit_supernet(
        space,
        tiny_data(),
        strategy="darts",
        epochs=4,
        batch_size=16,
        progress=False,
        on_undecided="ignore",
        callbacks=[stop],
    )
    assert len(result.metrics) == 1 and stop.stopped_epoch == 0

    never = EarlyStopping("parameter_free", max_parameter_free=2)
    result = fit_supernet(
        tiny_space(),
        tiny_data(),
        epochs=2,
        batch_size=16,
        progress=False,
        on_undecided="ignore",
        callbacks=[never],
        optim={"arch_lr": 0.0},
    )
    assert len(result.metrics) == 2 and never.stopped_epoch is None


def test_early_stopping_with_a_callable_and_the_stable_criterion():
    by_epoch = EarlyStopping(lambda state: state["epoch"] >= 1)
    assert (
        len(
            fit_supernet(
                tiny_space(),
                tiny_data(),
                epochs=5,
                batch_size=16,
                progress=False,
                on_undecided="ignore",
                callbacks=[by_epoch],
            ).metrics
        )
        == 2
    )
    stable = EarlyStopping("stable", patience=2)
    result = fit_supernet(
        tiny_space(),
        tiny_data(),
        epochs=6,
        batch_size=16,
        progress=False,
        on_undecided="ignore",
        callbacks=[stable],
        optim={"arch_lr": 0.0},
    )
    assert len(result.metrics) == 3 and stable.history == [False, True, True]
