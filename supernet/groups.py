"""Groups: the number of groups of a grouped convolution, among the common divisors of its
input and output channel counts (HANNAH's `Groups` parameter of embedded_vision_net)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .expression import bounds, lazy
from .parameters import Parameter, RandomSource


def common_divisors(a: int, b: int) -> list[int]:
    """The ints that divide both `a` and `b`, ascending."""
    return [d for d in range(1, min(a, b) + 1) if a % d == 0 and b % d == 0]


class Groups(Parameter):
    """A group count valid for the current `in_channels` and `out_channels` (ints or expressions):
    its domain is their common divisors, so it follows the widths it depends on. It starts at 1
    (HANNAH: a random valid value), and `set_current` refuses a value that divides not both."""

    def __init__(
        self,
        in_channels: Any,
        out_channels: Any,
        name: Optional[str] = "groups",
        seed: Optional[int] = None,
        rng: RandomSource = None,
    ) -> None:
        super().__init__(name, seed, rng)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.current_value = 1

    def values(self) -> list[int]:
        return common_divisors(int(lazy(self.in_channels)), int(lazy(self.out_channels)))

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return False
        return int(value) in self.values()

    def set_current(self, value: Any) -> None:
        super().set_current(value)
        self.current_value = int(value)

    def evaluate(self) -> int:
        # the widths may have changed since the value was set: fall back to the largest valid value below it
        valid = self.values()
        return self.current_value if self.current_value in valid else max(v for v in valid if v <= self.current_value)

    def domain(self) -> str:
        return f"common divisors {self.values()} of in_channels and out_channels"

    def _draw(self, rng: np.random.Generator) -> int:
        valid = self.values()
        return valid[int(rng.integers(len(valid)))]

    def bounds(self) -> tuple[float, float]:
        return 1, min(bounds(self.in_channels)[1], bounds(self.out_channels)[1])

    def _repr_fields(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels}
