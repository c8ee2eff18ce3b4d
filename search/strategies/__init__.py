"""Search strategies, selectable by name in `fit_supernet(strategy=...)` or passed as objects."""
from __future__ import annotations

from typing import Union

from .base import Strategy
from .darts import DARTS

STRATEGIES: dict[str, type[Strategy]] = {"darts": DARTS}


def get_strategy(strategy: Union[str, Strategy]) -> Strategy:
    """A Strategy from its name (default hyper-parameters) or the object itself."""
    if isinstance(strategy, Strategy):
        return strategy
    if isinstance(strategy, str) and strategy.lower() in STRATEGIES:
        return STRATEGIES[strategy.lower()]()
    raise ValueError(f"unknown strategy {strategy!r}; known: {sorted(STRATEGIES)} or a Strategy object")


__all__ = ["DARTS", "STRATEGIES", "Strategy", "get_strategy"]
