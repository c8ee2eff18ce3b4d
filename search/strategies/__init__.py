"""Search strategies, selectable by name in `fit_supernet(strategy=...)` or passed as objects.

Each strategy is one module behind the `Strategy` interface (base.py): its Mixture (how a ChoiceOp
mixes its options), its regulariser, schedules and architecture step, and its selection.
"""

from __future__ import annotations

import difflib
from typing import Union

from .base import Strategy
from .beta_darts import BetaDARTS
from .darts import DARTS
from .darts2 import SecondOrderDARTS
from .darts_minus import DARTSMinus
from .drnas import DrNAS
from .early_stopping import EarlyStopping, parameter_free_winners
from .fairdarts import FairDARTS
from .fairnas import FairNAS
from .gdas import GDAS
from .pcdarts import PCDARTS
from .proxyless import Proxyless
from .snas import SNAS
from .spos import SPOS

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        DARTS,
        SecondOrderDARTS,
        GDAS,
        SNAS,
        FairDARTS,
        DrNAS,
        PCDARTS,
        Proxyless,
        DARTSMinus,
        BetaDARTS,
        SPOS,
        FairNAS,
    )
}

# fit_supernet's strategy when none is given: measured on the oracle benchmark, the one that picks
# top architectures *and* ends decided within a short budget (README, "Defaults and the step count")
DEFAULT_STRATEGY = "drnas"


def get_strategy(strategy: Union[str, Strategy]) -> Strategy:
    """A Strategy from its name (default hyper-parameters) or the object itself. Names are matched
    case-insensitively, surrounding whitespace ignored (`" DrNAS "` is `"drnas"`); an unknown name
    is refused naming the closest known one."""
    if isinstance(strategy, Strategy):
        return strategy
    if not isinstance(strategy, str):
        raise TypeError(
            f"strategy must be a name ({sorted(STRATEGIES)}) or a Strategy object, got {type(strategy).__name__}"
        )
    name = strategy.strip().lower()
    if name in STRATEGIES:
        return STRATEGIES[name]()
    closest = difflib.get_close_matches(name, list(STRATEGIES), n=1, cutoff=0.5)
    hint = f"did you mean {closest[0]!r}? " if closest else ""
    raise ValueError(f"unknown strategy {strategy!r}; {hint}known: {sorted(STRATEGIES)} or a Strategy object")


__all__ = [
    "DEFAULT_STRATEGY",
    "BetaDARTS",
    "DARTS",
    "DARTSMinus",
    "DrNAS",
    "EarlyStopping",
    "FairDARTS",
    "FairNAS",
    "GDAS",
    "PCDARTS",
    "Proxyless",
    "SNAS",
    "SPOS",
    "STRATEGIES",
    "SecondOrderDARTS",
    "Strategy",
    "get_strategy",
    "parameter_free_winners",
]
