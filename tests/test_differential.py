"""Differential testing, quick mode: the optimised engine against the reference interpreter.

Random spaces in the public language (benchmarks/differential.py draws them with hypothesis) and
the ready-made spaces at their smallest sizes run, in subprocesses (a native crash fails the batch
and names its case), through the reference plan, the full optimisation and every rewrite pass
switched off alone and on alone: outputs, every weight and logit gradient and the BatchNorm
statistics after each step agree. The long mode is `python benchmarks/differential.py`.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import differential

from supernet import SupernetExecutor
from supernet.plan_options import PlanOptions

QUICK = settings(
    max_examples=2,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def failures_of(results: list[dict]) -> list[str]:
    return [f"{json.dumps(r['spec'])}\n  {r['failures']}" for r in results if r["failures"]]


@QUICK
@given(specs=st.lists(differential.case_specs(), min_size=6, max_size=6))
def test_random_spaces_every_pass_alone_agrees_with_the_reference(specs):
    failed = failures_of(differential.run_batch(specs, timeout=300))
    assert not failed, "\n".join(failed)


def test_ready_made_spaces_at_their_smallest_agree_with_the_reference():
    specs = differential.ready_specs("smallest", strategies=("gdas",))
    failed = failures_of(differential.run_batch(specs, ["optimized"], timeout=300))
    assert not failed, "\n".join(failed)


def test_a_crash_is_reported_as_a_failure_of_its_case():
    specs = differential.draw_specs(2)
    results = differential.run_batch(specs, ["optimized"], env={"DIFFERENTIAL_ABORT_AT": "1"})
    assert results[0]["failures"] == []
    assert "process died" in results[1]["failures"][0]


def test_a_mismatch_is_reported(monkeypatch):
    spec = differential.draw_specs(1)[0]
    original = SupernetExecutor.forward

    def off(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        return out + 0.01 if self.optimize else out

    monkeypatch.setattr(SupernetExecutor, "forward", off)
    failures = differential.run_case(spec, ["optimized"])
    assert failures and "output" in failures[0]


def test_plan_options_switch_each_pass_alone():
    everything, none = PlanOptions(), PlanOptions.none()
    assert not none.rewrites and everything.rewrites
    for name in PlanOptions.passes():
        assert not everything.without(name).effective(name) and none.but(name).effective(name)
        assert sum(getattr(none.but(name), n) for n in PlanOptions.passes()) <= 3  # the pass and its prerequisites
    with pytest.raises(ValueError, match="unknown plan pass 'cse'"):
        everything.without("cse")
    with pytest.raises(TypeError, match="optimize must be a bool or PlanOptions"):
        PlanOptions.of("yes")


# --- bf16 mode: both plans under search.precision's autocast, at bf16 tolerances ------------------
@QUICK
@given(specs=st.lists(differential.case_specs(), min_size=6, max_size=6))
def test_random_spaces_agree_with_the_reference_under_bf16_autocast(specs):
    failed = failures_of(differential.run_batch(specs, ["optimized"], timeout=300, precision="bf16-mixed"))
    assert not failed, "\n".join(failed)


def bf16_case() -> dict:
    """A drawn case with convolutions and BatchNorm, whose output bf16 rounds (not a Zero-only space)."""
    return next(s for s in differential.draw_specs(12) if '"conv"' in json.dumps(s) and s["batch"] > 2)


def test_a_bf16_mismatch_of_two_percent_of_the_output_is_reported(monkeypatch):
    original = SupernetExecutor.forward

    def off(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        return out + 0.02 * out.detach().abs().max() if self.optimize else out

    spec = bf16_case()
    assert differential.run_case(spec, ["optimized"], precision="bf16-mixed") == []
    monkeypatch.setattr(SupernetExecutor, "forward", off)
    failures = differential.run_case(spec, ["optimized"], precision="bf16-mixed")
    assert failures and "output" in failures[0] and "tolerance" in failures[0]


def test_a_plan_that_escapes_autocast_in_bf16_mode_is_reported(monkeypatch):
    original = SupernetExecutor.forward

    def float32(self, *args, **kwargs):
        with torch.autocast("cpu", enabled=not self.optimize):
            return original(self, *args, **kwargs)

    monkeypatch.setattr(SupernetExecutor, "forward", float32)
    failures = differential.run_case(bf16_case(), ["optimized"], precision="bf16-mixed")
    assert failures and "dtype torch.float32 vs torch.bfloat16" in failures[0]


def test_bf16_tolerances_are_chosen_per_precision():
    with pytest.raises(ValueError, match=r"precision must be one of \('32', 'bf16-mixed'\), got '16-mixed'"):
        differential.run_case(bf16_case(), ["optimized"], precision="16-mixed")
