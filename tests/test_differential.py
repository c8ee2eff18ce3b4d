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
