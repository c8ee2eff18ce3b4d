"""Zero-cost proxies: score or rank any space's architectures at initialisation, in seconds.

`score(space, proxy, architecture, data)` and `rank(space, proxy, architectures, data)` for the
proxies of `PROXIES` (and "ensemble" in `rank`); `warm_start` turns a ranking into initial alphas
for `fit_supernet(initial_state=...)`; `search.evolve(prefilter=(proxy, k))` evaluates only the
proxy's best of every k candidates. Definitions and papers: `search.zero_cost.proxies`.
"""

from .prefilter import Prefilter
from .scoring import DATA_FREE, ENSEMBLE, PROXIES, Scorer, rank, score
from .warm_start import option_preferences, warm_start

__all__ = [
    "DATA_FREE",
    "ENSEMBLE",
    "PROXIES",
    "Prefilter",
    "Scorer",
    "option_preferences",
    "rank",
    "score",
    "warm_start",
]
