"""Zero-cost prefiltering of the candidates a search evaluates (`search.evolve(prefilter=...)`)."""

from __future__ import annotations

from typing import Any, Callable, Optional

from supernet import Node

from ..loaders import Data
from .scoring import Scorer, check_proxy


class Prefilter:
    """Of every `k` candidates drawn, only the one `proxy` scores best goes on to be evaluated.

    The proxy scores each architecture at initialisation (weights of `seed`, one executor for the
    whole search; scores cached); ties go to the first drawn. k = 1 draws once and scores nothing.
    """

    def __init__(self, space: Node, proxy: str, k: int, data: Optional[Data], seed: int) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"prefilter: k must be an int >= 1 (candidates drawn per evaluated one), got {k!r}")
        if proxy == "ensemble":
            raise ValueError(
                "prefilter: the ensemble ranks a fixed set of architectures; choose one proxy, e.g. 'synflow'"
            )
        check_proxy(proxy, data, ())
        self.proxy, self.k = proxy, k
        self.scorer = Scorer(space, data, seed=seed) if k > 1 else None
        self.scores: dict[tuple, float] = {}

    @classmethod
    def of(cls, space: Node, setting: Any, data: Optional[Data], seed: int) -> Optional["Prefilter"]:
        """A Prefilter from `prefilter=(proxy, k)`; None for None."""
        if setting is None:
            return None
        if not isinstance(setting, (tuple, list)) or len(setting) != 2:
            raise ValueError(f"prefilter must be (proxy, k), e.g. ('synflow', 10), got {setting!r}")
        return cls(space, setting[0], setting[1], data, seed)

    def score(self, architecture: dict[str, Any]) -> float:
        key = tuple(sorted(architecture.items()))
        if key not in self.scores:
            self.scores[key] = self.scorer.score(self.proxy, architecture)
        return self.scores[key]

    def pick(self, draw: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The best by the proxy of `k` candidates from `draw()`."""
        if self.scorer is None:
            return draw()
        candidates = [draw() for _ in range(self.k)]
        scores = [self.score(c) for c in candidates]
        best = max(range(self.k), key=lambda i: (scores[i] if scores[i] == scores[i] else -float("inf"), -i))
        return candidates[best]
