"""Search-space parameters: named, registered expressions with a domain and a current value."""
from __future__ import annotations

import copy
from typing import Any, Optional, Sequence

import numpy as np

from .expression import Expression


class Parameter(Expression):
    """A searchable value. Its `id` is set when a node registers it (first use wins)."""

    def __init__(self, name: Optional[str] = None, seed: Optional[int] = None) -> None:
        self.name = name
        self.id: Optional[str] = None
        self.rng = np.random.default_rng(seed)
        self.current_value: Any = None
        self.searchable = True  # False: the supernet keeps the current value instead of learning it

    def fix(self, value: Any = None) -> "Parameter":
        """Mark this parameter as not searched (optionally setting its value); returns it."""
        if value is not None:
            self.set_current(value)
        self.searchable = False
        return self

    def values(self) -> list:
        """Every value of the domain, in order (discrete parameters only)."""
        raise TypeError(f"parameter {self.label()} has a continuous domain {self.domain()}")

    def evaluate(self) -> Any:
        return self.current_value

    def label(self) -> str:
        return self.id or self.name or type(self).__name__

    def contains(self, value: Any) -> bool:
        """Whether `value` lies in this parameter's domain."""
        raise NotImplementedError

    def domain(self) -> str:
        raise NotImplementedError

    def set_current(self, value: Any) -> None:
        """Set the current value; a value outside the domain raises ValueError naming this parameter."""
        if not self.contains(value):
            raise ValueError(f"parameter {self.label()}: {value!r} is outside its domain {self.domain()}")
        self.current_value = value

    def sample(self, rng: Optional[np.random.Generator] = None) -> Any:
        """Draw a value (from `rng`, else this parameter's own generator), make it current, return it."""
        value = self._draw(rng if rng is not None else self.rng)
        self.current_value = value
        return value

    def _draw(self, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def new(self) -> "Parameter":
        """A fresh, unregistered copy with the same domain: an independent parameter."""
        fresh = copy.copy(self)
        fresh.id = None
        fresh.rng = np.random.default_rng()
        fresh.current_value = self._initial_value()
        return fresh

    def _initial_value(self) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k} = {v}" for k, v in self._repr_fields().items())
        return f"{type(self).__name__}(name = {self.name}, id = {self.id}, {fields}, current_value = {self.current_value})"

    def _repr_fields(self) -> dict:
        return {}


class CategoricalParameter(Parameter):
    """One of a list of choices (ints, floats, strings...)."""

    def __init__(self, choices: Sequence[Any], name: Optional[str] = None, seed: Optional[int] = None) -> None:
        super().__init__(name, seed)
        self.choices = list(choices)
        if not self.choices:
            raise ValueError(f"CategoricalParameter {name!r} needs at least one choice")
        self.current_value = self._initial_value()

    def _initial_value(self) -> Any:
        return self.choices[0]

    def contains(self, value: Any) -> bool:
        return any(_same_choice(value, c) for c in self.choices)

    def set_current(self, value: Any) -> None:
        super().set_current(value)
        # store the choice itself: 2.0 or np.int64(2) for the choice 2 must not leak floats into shapes
        self.current_value = next(c for c in self.choices if _same_choice(value, c))

    def domain(self) -> str:
        return f"choices {self.choices}"

    def _draw(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def values(self) -> list:
        return list(self.choices)

    def index(self, value: Any = None) -> int:
        """Position of `value` (default: the current value) among the choices."""
        value = self.current_value if value is None else value
        return self.choices.index(value)

    def bounds(self) -> tuple[float, float]:
        if not all(_is_number(c) for c in self.choices):
            raise TypeError(f"parameter {self.label()} has non-numeric choices {self.choices}; it cannot size a shape")
        return min(self.choices), max(self.choices)

    def _repr_fields(self) -> dict:
        return {"choices": self.choices}


class IntScalarParameter(Parameter):
    """An int in [min, max] on a grid of `step_size`."""

    def __init__(self, min: int, max: int, step_size: int = 1, name: Optional[str] = None, seed: Optional[int] = None) -> None:
        super().__init__(name, seed)
        if step_size < 1 or max < min:
            raise ValueError(f"IntScalarParameter {name!r}: need min <= max and step_size >= 1, got {min}, {max}, {step_size}")
        self.min, self.max, self.step_size = int(min), int(max), int(step_size)
        self.current_value = self._initial_value()

    def _initial_value(self) -> int:
        return self.min

    def values(self) -> list[int]:
        return list(range(self.min, self.max + 1, self.step_size))

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            return False
        return self.min <= value <= self.max and (value - self.min) % self.step_size == 0

    def set_current(self, value: Any) -> None:
        super().set_current(value)
        self.current_value = int(value)

    def domain(self) -> str:
        return f"[{self.min}, {self.max}] step {self.step_size}"

    def _draw(self, rng: np.random.Generator) -> int:
        return self.min + self.step_size * int(rng.integers((self.max - self.min) // self.step_size + 1))

    def bounds(self) -> tuple[float, float]:
        return self.min, self.max

    def _repr_fields(self) -> dict:
        return {"min": self.min, "max": self.max, "step_size": self.step_size}


class FloatScalarParameter(Parameter):
    """A float in [min, max]."""

    def __init__(self, min: float, max: float, name: Optional[str] = None, seed: Optional[int] = None) -> None:
        super().__init__(name, seed)
        if max < min:
            raise ValueError(f"FloatScalarParameter {name!r}: min {min} > max {max}")
        self.min, self.max = float(min), float(max)
        self.current_value = self._initial_value()

    def _initial_value(self) -> float:
        return self.min

    def contains(self, value: Any) -> bool:
        return _is_number(value) and self.min <= value <= self.max

    def set_current(self, value: Any) -> None:
        super().set_current(value)
        self.current_value = float(value)

    def domain(self) -> str:
        return f"[{self.min}, {self.max}]"

    def _draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.min, self.max))

    def bounds(self) -> tuple[float, float]:
        return self.min, self.max

    def _repr_fields(self) -> dict:
        return {"min": self.min, "max": self.max}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _both_numbers(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b)


def _same_choice(value: Any, choice: Any) -> bool:
    return value == choice and (type(value) is type(choice) or _both_numbers(value, choice))
