"""Per-epoch schedules of strategy hyper-parameters (temperatures, regulariser weights, skip weights)."""
from __future__ import annotations

from typing import Optional


def linear(start: float, end: float, epoch: int, epochs: int) -> float:
    """`start` at epoch 0, `end` at the last epoch (`epochs - 1`), linear in between."""
    if epochs <= 1:
        return float(start)
    return float(start + (end - start) * min(epoch, epochs - 1) / (epochs - 1))


def exponential(start: float, rate: float, epoch: int, floor: Optional[float] = None) -> float:
    """`start * rate ** epoch`, never below `floor`."""
    value = float(start * rate**epoch)
    return value if floor is None else max(float(floor), value)
