"""Each compiling pass alone (supernet/passes.py), on one small cell: what it decides, that its
switch turns it off, and that the plan it leads to computes what the reference does."""

from __future__ import annotations

import inspect

import pytest
import torch

from ops import Add, AvgPooling, BatchNorm, Identity, MaxPooling, Relu, Zero, conv2d
from supernet import ChoiceOp, SupernetExecutor, Tensor, search_space
from supernet.combination import Constant, LinearCombination, OffGate, Unit, Weighted
from supernet.passes import PASSES, compile_plan, run_passes, running_options
from supernet.plan import Accumulate, CallContiguous, CallScaledAffine, Combine, LoadWeight
from supernet.plan_options import PlanOptions
from search.strategies import Proxyless


def relu_conv_bn(x, affine=True):
    return BatchNorm(affine=affine)(conv2d(Relu()(x), 4, 3))


@search_space
def cell(stride_one_1x1: bool = False):
    x = Tensor("x", (1, 4, 6, 6), ("N", "C", "H", "W"))
    edges = [
        ChoiceOp(Zero(), Identity(), AvgPooling(3, 1, 1), relu_conv_bn)(x),
        ChoiceOp(Zero(), MaxPooling(3, 1, 1), relu_conv_bn)(x),
    ]
    out = Add()(*edges)
    if stride_one_1x1:
        out = conv2d(out, 4, 1, stride=2)
    return out


def inputs(off=False, space=None):
    """(view, active, off_gates) of the cell: every option active; with `off`, the second option
    of every switch is an exact, differentiable zero (a sampled gate that is off)."""
    ex = SupernetExecutor(space if space is not None else cell(), seed=0)
    active = {sid: tuple(v) for sid, v in ex.option_values().items()}
    return ex.graph_view(), active, {sid: (indices[1],) for sid, indices in active.items()} if off else {}


def state_after(last, enabled=PlanOptions(), off=False, space=None):
    """Every pass's result, by name, up to the pass `last` (a function of `PASSES`)."""
    produces = next(p.produces for p in PASSES if p.function is last)
    return run_passes(*inputs(off, space), enabled, until=produces)


def by_type(nodes, name):
    return [n for n in nodes if type(n).__name__ == name]


def test_select_nodes_never_runs_a_zero_option_beside_another():
    from supernet.passes import select_nodes

    p = state_after(select_nodes)["selection"]
    assert not by_type(p.order, "Zero")
    choice = by_type(p.order, "ChoiceOp")[0]
    assert running_options(choice, {choice.switch.id: (0,)}) == (0,)  # a zero alone still runs


def test_merge_common_subexpressions_runs_the_shared_relu_once_and_can_be_switched_off():
    from supernet.passes import merge_common_subexpressions

    p = state_after(merge_common_subexpressions)["merging"]
    assert len(p.canonical) == 1 and type(next(iter(p.canonical.values()))).__name__ == "Relu"
    assert not state_after(merge_common_subexpressions, PlanOptions().without("common_subexpressions"))[
        "merging"
    ].canonical


def test_fold_mixtures_into_sums_folds_both_edges_into_the_add():
    from supernet.passes import fold_mixtures_into_sums

    assert len(state_after(fold_mixtures_into_sums)["folding"].choices) == 2
    assert not state_after(fold_mixtures_into_sums, PlanOptions().without("sum_folding"))["folding"].choices


def test_fold_affine_outputs_scales_every_batchnorm_ended_option():
    from supernet.passes import fold_affine_outputs

    assert len(state_after(fold_affine_outputs)["scaling"].refs) == 2
    assert not state_after(fold_affine_outputs, PlanOptions().without("affine_folding"))["scaling"].refs


def test_mark_gradients_leaves_off_gate_options_out():
    from supernet.passes import mark_gradients

    on, off = state_after(mark_gradients)["differentiable"], state_after(mark_gradients, off=True)["differentiable"]
    assert len(off) < len(on)
    assert len(state_after(mark_gradients, PlanOptions().without("detaching"), off=True)["differentiable"]) == len(on)


def test_defer_off_gate_options_moves_pure_options_to_the_backward_pass():
    from supernet.passes import defer_off_gate_options

    assert (
        len(state_after(defer_off_gate_options, off=True)["deferrals"]) == 2
    )  # the first edge's identity, the second's max pooling
    assert not state_after(defer_off_gate_options, PlanOptions().without("deferral"), off=True)["deferrals"]


def test_mark_recomputed_terms_picks_the_poolings():
    from supernet.passes import mark_recomputed_terms

    names = {type(n).__name__ for n in state_after(mark_recomputed_terms)["recomputed"]}
    assert names == {"AvgPooling", "MaxPooling"}
    assert not state_after(mark_recomputed_terms, PlanOptions().without("recompute"))["recomputed"]


def test_choose_layout_runs_convolution_graphs_channels_last():
    from supernet.passes import choose_layout

    assert state_after(choose_layout)["channels_last"]
    assert not state_after(choose_layout, PlanOptions().without("channels_last"))["channels_last"]


def test_emit_steps_one_step_per_node_in_the_reference():
    from supernet.passes import emit_steps

    reference = state_after(emit_steps, PlanOptions.none())
    steps = reference["emission"].steps
    assert sum(isinstance(s, Combine) for s in steps) == 2
    assert len(steps) == len(
        [n for n in reference["selection"].order if not (isinstance(n, Tensor) and n.role != "weight")]
    )
    fast = state_after(emit_steps)["emission"].steps
    assert sum(isinstance(s, Accumulate) for s in fast) == 1 and sum(isinstance(s, CallScaledAffine) for s in fast) == 2
    guarded = state_after(emit_steps, space=cell(True))["emission"].steps
    assert sum(isinstance(s, CallContiguous) for s in guarded) == 1  # the strided 1x1 convolution


def test_move_deferred_steps_takes_them_out_of_the_forward_pass():
    from supernet.passes import emit_steps, move_deferred_steps

    before = state_after(emit_steps, off=True)["emission"]
    after = state_after(move_deferred_steps, off=True)["scheduled"]
    moved = sum(len(d.steps) for d in after.deferred.values())
    assert moved == 2 and len(after.steps) == len(before.steps) - moved


def test_release_slots_frees_every_slot_but_the_output_once():
    from supernet.passes import release_slots

    p = state_after(release_slots)
    freed = [s for step in p["steps"] for s in step.frees]
    assert len(freed) == len(set(freed)) and p["scheduled"].output not in freed
    weights = {step.out for step in p["steps"] if isinstance(step, LoadWeight)}
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


def test_the_graph_lists_nodes_in_order_with_their_operands_and_users_keyed_by_node():
    from supernet.graph import Graph

    net = cell()
    graph = Graph(net)
    assert graph.nodes[-1] is net and len(graph) == len(set(graph.nodes))
    for node in graph.nodes:
        assert all(graph.position[o] < graph.position[node] for o in graph.operands(node))
        assert all(node in graph.operands(u) for u in graph.users(node))
    x = graph.nodes[0]
    outside = Relu()(x)  # a user in another graph is not a user in this one
    assert outside in x.users and outside not in graph.users(x) and outside not in graph
    assert len(graph.users(x)) == 7  # every option of the two edges (each convolution option through its ReLU)
    assert graph.position == {n: i for i, n in enumerate(graph.nodes)}


def test_each_pass_is_a_function_of_earlier_results_that_returns_its_own():
    from supernet.passes import (
        Dataflow,
        Scaling,
        Selection,
        fold_affine_outputs,
        merge_common_subexpressions,
        select_nodes,
        trace_readers,
    )

    view, active, off_gates = inputs()
    selection = select_nodes(view, active)
    assert isinstance(selection, Selection) and selection == select_nodes(
        view, active
    )  # a value: same inputs, same result
    merging = merge_common_subexpressions(view, selection)
    flow = trace_readers(view, selection, merging, off_gates)
    assert isinstance(flow, Dataflow) and len(flow.live) == len(selection.order) - len(merging.canonical)
    scaling = fold_affine_outputs(view, flow, fused=True)
    assert isinstance(scaling, Scaling) and len(scaling.refs) == 2
    assert not fold_affine_outputs(view, flow, fused=False).refs  # without fused sums there is nothing to fold into
    with pytest.raises(TypeError):
        scaling.refs[next(iter(scaling.refs))] = None  # frozen: a later pass cannot rewrite an earlier result
    with pytest.raises(AttributeError):
        selection.order = ()
    # the earlier results are what they were
    assert (
        select_nodes(view, active) == selection and trace_readers(view, selection, merging, off_gates).live == flow.live
    )


def test_every_switch_belongs_to_one_pass_of_the_pass_list():
    from supernet.passes import weight_handling

    switches = [p.switch for p in PASSES if p.switch is not None]
    assert len(switches) == len(set(switches))
    assert set(switches) | {"plain_weights"} == set(
        PlanOptions.passes()
    )  # plain_weights acts where the weights are made
    names = [p.produces for p in PASSES]
    assert len(names) == len(set(names))
    for compile_pass in PASSES:  # every switchable pass stands for a result when off
        assert (compile_pass.switch is None) == (compile_pass.off is None)
    assert weight_handling(PlanOptions()).plain and not weight_handling(PlanOptions().without("plain_weights")).plain
    assert not weight_handling(PlanOptions.none()).reads_gates and not weight_handling(PlanOptions.none()).fused
    assert weight_handling(PlanOptions.none().but("deferral")).reads_gates


def test_a_pass_switched_off_stands_for_its_off_value_and_the_rest_still_run():
    for compile_pass in PASSES:
        if compile_pass.switch is None:
            continue
        results = run_passes(*inputs(off=True), PlanOptions().without(compile_pass.switch))
        off = compile_pass.off(**{n: results[n] for n in inspect.signature(compile_pass.off).parameters})
        assert results[compile_pass.produces] == off, compile_pass.switch
        assert results["steps"]  # the plan is still emitted


def test_a_pass_reading_a_result_nothing_produces_is_named():
    from supernet.passes import Pass

    def needs_more(view, layout):
        return None

    with pytest.raises(TypeError, match=r"needs_more reads \['layout'\]"):
        Pass(needs_more, "x").run({"view": None}, PlanOptions())
