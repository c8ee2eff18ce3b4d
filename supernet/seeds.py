"""Seeds: what every `seed=` argument accepts.

Any integer (`numbers.Integral`: int, numpy.int64...) in [0, 2**63): torch's generators take seeds
below 2**64, and the search derives others from a seed by small offsets. Bools, floats and strings
are refused, naming the argument. A function whose `seed=None` means something (fresh entropy, or
"draw one and record it") says so and calls `optional_seed`.
"""

from __future__ import annotations

import numbers
import random
from typing import Any, Optional

SEED_LIMIT = 2**63


def as_seed(seed: Any, argument: str = "seed") -> int:
    """`seed` as a plain int, or a TypeError / ValueError naming `argument`."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{argument} must be an integer (int or numpy integer), got {type(seed).__name__} {seed!r}")
    value = int(seed)
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{argument} must be in [0, 2**63), got {value}")
    return value


def optional_seed(seed: Any, argument: str = "seed") -> Optional[int]:
    """None, or `seed` checked by `as_seed`."""
    return None if seed is None else as_seed(seed, argument)


def draw_seed() -> int:
    """A fresh seed from the system's entropy, in [0, 2**32) (Lightning's `seed_everything(None)` range)."""
    return random.SystemRandom().randrange(2**32)
