"""Search-space parameters: named, registered expressions with a domain and a current value."""

from __future__ import annotations

import copy
import itertools
from typing import Any, Optional, Sequence, Union

import numpy as np

from .expression import Expression


RandomSource = Union[None, int, np.random.Generator]


def make_rng(rng: RandomSource) -> np.random.Generator:
    """A generator from a seed, an existing generator (used as is) or None (fresh entropy)."""
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {rng!r}")


class Parameter(Expression):
    """A searchable value. Its `id` is set when a node registers it (first use wins).

    `rng` (HANNAH's name) or `seed`: the generator `sample()` draws from without an explicit one."""

    def __init__(self, name: Optional[str] = None, seed: Optional[int] = None, rng: RandomSource = None) -> None:
        if seed is not None and rng is not None:
            raise ValueError(f"parameter {name!r}: give seed or rng, not both")
        self.name = name
        self.id: Optional[str] = None
        self.rng = make_rng(rng if rng is not None else seed)
        self.current_value: Any = None
        self.searchable = True  # False: the supernet keeps the current value instead of learning it
        self.conditions: list[Expression] = []  # constraints stated on this parameter (`cond`)

    def cond(self, condition: Expression) -> "Parameter":
        """State a constraint (a symbolic expression that must evaluate true) on this parameter;
        it is kept in the graph and checked by sampling and search (`supernet.conditions`)."""
        from .conditions import as_condition  # conditions builds on parameters

        self.conditions.append(as_condition(condition, f"parameter {self.label()}"))
        return self

    def cached_bounds(self) -> tuple[float, float]:
        return self.bounds()  # O(1), and not cached: a domain may be narrowed after construction

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

    def new(self, rng: RandomSource = None) -> "Parameter":
        """A fresh, unregistered copy with the same domain and current value (as in HANNAH): an
        independent parameter; `rng` seeds its generator (default: fresh entropy)."""
        fresh = copy.copy(self)
        fresh.id = None
        fresh.rng = make_rng(rng)
        fresh.conditions = list(self.conditions)
        return fresh

    def _initial_value(self) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k} = {v}" for k, v in self._repr_fields().items())
        return (
            f"{type(self).__name__}(name = {self.name}, id = {self.id}, {fields}, current_value = {self.current_value})"
        )

    def _repr_fields(self) -> dict:
        return {}


class CategoricalParameter(Parameter):
    """One of a list of choices (ints, floats, strings...)."""

    def __init__(
        self, choices: Sequence[Any], name: Optional[str] = None, seed: Optional[int] = None, rng: RandomSource = None
    ) -> None:
        super().__init__(name, seed, rng)
        self.choices = list(choices)
        if not self.choices:
            raise ValueError(f"CategoricalParameter {name!r} needs at least one choice")
        _check_distinct_choices(self.choices, _described("CategoricalParameter", name))
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

    def __init__(
        self,
        min: int,
        max: int,
        step_size: int = 1,
        name: Optional[str] = None,
        seed: Optional[int] = None,
        rng: RandomSource = None,
    ) -> None:
        super().__init__(name, seed, rng)
        if step_size < 1 or max < min:
            raise ValueError(
                f"IntScalarParameter {name!r}: need min <= max and step_size >= 1, got {min}, {max}, {step_size}"
            )
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

    def __init__(
        self, min: float, max: float, name: Optional[str] = None, seed: Optional[int] = None, rng: RandomSource = None
    ) -> None:
        super().__init__(name, seed, rng)
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


class SubsetParameter(Parameter):
    """A subset of `choices` with between `min` and `max` elements (a tuple, in the choices' order).

    Its domain is every such subset; it starts at the first `min` choices. It cannot size a
    shape (no bounds): use it for sets of options, e.g. which skip connections exist."""

    def __init__(
        self,
        choices: Sequence[Any],
        min: int,
        max: int,
        name: Optional[str] = None,
        seed: Optional[int] = None,
        rng: RandomSource = None,
    ) -> None:
        super().__init__(name, seed, rng)
        self.choices = list(choices)
        if not 0 <= min <= max <= len(self.choices):
            raise ValueError(
                f"SubsetParameter {name!r}: need 0 <= min <= max <= {len(self.choices)} choices, "
                f"got min {min}, max {max}"
            )
        _check_distinct_choices(self.choices, _described("SubsetParameter", name))
        self.min, self.max = int(min), int(max)
        self.current_value = self._initial_value()

    def _initial_value(self) -> tuple:
        return tuple(self.choices[: self.min])

    def values(self) -> list[tuple]:
        return [
            subset for size in range(self.min, self.max + 1) for subset in itertools.combinations(self.choices, size)
        ]

    def contains(self, value: Any) -> bool:
        if not isinstance(value, (tuple, list, set, frozenset)):
            return False
        items = list(value)
        return (
            self.min <= len(items) <= self.max
            and len(set(map(repr, items))) == len(items)
            and all(any(_same_choice(v, c) for c in self.choices) for v in items)
        )

    def set_current(self, value: Any) -> None:
        super().set_current(value)
        # store the choices themselves, in their order
        self.current_value = tuple(c for c in self.choices if any(_same_choice(v, c) for v in value))

    def domain(self) -> str:
        return f"subsets of {self.choices} with {self.min} to {self.max} elements"

    def _draw(self, rng: np.random.Generator) -> tuple:
        size = int(rng.integers(self.min, self.max + 1))
        picked = sorted(rng.choice(len(self.choices), size=size, replace=False).tolist())
        return tuple(self.choices[i] for i in picked)

    def bounds(self) -> tuple[float, float]:
        raise TypeError(f"parameter {self.label()} is a subset; it cannot size a shape")

    def _repr_fields(self) -> dict:
        return {"choices": self.choices, "min": self.min, "max": self.max}


def _check_distinct_choices(choices: list, what: str) -> None:
    """Refuse a choice given twice (8 and 8, or 8 and 8.0): it would split the probability between copies."""
    for position, choice in enumerate(choices):
        first = next(i for i, c in enumerate(choices) if c is choice or _same_choice(c, choice))
        if first != position:
            raise ValueError(
                f"{what}: choice {choice!r} is given twice (positions {first} and {position} of {choices}); "
                "list every choice once"
            )


def _described(kind: str, name: Optional[str]) -> str:
    return f"{kind} {name!r}" if name else f"{kind} (unnamed: it is named after the attribute it sizes when used)"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _both_numbers(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b)


def _same_choice(value: Any, choice: Any) -> bool:
    return value == choice and (type(value) is type(choice) or _both_numbers(value, choice))
