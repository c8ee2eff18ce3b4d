"""Each compiling pass alone (supernet/passes.py), on one small cell: what it decides, that its
switch turns it off, and that the plan it leads to computes what the reference does."""
from __future__ import annotations

import pytest
import torch

from ops import Add, AvgPooling, BatchNorm, Identity, MaxPooling, Relu, Zero, conv2d
from supernet import ChoiceOp, SupernetExecutor, Tensor, search_space
from supernet.combination import Constant, LinearCombination, OffGate, Unit, Weighted
from supernet.passes import PASSES, PlanState, compile_plan, running_options
from supernet.plan import Accumulate, CallContiguous, CallScaledAffine, Combine, LoadWeight
from supernet.plan_options import PlanOptions
from search.strategies import Proxyless


def relu_conv_bn(x, affine=True):
    return BatchNorm(affine=affine)(conv2d(Relu()(x), 4, 3))


@search_space
def cell(stride_one_1x1: bool = False):
    x = Tensor("x", (1, 4, 6, 6), ("N", "C", "H", "W"))
    edges = [ChoiceOp(Zero(), Identity(), AvgPooling(3, 1, 1), relu_conv_bn)(x),
             ChoiceOp(Zero(), MaxPooling(3, 1, 1), relu_conv_bn)(x)]
    out = Add()(*edges)
    if stride_one_1x1:
        out = conv2d(out, 4, 1, stride=2)
    return out


def state_after(last, enabled=PlanOptions(), off=False, space=None):
    ex = SupernetExecutor(space if space is not None else cell(), seed=0)
    view = ex.graph_view()
    active = {sid: tuple(v) for sid, v in ex.option_values().items()}
    # off: the second option of every switch is an exact, differentiable zero (a sampled gate that is off)
    off_gates = {sid: (indices[1],) for sid, indices in active.items()} if off else {}
    p = PlanState(view, active, off_gates, enabled)
    for compile_pass in PASSES[:PASSES.index(last) + 1]:
        compile_pass(p)
    return p


def by_type(nodes, name):
    return [n for n in nodes if type(n).__name__ == name]


def test_select_nodes_never_runs_a_zero_option_beside_another():
    from supernet.passes import select_nodes
    p = state_after(select_nodes)
    assert not by_type(p.order, "Zero")
    choice = by_type(p.order, "ChoiceOp")[0]
    assert running_options(choice, {choice.switch.id: (0,)}) == [0]  # a zero alone still runs


def test_merge_common_subexpressions_runs_the_shared_relu_once_and_can_be_switched_off():
    from supernet.passes import merge_common_subexpressions
    p = state_after(merge_common_subexpressions)
    assert len(p.canonical) == 1 and type(next(iter(p.canonical.values()))).__name__ == "Relu"
    assert not state_after(merge_common_subexpressions, PlanOptions().without("common_subexpressions")).canonical


def test_fold_mixtures_into_sums_folds_both_edges_into_the_add():
    from supernet.passes import fold_mixtures_into_sums
    assert len(state_after(fold_mixtures_into_sums).folded) == 2
    assert not state_after(fold_mixtures_into_sums, PlanOptions().without("sum_folding")).folded


def test_fold_affine_outputs_scales_every_batchnorm_ended_option():
    from supernet.passes import fold_affine_outputs
    p = state_after(fold_affine_outputs)
    assert len(p.scaled) == 2
    assert not state_after(fold_affine_outputs, PlanOptions().without("affine_folding")).scaled


def test_mark_gradients_leaves_off_gate_options_out():
    from supernet.passes import mark_gradients
    on, off = state_after(mark_gradients), state_after(mark_gradients, off=True)
    assert len(off.differentiable) < len(on.differentiable)
    assert len(state_after(mark_gradients, PlanOptions().without("detaching"), off=True).differentiable) == len(on.differentiable)


def test_defer_off_gate_options_moves_pure_options_to_the_backward_pass():
    from supernet.passes import defer_off_gate_options
    p = state_after(defer_off_gate_options, off=True)
    assert len(p.groups) == 2  # the identity of the first edge, the max pooling of the second
    assert not state_after(defer_off_gate_options, PlanOptions().without("deferral"), off=True).groups


def test_mark_recomputed_terms_picks_the_poolings():
    from supernet.passes import mark_recomputed_terms
    p = state_after(mark_recomputed_terms)
    names = {type(n).__name__ for n in p.order if id(n) in p.recomputed}
    assert names == {"AvgPooling", "MaxPooling"}
    assert not state_after(mark_recomputed_terms, PlanOptions().without("recompute")).recomputed


def test_choose_layout_runs_convolution_graphs_channels_last():
    from supernet.passes import choose_layout
    assert state_after(choose_layout).channels_last
    assert not state_after(choose_layout, PlanOptions().without("channels_last")).channels_last


def test_emit_steps_one_step_per_node_in_the_reference():
    from supernet.passes import emit_steps
    reference = state_after(emit_steps, PlanOptions.none())
    assert sum(isinstance(s, Combine) for s in reference.steps) == 2
    assert len(reference.steps) == len([n for n in reference.order if not (isinstance(n, Tensor) and n.role != "weight")])
    fast = state_after(emit_steps)
    assert sum(isinstance(s, Accumulate) for s in fast.steps) == 1 and sum(isinstance(s, CallScaledAffine) for s in fast.steps) == 2
    guarded = state_after(emit_steps, space=cell(True))
    assert sum(isinstance(s, CallContiguous) for s in guarded.steps) == 1  # the strided 1x1 convolution


def test_move_deferred_steps_takes_them_out_of_the_forward_pass():
    from supernet.passes import emit_steps, move_deferred_steps
    before, after = state_after(emit_steps, off=True), state_after(move_deferred_steps, off=True)
    moved = sum(len(d.steps) for d in after.deferred.values())
    assert moved == 2 and len(after.steps) == len(before.steps) - moved


def test_release_slots_frees_every_slot_but_the_output_once():
    from supernet.passes import release_slots
    p = state_after(release_slots)
    freed = [s for step in p.steps for s in step.frees]
    assert len(freed) == len(set(freed)) and p.slot(p.view.output) not in freed
    weights = {step.out for step in p.steps if isinstance(step, LoadWeight)}
    assert weights <= set(freed)


@pytest.mark.parametrize("name", PlanOptions.passes())
def test_each_pass_alone_matches_the_reference(name):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6, 6)
    outs, grads = [], []
    for enabled in (PlanOptions.none(), PlanOptions.none().but(name), PlanOptions().without(name)):
        model = SupernetExecutor(cell(), mixture=Proxyless().mixture(), seed=0, optimize=enabled)
        model.set_alphas({sid: torch.arange(len(a), dtype=torch.float) for sid, a in model.alphas.items()})
        torch.manual_seed(1)
        out = model(x)
        out.square().mean().backward()
        outs.append(out.detach())
        grads.append({k: p.grad for k, p in model.named_parameters() if p.grad is not None})
    for out, grad in zip(outs[1:], grads[1:]):
        torch.testing.assert_close(out, outs[0], rtol=1e-4, atol=1e-5)
        assert grad.keys() == grads[0].keys()
        for k in grad:
            torch.testing.assert_close(grad[k], grads[0][k], rtol=1e-4, atol=1e-5)


def test_linear_combination_term_types():
    y = [torch.randn(5, requires_grad=True) for _ in range(3)]
    c = torch.tensor(0.3, requires_grad=True)
    off = torch.tensor(0.0, requires_grad=True)
    z = torch.randn(5)
    out = LinearCombination.apply((Unit(), Constant(2.0), Weighted(), OffGate(lambda: z)), y[0], y[1], y[2], c, off)
    torch.testing.assert_close(out, y[0] + 2 * y[1] + 0.3 * y[2])
    out.sum().backward()
    torch.testing.assert_close(off.grad, z.sum())
    torch.testing.assert_close(c.grad, y[2].detach().sum())
    torch.testing.assert_close(y[1].grad, torch.full((5,), 2.0))


def test_compile_plan_is_the_passes_in_order():
    ex = SupernetExecutor(cell(), seed=0)
    active = {sid: tuple(v) for sid, v in ex.option_values().items()}
    plan = compile_plan(ex.graph_view(), active)
    assert plan.counts == ex.plan().counts
