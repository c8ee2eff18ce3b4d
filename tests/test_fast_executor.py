"""The optimized execution plan: same outputs, gradients and statistics as the reference execution
(`optimize=False`) and as the hand-written plain-PyTorch supernet, with its rewrites really applied."""

from __future__ import annotations

import collections
import time

import pytest
import torch
import torch.nn.functional as F

from plain_nb201 import PlainNB201Supernet, load_supernet_state

from ops import AvgPooling, Conv2d, Relu
from search import BilevelConfig, BilevelOptimizer
from search.strategies.gdas import GumbelMixture
from search.spaces import darts_space, nb201_space
from search.strategies import DARTSMinus, GDAS, PCDARTS, Proxyless
from supernet import BasicExecutor, SupernetExecutor, Tensor, discretize

CHANNELS, CELLS, BATCH = 4, 1, 4


def nb201(**kwargs):
    return nb201_space(
        Tensor("x", (1, 3, 32, 32), ("N", "C", "H", "W")), channels=CHANNELS, cells_per_stage=CELLS, **kwargs
    )


def supernet(net=None, optimize=True, mixture=None, seed=0):
    model = SupernetExecutor(net if net is not None else nb201(), mixture=mixture, seed=0, optimize=optimize)
    g = torch.Generator().manual_seed(seed)
    model.set_alphas({sid: torch.randn(len(a), generator=g) for sid, a in model.alphas.items()})
    return model


def data(n=BATCH, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def forward_backward(model, x, y):
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x)
    F.cross_entropy(out, y).backward()
    return out.detach()


def assert_close_grads(a: dict, b: dict):
    assert a.keys() == b.keys()
    scale = max(float(g.abs().max()) for g in b.values() if g is not None)
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=1e-4, atol=1e-6 * scale), name


def ours_in_plain_layout(model: SupernetExecutor, values: dict) -> dict:
    """`values` (ours, by parameter name; buffers from the model) in the plain supernet's names."""
    holder = PlainNB201Supernet(CHANNELS, CELLS)
    state = {k: values.get(k, v) for k, v in model.state_dict().items()}
    load_supernet_state(holder, state, CELLS)
    return holder.state_dict()


def test_optimized_plan_matches_reference_and_plain_supernet():
    x, y = data()
    fast, reference = supernet(optimize=True), supernet(optimize=False)
    plain = PlainNB201Supernet(CHANNELS, CELLS)
    load_supernet_state(plain, reference.state_dict(), CELLS)
    outs = [forward_backward(m, x, y) for m in (fast, reference, plain)]
    assert torch.allclose(outs[0], outs[1], atol=1e-5) and torch.allclose(outs[1], outs[2], atol=1e-5)
    grads = [{n: p.grad for n, p in m.named_parameters()} for m in (fast, reference)]
    assert_close_grads(grads[0], grads[1])  # weights and alphas
    assert any(n.startswith("arch.") for n in grads[0])
    mapped = ours_in_plain_layout(fast, grads[0])
    plain_grads = {n: p.grad for n, p in plain.named_parameters()}
    assert_close_grads({n: mapped[n] for n in plain_grads}, plain_grads)
    # BatchNorm running statistics after a training-mode forward
    buffers = [{k: v for k, v in m.state_dict().items() if "running" in k} for m in (fast, reference)]
    assert buffers[0].keys() == buffers[1].keys() and buffers[0]
    for k in buffers[0]:
        assert torch.allclose(buffers[0][k], buffers[1][k], atol=1e-6), k
    plain_buffers = plain.state_dict()
    for k, v in ours_in_plain_layout(fast, {}).items():
        if "running" in k:
            assert torch.allclose(v, plain_buffers[k], atol=1e-6), k


def test_eval_and_no_grad_outputs_match():
    x, _ = data(seed=1)
    fast, reference = supernet(optimize=True), supernet(optimize=False)
    for model in (fast, reference):
        model.eval()
    with torch.no_grad():  # mixing weights as plain numbers
        assert torch.allclose(fast(x), reference(x), atol=1e-5)
    assert torch.allclose(fast(x), reference(x), atol=1e-5)


def test_bilevel_steps_match_reference():
    (x, y), (xv, yv) = data(seed=2), data(seed=3)
    models = [supernet(optimize=o) for o in (True, False)]
    arch_grads = []
    for model in models:
        bilevel = BilevelOptimizer(model, F.cross_entropy, BilevelConfig(), total_epochs=1)
        bilevel.architecture_step(xv, yv)  # (Adam's first step is lr * sign(grad): compare the gradients)
        arch_grads.append({n: p.grad.clone() for n, p in model.arch.named_parameters()})
        bilevel.weight_step(x, y)  # frozen architecture: the mixing weights enter as constants
        assert all(torch.equal(p.grad, arch_grads[-1][n]) for n, p in model.arch.named_parameters())
    assert_close_grads(arch_grads[0], arch_grads[1])
    states = [m.state_dict() for m in models]
    for k in states[1]:
        if not k.startswith("arch."):
            assert torch.allclose(states[0][k], states[1][k], rtol=1e-4, atol=1e-6), k


def count_calls(monkeypatch, *op_types):
    """Counter of `_forward_implementation` calls per op class (patched on the class, so that the
    plan still treats the nodes as ordinary ops)."""
    calls = collections.Counter()
    for op_type in op_types:
        original = op_type._forward_implementation

        def wrapped(self, *args, _original=original, _name=op_type.__name__):
            calls[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(op_type, "_forward_implementation", wrapped)
    return calls


def test_common_subexpressions_and_folding_happen(monkeypatch):
    fast, reference = supernet(optimize=True), supernet(optimize=False)
    counts = fast.plan().counts
    # per cell: the ReLU and the pooling of each of nodes 0, 1, 2 run once for all their out-edges
    cells = 3 * CELLS
    # per cell: ReLUs 12 -> 3, poolings and identities 6 -> 3; the 2 + 3 edges into nodes 2 and 3 fold into their sums
    assert counts["merged"] == cells * (9 + 3 + 3) and counts["folded_choices"] == cells * 5
    assert counts["scaled_outputs"] == cells * 6 * 2  # every convolution option's BatchNorm absorbs its weight
    assert reference.plan().counts["merged"] == 0
    calls = count_calls(monkeypatch, Relu, AvgPooling, Conv2d)
    x, y = data()
    forward_backward(reference, x, y)
    before = dict(calls)
    calls.clear()
    forward_backward(fast, x, y)
    # reference: a ReLU per convolution option (2 per edge) and a pooling per edge; ReLUs outside cells: 2 per
    # reduction block and 1 in the head; poolings outside cells: 1 per reduction block
    assert before == {"Relu": cells * 12 + 2 * 2 + 1, "AvgPooling": cells * 6 + 2, "Conv2d": cells * 12 + 1 + 2 * 3}
    # and in backward, each edge's pooling again for its mixing weight's gradient (not kept from the forward pass)
    assert dict(calls) == {
        "Relu": cells * 3 + 2 * 2 + 1,
        "AvgPooling": cells * 3 + 2 + cells * 6,
        "Conv2d": cells * 12 + 1 + 2 * 3,
    }
    assert fast.plan().counts["recomputed_terms"] == cells * 6


def test_zero_weights_skip_their_options_when_no_gradient_needs_them(monkeypatch):
    fast = supernet(optimize=True)  # options: none, skip, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
    fast.set_alphas({sid: torch.tensor([0.0, 0.0, float("-inf"), float("-inf"), 0.0]) for sid in fast.alphas})
    calls = count_calls(monkeypatch, Conv2d)
    fast.eval()
    with torch.no_grad():
        out = fast(data()[0])
    assert calls["Conv2d"] == 1 + 2 * 3  # stem and reductions only: no option convolution runs
    assert torch.isfinite(out).all()


def test_gdas_runs_one_option_per_choice_like_the_fixed_architecture(monkeypatch):
    net = nb201()
    model = supernet(net, mixture=GumbelMixture(10.0, hard=True))  # GDAS's sampling, Zero allowed (GDAS() excludes it)
    ops = [3, 1, 2, 4, 3, 0]  # conv3x3, skip, conv1x1, pool, conv3x3, none
    model.set_alphas({sid: [30.0 if i == op else 0.0 for i in range(5)] for sid, op in zip(model.alphas, ops)})
    fixed = BasicExecutor(discretize(net, model.architecture()), seed=0)
    fixed.load_shared_state(model.state_dict())
    calls = count_calls(monkeypatch, Conv2d, AvgPooling, Relu)
    x, y = data()
    torch.manual_seed(0)
    forward_backward(model, x, y)
    ours = dict(calls)
    calls.clear()
    forward_backward(fixed, x, y)
    assert ours["Conv2d"] == calls["Conv2d"] and ours["AvgPooling"] == calls["AvgPooling"]
    assert ours["Relu"] <= calls["Relu"]  # shared ReLUs run once
    # the plan that ran: exactly one option per switch
    assert any(all(len(options) == 1 for options in active) for active, _ in model._compiled)


def test_proxyless_off_gate_options_run_in_backward_only_and_grads_match():
    (x, y) = data(seed=4)
    grads = []
    for optimize in (True, False):
        model = supernet(mixture=Proxyless().mixture(), optimize=optimize)
        model.mixture.paths = 2
        torch.manual_seed(0)
        forward_backward(model, x, y)
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
        if optimize:
            ((key, plan),) = [(k, p) for k, p in model._compiled.items() if any(k[1])]
            assert all(len(a) <= 2 for a in key[0]) and plan.counts["deferred_options"] > 0
    # the weights of the options whose gate is off get no gradient instead of a zero one
    assert set(grads[0]) <= set(grads[1]) and all(not grads[1][n].any() for n in set(grads[1]) - set(grads[0]))
    assert_close_grads(grads[0], {n: grads[1][n] for n in grads[0]})


@pytest.mark.parametrize("optimize", [True, False])
def test_darts_space_matches_reference(optimize):
    net = darts_space(Tensor("x", (1, 3, 16, 16), ("N", "C", "H", "W")), channels=4, layers=3)
    fast, reference = supernet(net, optimize=optimize), supernet(net, optimize=False)
    x, y = torch.randn(2, 3, 16, 16), torch.tensor([1, 2])
    outs = [forward_backward(m, x, y) for m in (fast, reference)]
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    assert_close_grads(
        {n: p.grad for n, p in fast.named_parameters()}, {n: p.grad for n, p in reference.named_parameters()}
    )


def test_auxiliary_skip_mixture_runs_in_the_plan_and_matches_reference():
    x, y = data(seed=5)
    models = [supernet(mixture=DARTSMinus(skip_weight=0.5).mixture(), optimize=o) for o in (True, False)]
    assert all(m.plan() is not None for m in models)  # choice_output of the option input, in the plan
    outs = [forward_backward(m, x, y) for m in models]
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    assert_close_grads(*[{n: p.grad for n, p in m.named_parameters()} for m in models])


def test_partial_channels_run_in_the_one_interpreter_and_match_reference():
    x, y = data(seed=6)
    models = [supernet(mixture=PCDARTS().mixture(), optimize=o) for o in (True, False)]
    for model in models:  # partial channels are one more step kind: what the mixture feeds the options
        assert any(type(step).__name__ == "FeedOptions" for step in model.plan().steps)
    outs = [forward_backward(m, x, y) for m in models]
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    assert_close_grads(*[{n: p.grad for n, p in m.named_parameters()} for m in models])


def test_instance_patch_after_construction_is_respected():
    model = supernet()
    x, y = data()
    forward_backward(model, x, y)
    relus = [n for n in model._nodes if type(n).__name__ == "Relu"]
    calls = collections.Counter()
    for node in relus:
        original = node._forward_implementation
        node._forward_implementation = lambda *a, _o=original, _id=node.id: calls.update([_id]) or _o(*a)
    forward_backward(model, x, y)
    assert set(calls) == {n.id for n in relus} and set(calls.values()) == {1}


def test_darts_supernet_compiles_without_graph_breaks_and_matches():
    """fullgraph=True fails on any graph break. The aot_eager backend captures forward and
    backward graphs as inductor would (~10 s here); inductor's code generation itself takes minutes
    on this 2-core machine (see benchmarks/step.py for the compiled speed-up)."""
    x, y = data()
    eager, model = supernet(), supernet()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    start = time.perf_counter()
    out = forward_backward(compiled, x, y)
    if time.perf_counter() - start > 120:
        pytest.skip(f"compilation took {time.perf_counter() - start:.0f} s on this machine")
    ref = forward_backward(eager, x, y)
    assert torch.allclose(out, ref, atol=1e-5)
    assert_close_grads(
        {n: p.grad for n, p in model.named_parameters()}, {n: p.grad for n, p in eager.named_parameters()}
    )
    torch._dynamo.reset()


def test_every_batchnorm_ended_option_absorbs_its_weight_affine_or_not():
    """DARTS's cell BatchNorms have no affine parameters: the mixing weight becomes their weight."""
    from ops import BatchNorm
    from supernet import ChoiceOp, get_nodes

    net = darts_space(Tensor("x", (1, 3, 16, 16), ("N", "C", "H", "W")), channels=4, layers=3)
    ending_in_bn = sum(isinstance(o, BatchNorm) for c in get_nodes(net) if isinstance(c, ChoiceOp) for o in c.operands)
    assert ending_in_bn > 0 and not any(n.affine for n in get_nodes(net) if isinstance(n, BatchNorm) and "edge" in n.id)
    assert supernet(net).plan().counts["scaled_outputs"] == ending_in_bn


def one_path_and_fixed(strategy, ops=(1, 4, 2, 1, 4, 4)):
    """A supernet whose sampling strategy's logits are peaked on `ops` (skip, pool, conv1x1...), and
    that architecture alone (our executor on the discretized space, same weights)."""
    net = nb201()
    model = supernet(net, mixture=strategy.mixture())
    model.set_alphas({sid: [30.0 if i == op else 0.0 for i in range(5)] for sid, op in zip(model.alphas, ops)})
    fixed = SupernetExecutor(discretize(net, model.architecture()), seed=0)
    fixed.load_shared_state(model.state_dict())
    return model, fixed


@pytest.mark.parametrize(
    "strategy, limit",
    [(GDAS(relative_gradient=False), 1.02), (GDAS(), 1.15), (GDAS(compared=None), 1.3), (Proxyless(), 1.12)],
    ids=["gdas-sampled-gate", "gdas", "gdas-every-option", "proxyless"],
)
def test_one_path_architecture_step_memory_is_that_of_the_fixed_architecture(strategy, limit):
    """Peak memory of an architecture step (proxyless: two paths) against a training pass of the
    architecture alone: gates that are exactly 1 add their option as it is (no copy), pooling
    options are computed again for their gate's gradient instead of being kept, off-gate options
    run in the backward pass only."""
    from step import peak_bytes

    model, fixed = one_path_and_fixed(strategy)
    xv, yv = data(n=16, seed=6)
    bilevel = BilevelOptimizer(model, F.cross_entropy, BilevelConfig(), total_epochs=1)
    torch.manual_seed(0)
    search = peak_bytes(lambda: strategy.architecture_step(bilevel, (xv, yv), (xv, yv)))
    plain = peak_bytes(lambda: forward_backward(fixed, xv, yv))
    # measured here: GDAS with the sampled gate only 1.00, proxyless 1.10 (the issue asks <= 1.3); without
    # recomputed poolings 1.21 / 1.31, without unit gates 1.03 / 1.15: the bounds catch either rewrite
    # missing. GDAS() 1.12 (one other option), GDAS(compared=None) 1.26: the unsampled options compared
    # run in the backward pass for their gates' gradients
    assert search <= limit * plain, (search / plain, search, plain)


def test_gdas_gradients_match_reference_with_unit_gates_and_recomputed_poolings():
    grads = []
    for optimize in (True, False):
        model = supernet(mixture=GDAS().mixture(), optimize=optimize)
        torch.manual_seed(3)
        forward_backward(model, *data(seed=7))
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert any(n.startswith("arch.") for n in grads[0])
    assert grads[0].keys() == grads[1].keys()
    assert_close_grads(grads[0], grads[1])


def test_peak_memory_tracker_counts_live_allocations_only():
    from step import PeakMemory

    with PeakMemory() as tracker:
        a = torch.ones(1000)  # 4000 bytes
        b = a * 2  # 8000 live
        del a
        c = b + 1  # a freed: 8000 live again
        c.add_(1)  # in place: nothing new
        d = c.view(10, 100)  # a view: nothing new
    assert tracker.peak == 8000 and d.numel() == 1000


def test_soft_mixture_peak_memory_is_no_more_than_the_plain_supernet():
    """A chain of mixed edges of 8 convolutions each (nothing to fold): the sum's backward hands each
    term its scaled gradient only when that term's backward runs (`ScaledGradient`), as the plain
    supernet's product nodes do, instead of all 8 at once."""
    from step import PlainChain, batches, chain_space, peak_bytes, plain_step, search_step

    train, val = batches((8, 8, 8), 8)
    ours = peak_bytes(search_step(SupernetExecutor(chain_space(8, 2, 8, 8), seed=0), "darts", train, val))
    plain = peak_bytes(plain_step(PlainChain(8, 2, 8), train, val))
    assert ours <= plain, (ours, plain)


@pytest.mark.parametrize("space", ["nb201", "darts"])
def test_plain_fixed_baselines_are_the_discretized_architecture(space):
    """benchmarks/step.py compares one-path strategies with hand-written single architectures: they
    must hold exactly the weights of the discretized space."""
    from plain_darts import PlainDartsFixedNetwork, darts_genotype
    from plain_nb201 import PlainNB201Network, nb201_genotype
    from step import typical_architecture

    if space == "nb201":
        net, size, build = nb201(), 32, lambda a: PlainNB201Network(nb201_genotype(a), CHANNELS, CELLS)
    else:
        size = 16
        net = darts_space(Tensor("x", (1, 3, 16, 16), ("N", "C", "H", "W")), channels=4, layers=3)
        build = lambda a: PlainDartsFixedNetwork(darts_genotype(a), 4, 10, 3)  # noqa: E731
    for seed in range(3):
        architecture = typical_architecture(SupernetExecutor(net), seed=seed)
        plain, ours = build(architecture), BasicExecutor(discretize(net, architecture))
        assert sorted(p.numel() for p in plain.parameters()) == sorted(p.numel() for p in ours.parameters())
        assert plain(torch.randn(2, 3, size, size)).shape == (2, 10)
