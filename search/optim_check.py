"""The checks of the optimizer settings (`BilevelConfig`, `optim=`): each setting's type and range.

A wrong value fails when the settings are built, naming the setting, instead of deep inside torch's
optimizers (`'<' not supported between instances of 'str' and 'float'`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import fields
from typing import Any, Callable

# setting -> (what it must be, the test of a number, whether None is allowed)
_RULES: dict[str, tuple[str, Callable[[float], bool], bool]] = {
    "weight_lr": ("a number >= 0 (0: the weights stay as they are)", lambda v: v >= 0, False),
    "weight_lr_min": ("a number >= 0", lambda v: v >= 0, False),
    "weight_momentum": ("a number in [0, 1]", lambda v: 0 <= v <= 1, False),
    "weight_decay": ("a number >= 0", lambda v: v >= 0, False),
    "grad_clip": ("a number >= 0 (0 or None: no clipping)", lambda v: v >= 0, True),
    "arch_lr": ("a number >= 0 (0: the alphas stay frozen; None: the strategy's default)", lambda v: v >= 0, True),
    "arch_weight_decay": ("a number >= 0", lambda v: v >= 0, False),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_optim_settings(config: Any) -> None:
    """Raise TypeError (not a number) or ValueError (out of range) naming the first wrong setting
    of `config` (a BilevelConfig); settings without a rule here are left to their users. Numbers of
    other types (numpy.float32...) are stored as plain floats, so the settings stay JSON-ready."""
    names = {f.name for f in fields(config)}
    for name, (wanted, within, optional) in _RULES.items():
        if name not in names:
            continue
        value = getattr(config, name)
        if value is None and optional:
            continue
        if not _is_number(value):
            raise TypeError(f"optim setting {name} must be {wanted}, got {type(value).__name__} {value!r}")
        if not (math.isfinite(value) and within(value)):
            raise ValueError(f"optim setting {name} must be {wanted}, got {value!r}")
        if type(value) not in (int, float):
            object.__setattr__(config, name, float(value))
    if "arch_betas" in names:
        betas = config.arch_betas
        if not (
            isinstance(betas, (tuple, list)) and len(betas) == 2 and all(_is_number(b) and 0 <= b < 1 for b in betas)
        ):
            raise ValueError(f"optim setting arch_betas must be two numbers in [0, 1) (Adam's betas), got {betas!r}")
        if any(type(b) not in (int, float) for b in betas):
            object.__setattr__(config, "arch_betas", tuple(float(b) for b in betas))
