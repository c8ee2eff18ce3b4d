"""The default strategy's decision phase: DrNAS sharpens its Dirichlet over the last 30% of the
epochs, and confidence then judges each choice on the evidence before the phase."""

import warnings

import pytest
import torch

from search import fit_supernet
from search.confidence import UndecidedWarning, result_confidence, summary_table, undecided_message
from search.strategies import DEFAULT_STRATEGY, DARTS, DrNAS
from search.strategies.drnas import DirichletMixture, concentration
from search.strategies.schedules import DECISION_TEMPERATURE, geometric_tail, sharpening_start, step_scaled_lr

from helpers import threshold_data, resume_space


RUN = dict(batch_size=16, seed=0, progress=False)  # threshold_data: halves of 48 -> 3 batches per epoch


def test_the_decision_phase_is_the_last_30_percent_of_the_epochs_falling_geometrically():
    assert [sharpening_start(n) for n in (1, 2, 10, 15, 20)] == [0, 1, 7, 10, 14]
    schedule = [geometric_tail(e, 15, 0.1) for e in range(15)]
    assert schedule[:10] == [1.0] * 10
    assert schedule[-1] == pytest.approx(0.1)
    ratios = [b / a for a, b in zip(schedule[9:-1], schedule[10:])]
    assert ratios == pytest.approx([0.1 ** (1 / 5)] * 5)
    assert geometric_tail(0, 1, 0.1) == pytest.approx(0.1)  # a one-epoch search decides in it


def test_sharpening_keeps_the_order_of_the_options_and_powers_their_ratios():
    alpha = torch.tensor([1.0, 0.8, 0.0, -0.5, -3.0])
    beta = concentration(alpha)
    plain = DirichletMixture(1.0).distribution(alpha)
    assert torch.allclose(plain, beta / beta.sum())
    sharp = DirichletMixture(0.25).distribution(alpha)
    assert torch.argsort(sharp, descending=True).tolist() == torch.argsort(plain, descending=True).tolist()
    assert float(sharp[0] / sharp[1]) == pytest.approx(float(beta[0] / beta[1]) ** 4, rel=1e-4)
    assert float(sharp.max()) > float(plain.max())
    mixture = DirichletMixture(0.25)
    torch.manual_seed(0)
    draws = torch.stack([mixture.weights(alpha, training=True)[0] for _ in range(2000)])
    assert torch.allclose(draws.mean(0), sharp, atol=0.02)  # training draws follow the sharpened mean


def test_a_very_low_temperature_neither_overflows_nor_gives_nan_gradients():
    # beta ** 50 overflows float32; elu(a) + 1 is exactly 0 for a < -17
    alpha = torch.tensor([6.0, 5.9, 0.0, -2.0, -30.0], requires_grad=True)
    mixture = DirichletMixture(0.02)
    c = mixture.concentration(alpha)
    assert torch.isfinite(c).all() and (c > 0).all()
    w, _ = mixture.weights(alpha, training=True)
    (w * torch.arange(5.0)).sum().backward()
    assert torch.isfinite(w).all() and torch.isfinite(alpha.grad).all()
    p = mixture.distribution(alpha.detach())
    assert float(p[0] / p[1]) == pytest.approx((7.0 / 6.9) ** 50, rel=1e-3)


def test_the_default_search_is_drnas_and_ends_at_the_decision_temperature():
    assert DEFAULT_STRATEGY == "drnas"
    epochs = 4
    result = fit_supernet(resume_space(), threshold_data(), epochs=epochs, on_undecided="ignore", **RUN)
    config = result.config["strategy"]
    assert config["name"] == "drnas" and config["final_temperature"] == DECISION_TEMPERATURE
    assert result.history["decision_epoch"] == sharpening_start(epochs) == 2
    for sid, p in result.probabilities.items():
        final = DirichletMixture(DECISION_TEMPERATURE).distribution(torch.tensor(result.history["logits"][sid][-1]))
        assert p == pytest.approx(final.tolist(), rel=1e-5)
        evidence = result.confidence[sid]["evidence"]
        last_before = max(i for i, e in enumerate(result.history["epochs"]) if e < 2)
        assert evidence["step"] == result.history["steps"][last_before]
        before = DirichletMixture(1.0).distribution(torch.tensor(result.history["logits"][sid][last_before]))
        assert evidence["probability"] == pytest.approx(
            float(before[result.option_values[sid].index(result.architecture[sid])]), rel=1e-5
        )
    assert "p before decision" in result.summary()
    # the phase commits and learns nothing: the logits stay as they were when it began, and the
    # learning rate was set from the 2 x 3 steps before it
    last_before = max(i for i, e in enumerate(result.history["epochs"]) if e < 2)
    for sid, logits in result.history["logits"].items():
        frozen = logits[last_before:]
        assert len(frozen) == 7 and all(a == frozen[0] for a in frozen) and logits[0] != frozen[0]
    assert result.config["optim"]["arch_lr"] == step_scaled_lr(6)


def test_a_search_too_short_for_evidence_before_it_has_no_decision_phase():
    assert DrNAS().decision_start(1) is None and DrNAS(warmup_epochs=7).decision_start(10) is None
    assert DrNAS(warmup_epochs=6).decision_start(10) == 7
    result = fit_supernet(resume_space(), threshold_data(), epochs=1, on_undecided="ignore", **RUN)
    assert result.history["decision_epoch"] is None and result.history["logits"] != {}
    assert all(a[-1] != a[0] for a in result.history["logits"].values())  # it learned


def test_without_a_decision_phase_there_is_no_evidence_entry():
    result = fit_supernet(
        resume_space(), threshold_data(), strategy=DrNAS(final_temperature=1.0), epochs=3, on_undecided="ignore", **RUN
    )
    assert result.history["decision_epoch"] is None
    assert all("evidence" not in entry for entry in result.confidence.values())
    for sid, p in result.probabilities.items():
        beta = concentration(torch.tensor(result.history["logits"][sid][-1]))
        assert p == pytest.approx((beta / beta.sum()).tolist(), rel=1e-5)
    sharpened = fit_supernet(
        resume_space(), threshold_data(), strategy=DARTS(temperature="sharpen"), epochs=3, on_undecided="ignore", **RUN
    )
    assert sharpened.history["decision_epoch"] == 2 and all("evidence" in e for e in sharpened.confidence.values())


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, True, "0.1"])
def test_a_bad_final_temperature_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="final_temperature"):
        DrNAS(final_temperature=bad)


def _history(before, after, winners_before=(0, 0, 0), decision_epoch=2):
    """One switch of 3 options recorded at steps 0..5 (epochs 0,0,1,1,2,3): 3 steps with
    `before`, then 2 of the decision phase ending at `after`."""
    probabilities = [list(before)] * 4 + [list(after)] * 2
    winners = list(winners_before) + [winners_before[-1]] + [max(range(3), key=lambda i: after[i])] * 2
    stable = []
    for step, w in enumerate(winners):
        stable.append(stable[-1] if step and winners[step - 1] == w else step)
    return {
        "steps": [0, 1, 2, 3, 4, 5],
        "epochs": [0, 0, 1, 1, 2, 3],
        "decision_epoch": decision_epoch,
        "probabilities": {"s": probabilities},
        "confidence": {"s": {"winner": winners, "stable_since": stable}},
    }


def _confidence(history, after):
    return result_confidence({"s": 0}, {"s": list(after)}, {"s": [0, 1, 2]}, {"s": ["a", "b", "c"]}, history)


def test_an_option_the_phase_picked_among_near_equals_is_undecided_however_sure_it_ends():
    after = (0.95, 0.03, 0.02)
    close = _confidence(_history((0.36, 0.34, 0.30), after), after)["s"]
    assert close["probability"] == pytest.approx(0.95) and close["margin"] > 0.9
    assert close["evidence"] == {
        "probability": pytest.approx(0.36),
        "margin": pytest.approx(0.02),
        "stable_since": 0,
        "step": 3,
    }
    assert not close["decided"]
    message = undecided_message({"s": close}, "drnas", 5)
    assert "before the decision phase" in message and "s: a" in message and "more evidence before the phase" in message
    clear = _confidence(_history((0.6, 0.25, 0.15), after), after)["s"]
    assert clear["evidence"]["margin"] == pytest.approx(0.35) and clear["decided"]
    # the phase overturned the leader: the selected option was not leading before it
    overturned = _confidence(_history((0.3, 0.5, 0.2), after, winners_before=(1, 1, 1)), after)["s"]
    assert (
        overturned["evidence"]["margin"] < 0
        and overturned["evidence"]["stable_since"] is None
        and not overturned["decided"]
    )
    table = summary_table({"close": close, "clear": clear})
    assert "p before decision" in table and "+0.020" in table and table.count("UNDECIDED") == 1
    no_phase = _confidence({**_history((0.36, 0.34, 0.30), after), "decision_epoch": None}, after)["s"]
    assert "evidence" not in no_phase and no_phase["decided"]


def test_the_undecided_warning_of_a_default_search_names_the_evidence():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_supernet(resume_space(), threshold_data(), epochs=2, **{**RUN, "seed": 2})
    undecided = [sid for sid, e in result.confidence.items() if not e["decided"]]
    messages = [str(w.message) for w in caught if issubclass(w.category, UndecidedWarning)]
    # 6 steps: the phase commits (final margins > 0.5) but one choice's evidence was a 0.033 margin
    assert all(e["margin"] > 0.5 for e in result.confidence.values())
    assert len(undecided) == 1 and len(messages) == 1
    assert "before the decision phase" in messages[0] and undecided[0] in messages[0]
