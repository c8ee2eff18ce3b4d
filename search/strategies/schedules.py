"""Per-epoch schedules of strategy hyper-parameters (temperatures, regulariser weights, skip weights)."""

from __future__ import annotations

import math
from typing import Optional

# DARTS's alphas learn at Adam lr 3e-4 for 50 CIFAR-10 epochs of 391 batches: about 20,000 steps
REFERENCE_STEPS = 20_000
SHARPEN_FRACTION = 0.3  # the last 30% of the epochs (at least one) sharpen the softmax
# DrNAS's decision phase ends at this temperature: option weights in the ratio (c_1 / c_2) ** 50, so
# an option 10% less concentrated than the winner keeps 0.5% of its weight (search/strategies/drnas.py)
DECISION_TEMPERATURE = 0.02


def linear(start: float, end: float, epoch: int, epochs: int) -> float:
    """`start` at epoch 0, `end` at the last epoch (`epochs - 1`), linear in between."""
    if epochs <= 1:
        return float(start)
    return float(start + (end - start) * min(epoch, epochs - 1) / (epochs - 1))


def exponential(start: float, rate: float, epoch: int, floor: Optional[float] = None) -> float:
    """`start * rate ** epoch`, never below `floor`."""
    value = float(start * rate**epoch)
    return value if floor is None else max(float(floor), value)


def step_scaled_lr(steps: int, reference_lr: float = 3e-4, maximum: float = 0.05) -> float:
    """`reference_lr * REFERENCE_STEPS / steps`, between `reference_lr` and `maximum`: the total
    Adam step budget of DARTS's 20,000 steps at 3e-4 (about 6 in logit units), spread over a
    shorter search, so that a search that learns by sampling paths moves its logits as far."""
    return float(min(maximum, max(reference_lr, reference_lr * REFERENCE_STEPS / max(1, steps))))


def final_temperature(steps: int) -> float:
    """The softmax temperature a search of `steps` architecture steps ends at: steps / 20,000,
    at most 1. Adam moves each logit by at most about lr per step, so a search S times shorter
    than DARTS's reaches logit gaps about S times smaller; dividing them by a temperature S times
    lower gives the distribution the sharpness it would have after DARTS's full schedule."""
    return min(1.0, max(1, steps) / REFERENCE_STEPS)


def sharpening(epoch: int, epochs: int, steps: int) -> float:
    """The temperature of `epoch`: 1 until the last SHARPEN_FRACTION of the epochs (at least the
    last one), then falling geometrically to `final_temperature(steps)` at the last epoch. The
    early epochs keep DARTS's slow, evidence-accumulating alpha updates (a sharp softmax early
    locks in the options that help an untrained supernet); the late ones make it decide."""
    return geometric_tail(epoch, epochs, final_temperature(steps))


def sharpening_start(epochs: int) -> int:
    """The first epoch of the last SHARPEN_FRACTION of `epochs` (at least the last epoch)."""
    return epochs - max(1, math.ceil(SHARPEN_FRACTION * epochs))


def geometric_tail(epoch: int, epochs: int, final: float) -> float:
    """1 before `sharpening_start(epochs)`, then falling geometrically to `final` at the last epoch."""
    start = sharpening_start(epochs)
    if epoch < start:
        return 1.0
    return float(final ** ((min(epoch, epochs - 1) - start + 1) / (epochs - start)))
