"""Alphas initialised from zero-cost proxy scores: a supernet state to start `fit_supernet` from.

`fit_supernet` has no `warm_start=` keyword; `warm_start(space, proxy)` returns the state to pass
as `fit_supernet(space, ..., strategy=s, seed=t, initial_state=warm_start(space, proxy,
strategy=s, seed=t))`: the supernet's weights exactly as that search would initialise them, and
each switch's (and value choice's) logits set from the proxy's ranking.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Union

import torch

from supernet import Node, SupernetExecutor

from ..loaders import Data
from ..strategies import DEFAULT_STRATEGY, Strategy, get_strategy
from .scoring import ENSEMBLE, rank


def option_preferences(entries: list[dict[str, Any]], values: dict[str, list]) -> dict[str, list[float]]:
    """Id -> per option, the mean rank percentile (1 = the best architecture, 0 = the worst) of the
    ranked architectures that take it; 0.5 for an option none of them takes."""
    n = len(entries)
    percentile = [(n - e["rank"]) / (n - 1) if n > 1 else 0.5 for e in entries]
    preferences = {}
    for cid, options in values.items():
        means = []
        for option in options:
            taken = [p for p, e in zip(percentile, entries) if e["architecture"].get(cid) == option]
            means.append(sum(taken) / len(taken) if taken else 0.5)
        preferences[cid] = means
    return preferences


def warm_start(
    space: Node,
    proxy: str,
    data: Optional[Data] = None,
    *,
    strategy: Union[str, Strategy] = DEFAULT_STRATEGY,
    seed: int = 0,
    architectures: Union[None, int, Sequence] = None,
    strength: float = 4.0,
    batch_size: int = 64,
    loss: Optional[Callable] = None,
    members: Sequence[str] = ENSEMBLE,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """A supernet state for `fit_supernet(..., initial_state=...)` whose alphas favour the options
    `proxy` ranks well: `rank(space, proxy, architectures, data, ...)` (every architecture, or n
    sampled), then per switch and option m = the mean rank percentile of the architectures taking
    it (`option_preferences`), and the option's logit `strength * (m - mean over the options)`:
    the logits are ordered as the options' scores, centred on zero. Pass the `strategy` and `seed`
    of the search: the state holds that supernet's initial weights (and any extra architecture
    parameters its mixture adds) so that only the alphas differ from a cold start."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not strength >= 0:
        raise ValueError(f"strength must be a number >= 0 (logit spread), got {strength!r}")
    entries = rank(
        space,
        proxy,
        architectures,
        data,
        batch_size=batch_size,
        seed=seed,
        loss=loss,
        members=members,
        progress=progress,
    )
    supernet = SupernetExecutor(space, mixture=get_strategy(strategy).mixture(), seed=seed)
    preferences = option_preferences(entries, supernet.option_values())
    supernet.set_alphas({cid: [strength * (m - sum(ms) / len(ms)) for m in ms] for cid, ms in preferences.items()})
    return {k: v.detach().clone() for k, v in supernet.state_dict().items()}
