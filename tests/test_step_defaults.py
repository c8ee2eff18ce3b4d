"""Defaults set from the number of architecture steps: the sampling strategies' learning rate,
and the opt-in softmax sharpening schedule."""

import pytest
import torch

from search import fit_supernet
from search.strategies import DARTS, FairDARTS, GDAS
from search.strategies.schedules import REFERENCE_STEPS, SHARPEN_FRACTION, final_temperature, sharpening, step_scaled_lr

from helpers import threshold_data, resume_space


def test_the_step_scaled_learning_rate_keeps_the_darts_step_budget():
    assert step_scaled_lr(REFERENCE_STEPS) == pytest.approx(3e-4)
    assert step_scaled_lr(470) == pytest.approx(3e-4 * 20_000 / 470)  # the oracle benchmark's 10 epochs: 0.0128
    assert step_scaled_lr(40 * REFERENCE_STEPS) == pytest.approx(3e-4)  # never below DARTS's
    assert step_scaled_lr(10) == 0.05  # nor above 0.05
    assert GDAS().default_arch_lr(470) == step_scaled_lr(470)
    assert DARTS().default_arch_lr(470) == FairDARTS().default_arch_lr(470) == 3e-4


def test_a_search_records_the_learning_rate_its_step_count_gave():
    run = dict(epochs=2, batch_size=16, seed=0, progress=False, on_undecided="ignore")  # 2 epochs of 3 batches
    assert fit_supernet(resume_space(), threshold_data(), strategy="gdas", **run).config["optim"][
        "arch_lr"
    ] == step_scaled_lr(6)
    assert (
        fit_supernet(resume_space(), threshold_data(), strategy="gdas", optim={"arch_lr": 1e-3}, **run).config["optim"][
            "arch_lr"
        ]
        == 1e-3
    )


def test_the_final_temperature_scales_with_the_step_count():
    assert final_temperature(REFERENCE_STEPS) == 1.0 and final_temperature(10 * REFERENCE_STEPS) == 1.0
    assert final_temperature(470) == pytest.approx(470 / 20_000)
    assert final_temperature(0) == pytest.approx(1 / 20_000)


def test_sharpening_keeps_one_then_falls_geometrically_over_the_last_epochs():
    epochs, steps = 10, 470
    schedule = [sharpening(e, epochs, steps) for e in range(epochs)]
    sharp = round(SHARPEN_FRACTION * epochs)
    assert schedule[: epochs - sharp] == [1.0] * (epochs - sharp)
    assert schedule[-1] == pytest.approx(final_temperature(steps))
    ratios = [b / a for a, b in zip([1.0] + schedule[-sharp:-1], schedule[-sharp:])]
    assert ratios == pytest.approx([ratios[0]] * sharp) and ratios[0] < 1
    assert sharpening(0, 1, steps) == pytest.approx(final_temperature(steps))  # a one-epoch search sharpens in it
    assert [sharpening(e, 5, REFERENCE_STEPS) for e in range(5)] == [1.0] * 5  # DARTS's own budget: unchanged


def test_a_sharpened_search_ends_at_the_final_temperature_of_its_steps():
    epochs, batches = 2, 3  # threshold_data: 96 samples, halves of 48, batch 16 -> 3 batches per epoch
    result = fit_supernet(
        resume_space(),
        threshold_data(),
        strategy=DARTS(temperature="sharpen"),
        epochs=epochs,
        batch_size=16,
        seed=0,
        progress=False,
        on_undecided="ignore",
    )
    assert result.config["strategy"]["temperature"] == "sharpen" and result.config["optim"]["arch_lr"] == 3e-4
    temperature = final_temperature(epochs * batches)
    alphas = result.history["logits"]
    for sid, p in result.probabilities.items():
        expected = torch.softmax(torch.tensor(alphas[sid][-1]) / temperature, dim=0)
        assert p == pytest.approx(expected.tolist(), rel=1e-5)
    # warm-up epochs make no architecture step: they do not count
    strategy = DARTS(warmup_epochs=2)
    strategy.plan(epochs, batches)
    assert strategy.architecture_steps(epochs) == (epochs - 2) * batches
    fixed = fit_supernet(
        resume_space(),
        threshold_data(),
        strategy="darts",
        epochs=1,
        batch_size=16,
        seed=0,
        progress=False,
        on_undecided="ignore",
    )
    assert fixed.probabilities.keys() == fixed.history["logits"].keys()
    for sid, a in fixed.history["logits"].items():  # per key: pytest >= 9.2 refuses approx of nested dicts
        assert fixed.probabilities[sid] == pytest.approx(torch.softmax(torch.tensor(a[-1]), 0).tolist())
