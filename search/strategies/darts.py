"""DARTS, first order (Liu et al., 2019): softmax mixture, alphas stepped on the validation loss."""

from __future__ import annotations

from .base import Strategy


class DARTS(Strategy):
    """First-order DARTS: the base strategy, named."""

    name = "darts"
