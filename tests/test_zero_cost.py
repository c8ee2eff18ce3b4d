"""Zero-cost proxies: each against a plain-PyTorch computation of its definition on a two-layer
network, determinism, the data refusal, `rank` (coverage, one executor, the ensemble), the
warm start's alphas and the prefilter in evolve."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from ops import AdaptiveAvgPooling, BatchNorm, Flatten, Identity, Relu, conv1d, linear
from search import SearchResult, evolve, fit_supernet, zero_cost
from search.strategies import get_strategy
from search.zero_cost import probe as probe_module
from supernet import BasicExecutor, ChoiceOp, SupernetExecutor, Tensor, search_space

F = torch.nn.functional


def two_layer(bias=False):
    """x (N, 4) -> Linear 3 -> {relu, skip} -> Linear 2."""
    x = Tensor("x", (1, 4), ("N", "F"))

    @search_space
    def net(x):
        h = linear(x, 3, bias=bias)
        h = ChoiceOp(Relu(), Identity(), names=["relu", "skip"])(h)
        return linear(h, 2, bias=bias)

    return net(x)


def layers(space, seed=0):
    state = BasicExecutor(space, seed=seed).state_dict()
    w = [v for k, v in state.items() if k.endswith("weight")]
    w1, w2 = sorted(w, key=lambda t: t.shape[0], reverse=True)  # (3, 4), (2, 3)
    return w1.clone(), w2.clone()


def switch(space):
    return next(iter(zero_cost.architectures.space_choices(space)))


def batch(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 2, (n,), generator=g)


def reference(space, option, x, y):
    w1, w2 = (w.requires_grad_(True) for w in layers(space))
    a1 = x @ w1.T
    a1.retain_grad()
    h = F.relu(a1) if option == "relu" else a1
    a2 = h @ w2.T
    a2.retain_grad()
    loss = F.cross_entropy(a2, y)
    loss.backward()
    return (w1, w2), (a1, a2)


def test_params_and_flops_are_exact_counts():
    space = two_layer(bias=True)
    sid = switch(space)
    assert zero_cost.score(space, "params") == 4 * 3 + 3 + 3 * 2 + 2
    assert zero_cost.score(space, "flops", {sid: "relu"}) == 4 * 3 + 3 + 3 * 2  # the relu's 3 elements
    assert zero_cost.score(space, "flops", {sid: "skip"}) == 4 * 3 + 3 * 2


@pytest.mark.parametrize("option", ["relu", "skip"])
def test_synflow_of_a_linear_chain_is_depth_times_the_path_sum(option):
    space = two_layer()
    w1, w2 = layers(space)
    # all-ones input, |W|: R = 1' |W2| |W1| 1 (ReLU passes positives), and sum |theta dR/dtheta| = R per layer
    ones = lambda n: torch.ones(n, dtype=torch.float64)  # noqa: E731
    r = float(ones(2) @ w2.abs().double() @ w1.abs().double() @ ones(4))
    assert zero_cost.score(space, "synflow", {switch(space): option}) == pytest.approx(2 * r, rel=1e-12)


def test_synflow_removes_batchnorm_and_runs_in_double():
    x = Tensor("x", (1, 2, 6), ("N", "C", "L"))

    @search_space
    def net(x):
        h = BatchNorm()(conv1d(x, 3, 1))
        return linear(Flatten()(AdaptiveAvgPooling(1)(h)), 2)

    space = net(x)
    state = BasicExecutor(space, seed=0).state_dict()
    conv = next(v for k, v in state.items() if v.dim() == 3).abs().double()[:, :, 0]  # (3, 2)
    fc = next(v for k, v in state.items() if v.dim() == 2).abs().double()  # (2, 3)
    r = float(torch.ones(2, dtype=torch.float64) @ fc @ conv @ torch.ones(2, dtype=torch.float64))
    assert zero_cost.score(space, "synflow") == pytest.approx(2 * r, rel=1e-12)


@pytest.mark.parametrize("option", ["relu", "skip"])
def test_snip_grad_norm_fisher_match_plain_pytorch(option):
    space = two_layer()
    x, y = batch()
    (w1, w2), (a1, a2) = reference(space, option, x, y)
    arch = {switch(space): option}
    snip = sum(float((w.detach() * w.grad).abs().sum()) for w in (w1, w2))
    grad_norm = sum(float(w.grad.norm()) for w in (w1, w2))
    fisher = sum(float((a.detach() * a.grad).pow(2).mean(0).mul(0.5).sum()) for a in (a1, a2))
    assert zero_cost.score(space, "snip", arch, (x, y), batch_size=8) == pytest.approx(snip, rel=1e-5)
    assert zero_cost.score(space, "grad_norm", arch, (x, y), batch_size=8) == pytest.approx(grad_norm, rel=1e-5)
    assert zero_cost.score(space, "fisher", arch, (x, y), batch_size=8) == pytest.approx(fisher, rel=1e-5)


def test_jacov_and_nwot_match_their_definitions():
    space = two_layer()
    x, _ = batch()
    w1, w2 = layers(space)
    xg = x.clone().requires_grad_(True)
    (F.relu(xg @ w1.T) @ w2.T).sum().backward()
    v = np.clip(np.linalg.eigvalsh(np.corrcoef(xg.grad.double().numpy())), 0, None)
    jacov = -np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5))
    relu = {switch(space): "relu"}
    assert zero_cost.score(space, "jacov", relu, x, batch_size=8) == pytest.approx(jacov, rel=1e-6)
    code = (x @ w1.T > 0).double()
    kernel = code @ code.T + (1 - code) @ (1 - code).T
    expected = float(torch.linalg.slogdet(kernel)[1])
    assert zero_cost.score(space, "nwot", relu, x, batch_size=8) == pytest.approx(expected, rel=1e-9)
    assert zero_cost.score(space, "nwot", {switch(space): "skip"}, x, batch_size=8) == -math.inf  # no ReLU: K = 0


def test_zen_matches_its_definition():
    space = two_layer()
    g = torch.Generator().manual_seed(3)
    w1, w2 = torch.randn(3, 4, generator=g), torch.randn(2, 3, generator=g)  # Gaussian layers, in execution order
    x = torch.randn(8, 4, generator=g)
    mixed = x + 0.01 * torch.randn(8, 4, generator=g)
    f = lambda z: F.relu(z @ w1.T) @ w2.T  # noqa: E731  (no spatial map: the output is the feature map)
    expected = math.log(float((f(x) - f(mixed)).abs().sum(1).mean()))
    assert zero_cost.score(space, "zen", {switch(space): 0}, batch_size=8, seed=3) == pytest.approx(expected, rel=1e-6)


def test_scores_are_deterministic_and_depend_on_the_seed():
    space = two_layer()
    x, y = batch()
    for proxy in ("synflow", "zen", "snip", "jacov"):
        first = zero_cost.score(space, proxy, None, (x, y), batch_size=8, seed=5)
        assert zero_cost.score(space, proxy, None, (x, y), batch_size=8, seed=5) == first
        assert zero_cost.score(space, proxy, None, (x, y), batch_size=8, seed=6) != first


def test_data_dependent_proxies_refuse_to_run_without_data():
    space = two_layer()
    for proxy in ("snip", "grad_norm", "fisher", "jacov", "nwot"):
        with pytest.raises(ValueError, match=f"proxy '{proxy}' needs data"):
            zero_cost.score(space, proxy)
    with pytest.raises(ValueError, match="needs labels"):
        zero_cost.score(space, "snip", None, batch()[0], batch_size=8)
    for proxy in zero_cost.DATA_FREE:
        assert math.isfinite(zero_cost.score(space, proxy, batch_size=8))
    with pytest.raises(ValueError, match="unknown zero-cost proxy 'synflo'"):
        zero_cost.score(space, "synflo")
    with pytest.raises(ValueError, match="mean rank over architectures"):
        zero_cost.score(space, "ensemble")


def test_architectures_are_validated_naming_the_switch():
    space = two_layer()
    sid = switch(space)
    with pytest.raises(KeyError, match="nonexistent"):
        zero_cost.score(space, "params", {"nonexistent": 0})
    with pytest.raises(ValueError, match=f"picks 'gelu' for {sid}.*relu"):
        zero_cost.score(space, "params", {sid: "gelu"})
    with pytest.raises(ValueError, match=f"picks 7 for {sid}"):
        zero_cost.score(space, "params", {sid: 7})
    assert zero_cost.score(space, "synflow", {sid: "skip"}) == zero_cost.score(space, "synflow", {sid: 1})
    zero_cost.score(space, "synflow", {sid: 1})
    assert next(iter(space.parametrization().values())).current_value == 0  # the space is left as it was


def grid_space(channels=3):
    x = Tensor("x", (1, channels, 8), ("N", "C", "L"))

    @search_space
    def net(x):
        h = x
        for _ in range(2):
            h = ChoiceOp(
                Identity(),
                lambda z: BatchNorm()(Relu()(conv1d(z, channels, 1))),
                lambda z: BatchNorm()(Relu()(conv1d(z, channels, 3))),
                names=["skip", "conv1", "conv3"],
            )(h)
        return linear(Flatten()(AdaptiveAvgPooling(1)(h)), 2)

    return net(x)


def test_rank_covers_every_architecture_exactly_once_with_one_executor(monkeypatch):
    built = []

    class Counting(BasicExecutor):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(probe_module, "BasicExecutor", Counting)
    space = grid_space()
    entries = zero_cost.rank(space, "synflow", progress=False)
    assert len(built) == 1
    keys = [tuple(sorted(e["architecture"].items())) for e in entries]
    ids = sorted(zero_cost.architectures.space_choices(space))
    assert sorted(keys) == sorted(tuple(zip(ids, combo)) for combo in np.ndindex(3, 3))
    assert len(set(keys)) == 9
    assert [e["rank"] for e in entries] == list(range(1, 10))
    assert [e["score"] for e in entries] == sorted((e["score"] for e in entries), reverse=True)
    for e in entries[:3]:  # the shared executor scores as a fresh one does
        assert zero_cost.score(space, "synflow", e["architecture"]) == e["score"]
    assert entries[0]["options"] == {sid: "conv3" for sid in ids}
    import json

    json.dumps(entries)  # plain data


def test_rank_samples_distinct_architectures_by_seed():
    space = grid_space()
    first = zero_cost.rank(space, "params", 5, seed=2, progress=False)
    again = zero_cost.rank(space, "params", 5, seed=2, progress=False)
    assert first == [dict(e, ms=a["ms"]) for e, a in zip(again, first)]
    assert len({tuple(sorted(e["architecture"].items())) for e in first}) == 5
    assert len(zero_cost.rank(space, "params", 50, progress=False)) == 9
    with pytest.raises(TypeError, match="architectures must be"):
        zero_cost.rank(space, "params", "all", progress=False)


def test_ensemble_is_the_mean_rank_of_its_members():
    space = grid_space()
    x = torch.randn(16, 3, 8, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 2, (16,))
    members = ("synflow", "params", "nwot")
    entries = zero_cost.rank(space, "ensemble", None, (x, y), batch_size=16, members=members, progress=False)
    ranks = {m: rankdata([e["scores"][m] for e in entries]) for m in members}
    for i, e in enumerate(entries):
        assert e["score"] == pytest.approx(sum(ranks[m][i] for m in members) / 3)
    with pytest.raises(ValueError, match="'jacov' needs data"):
        zero_cost.rank(space, "ensemble", progress=False)


def test_warm_start_orders_alphas_by_the_options_scores_and_loads_into_fit():
    space = grid_space()
    state = zero_cost.warm_start(space, "params", strategy="darts", seed=0)
    fresh = SupernetExecutor(space, mixture=get_strategy("darts").mixture(), seed=0).state_dict()
    assert state.keys() == fresh.keys()
    assert all(torch.equal(state[k], fresh[k]) for k in fresh if not k.startswith("arch."))
    alphas = [v for k, v in state.items() if k.startswith("arch.")]
    assert len(alphas) == 2
    for alpha in alphas:  # params: skip < conv1 < conv3
        assert alpha[0] < alpha[1] < alpha[2] and abs(float(alpha.sum())) < 1e-6
    x = torch.randn(32, 3, 8, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0].mean(1) > 0).long()
    result = fit_supernet(
        space,
        (x, y),
        strategy="darts",
        epochs=1,
        batch_size=16,
        seed=0,
        initial_state=state,
        progress=False,
        on_undecided="ignore",
    )
    assert set(result.architecture.values()) == {2}  # the warm start's favourite, after one short epoch


def _result(space):
    state = SupernetExecutor(space, seed=0).state_dict()
    return SearchResult(architecture={}, probabilities={}, history={}, metrics=[], supernet_state=state, space=space)


def test_evolve_prefilter_evaluates_the_proxys_best_candidates():
    space = grid_space()
    x = torch.randn(24, 3, 8, generator=torch.Generator().manual_seed(0))
    val = (x, (x[:, 0].mean(1) > 0).long())
    settings = dict(population=4, generations=1, sample_size=2, top=9, seed=0, progress=False, batches=1)
    plain = evolve(_result(space), val, **settings)
    same = evolve(_result(space), val, prefilter=("params", 1), **settings)
    assert [r.architecture for r in same] == [r.architecture for r in plain]  # k = 1: no filtering
    filtered = evolve(_result(space), val, prefilter=("params", 12), **settings)
    params = lambda results: [zero_cost.score(space, "params", r.architecture) for r in results]  # noqa: E731
    assert np.mean(params(filtered)) > np.mean(params(plain))
    assert filtered[0].config["evolution"]["prefilter"] == ["params", 12]
    with pytest.raises(ValueError, match="needs data|prefilter"):
        evolve(_result(space), val, prefilter=("snip", 0), **settings)


def test_value_choices_are_architectures_too():
    from supernet import CategoricalParameter

    x = Tensor("x", (1, 4), ("N", "F"))
    width = CategoricalParameter([2, 5], name="width")

    @search_space
    def net(x):
        return linear(Relu()(linear(x, width, bias=False)), 2, bias=False)

    space = net(x)
    (pid,) = zero_cost.architectures.space_choices(space)
    assert zero_cost.score(space, "params", {pid: 5}) == 4 * 5 + 5 * 2
    entries = zero_cost.rank(space, "params", progress=False)
    assert [(e["architecture"][pid], e["score"]) for e in entries] == [(5, 30.0), (2, 12.0)]
    assert zero_cost.score(space, "synflow", {pid: 2}) > 0
