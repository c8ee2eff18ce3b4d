"""Symbolic integer/float expressions: the language in which shapes and attributes are written.

An expression is a small tree of operators over parameters and constants. It can be evaluated at
the parameters' current values (`evaluate`, or `lazy`) and bounded over the parameters' whole
domains (`bounds`), which is how executors size shared weights once, at their largest shape.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Iterator, Sequence


class Expression:
    """Base class of everything symbolic: parameters and the operators that combine them."""

    def evaluate(self) -> Any:
        """Value at the parameters' current values."""
        raise NotImplementedError

    def bounds(self) -> tuple[float, float]:
        """(lowest, highest) value over every parameter's domain (an interval, maybe loose)."""
        raise NotImplementedError

    def cached_bounds(self) -> tuple[float, float]:
        """`bounds()`, computed once per expression node: shape expressions share sub-trees (every
        option of nested ChoiceOps reads its input's shape), so uncached bounds cost exponential time."""
        cached = self.__dict__.get("_bounds_cache")
        if cached is None:
            try:
                cached = ("ok", self.bounds())
            except (TypeError, ValueError, ArithmeticError) as err:
                cached = ("error", err)
            self._bounds_cache = cached
        if cached[0] == "error":
            raise cached[1]
        return cached[1]

    def children(self) -> Sequence[Any]:
        return ()

    # arithmetic builds trees instead of computing
    def __add__(self, other):
        return BinaryExpression("+", self, other)

    def __radd__(self, other):
        return BinaryExpression("+", other, self)

    def __sub__(self, other):
        return BinaryExpression("-", self, other)

    def __rsub__(self, other):
        return BinaryExpression("-", other, self)

    def __mul__(self, other):
        return BinaryExpression("*", self, other)

    def __rmul__(self, other):
        return BinaryExpression("*", other, self)

    def __truediv__(self, other):
        return BinaryExpression("/", self, other)

    def __rtruediv__(self, other):
        return BinaryExpression("/", other, self)

    def __floordiv__(self, other):
        return BinaryExpression("//", self, other)

    def __rfloordiv__(self, other):
        return BinaryExpression("//", other, self)

    def __mod__(self, other):
        return BinaryExpression("%", self, other)

    def __rmod__(self, other):
        return BinaryExpression("%", other, self)

    def __neg__(self):
        return BinaryExpression("-", 0, self)

    def __lt__(self, other):
        return BinaryExpression("<", self, other)

    def __le__(self, other):
        return BinaryExpression("<=", self, other)

    def __gt__(self, other):
        return BinaryExpression(">", self, other)

    def __ge__(self, other):
        return BinaryExpression(">=", self, other)

    # logical connectives, for conditions: `(a > 1) & (a + b < 10)`
    def __and__(self, other):
        return BinaryExpression("&", self, other)

    def __rand__(self, other):
        return BinaryExpression("&", other, self)

    def __or__(self, other):
        return BinaryExpression("|", self, other)

    def __ror__(self, other):
        return BinaryExpression("|", other, self)

    # operators the language does not define raise NotImplementedError, as HANNAH's expressions do
    def _unsupported(self, *args: Any) -> Any:
        raise NotImplementedError(
            f"symbolic expressions do not support this operator (on {self!r}); supported: + - * / // % "
            "comparisons, .eq/.ne, & |, Floor, Ceil, Int"
        )

    __pow__ = __rpow__ = __divmod__ = __rdivmod__ = _unsupported
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = __xor__ = __rxor__ = _unsupported

    # `==` keeps identity semantics so parameters stay usable in sets, dicts and `in` tests
    def eq(self, other) -> "BinaryExpression":
        """Symbolic equality (`==` compares identity so expressions stay hashable)."""
        return BinaryExpression("==", self, other)

    def ne(self, other) -> "BinaryExpression":
        """Symbolic inequality."""
        return BinaryExpression("!=", self, other)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(
            f"the truth value of the symbolic expression {self!r} is undefined; "
            "use lazy(expr) to evaluate it at the current parametrization"
        )

    def __int__(self) -> int:
        return int(self.evaluate())

    def __index__(self) -> int:
        value = self.evaluate()
        if not isinstance(value, int):
            raise TypeError(f"{self!r} evaluates to {value!r}, not an int")
        return value


def _interval_mul(a, b):
    products = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return min(products), max(products)


def _interval_div(a, b, floor: bool):
    if b[0] <= 0 <= b[1]:
        raise ValueError("cannot bound a division whose divisor may be zero")
    quotients = [a[0] / b[0], a[0] / b[1], a[1] / b[0], a[1] / b[1]]
    if floor:
        return math.floor(min(quotients)), math.floor(max(quotients))
    return min(quotients), max(quotients)


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "&": lambda a, b: bool(a) and bool(b),
    "|": lambda a, b: bool(a) or bool(b),
}

_BOUNDS: dict[str, Callable[[tuple, tuple], tuple]] = {
    "+": lambda a, b: (a[0] + b[0], a[1] + b[1]),
    "-": lambda a, b: (a[0] - b[1], a[1] - b[0]),
    "*": _interval_mul,
    "/": lambda a, b: _interval_div(a, b, floor=False),
    "//": lambda a, b: _interval_div(a, b, floor=True),
    "%": lambda a, b: (0, max(abs(b[0]), abs(b[1])) - 1) if a[0] >= 0 and b[0] > 0 else (-abs(b[1]), abs(b[1])),
}


class BinaryExpression(Expression):
    """`left <symbol> right` for the arithmetic and comparison operators."""

    def __init__(self, symbol: str, left: Any, right: Any) -> None:
        if symbol not in _OPERATORS:
            raise ValueError(f"unknown operator {symbol!r}")
        self.symbol, self.left, self.right = symbol, left, right

    def evaluate(self) -> Any:
        return _OPERATORS[self.symbol](lazy(self.left), lazy(self.right))

    def bounds(self) -> tuple[float, float]:
        if self.symbol not in _BOUNDS:  # comparisons are booleans
            return (0, 1)
        return _BOUNDS[self.symbol](bounds(self.left), bounds(self.right))

    def children(self) -> Sequence[Any]:
        return (self.left, self.right)

    def __repr__(self) -> str:
        return f"({self.left!r} {self.symbol} {self.right!r})"


class _Rounding(Expression):
    """A monotone rounding of one value: evaluated and bounded by applying `_round`."""

    _round = staticmethod(math.floor)

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate(self) -> int:
        return self._round(lazy(self.value))

    def bounds(self) -> tuple[float, float]:
        lo, hi = bounds(self.value)
        return self._round(lo), self._round(hi)

    def children(self) -> Sequence[Any]:
        return (self.value,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class Floor(_Rounding):
    """Round down to an int."""

    _round = staticmethod(math.floor)


class Ceil(_Rounding):
    """Round up to an int."""

    _round = staticmethod(math.ceil)


class Int(_Rounding):
    """Truncate to an int, as Python's `int()` (HANNAH's `Int` cast: `Int(in_channels / ratio)`)."""

    _round = staticmethod(int)


class Constant(Expression):
    """A constant wrapped as an expression (HANNAH's `DefaultInt`), so that operators build trees on it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate(self) -> Any:
        return self.value

    def bounds(self) -> tuple[float, float]:
        return bounds(self.value)

    def __repr__(self) -> str:
        return f"Constant({self.value!r})"


class Select(Expression):
    """`values[index]`: the value of whichever option a choice switch currently selects."""

    def __init__(self, values: Sequence[Any], index: Any) -> None:
        self.values, self.index = list(values), index

    def evaluate(self) -> Any:
        return lazy(self.values[lazy(self.index)])

    def bounds(self) -> tuple[float, float]:
        lo, hi = bounds(self.index)
        reachable = [bounds(v) for v in self.values[int(lo) : int(hi) + 1]]
        return min(b[0] for b in reachable), max(b[1] for b in reachable)

    def children(self) -> Sequence[Any]:
        return (*self.values, self.index)

    def __repr__(self) -> str:
        return f"Select({self.values!r}, {self.index!r})"


def lazy(value: Any) -> Any:
    """Evaluate `value` if it is symbolic; tuples and lists are evaluated element-wise."""
    if isinstance(value, Expression):
        return value.evaluate()
    if isinstance(value, tuple):
        return tuple(lazy(v) for v in value)
    if isinstance(value, list):
        return [lazy(v) for v in value]
    return value


def bounds(value: Any) -> tuple[float, float]:
    """(lowest, highest) value of `value` over all parametrizations (cached per expression node)."""
    if isinstance(value, Expression):
        return value.cached_bounds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"cannot bound the non-numeric value {value!r}")
    return (value, value)


def upper_bound(value: Any) -> int:
    """Largest int `value` can take: the size at which a shared weight axis is allocated."""
    return int(math.floor(bounds(value)[1]))


def walk(value: Any, children: Callable[[Expression], Sequence[Any]] = lambda e: e.children()) -> Iterator[Any]:
    """Every sub-expression of `value` (itself included) once, depth first; descends into
    tuples/lists. Shared sub-expressions are visited once: shape expressions are DAGs.
    `children(expression)` says which sub-expressions to descend into (default: all)."""
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if isinstance(item, (Expression, tuple, list)):
            if id(item) in seen:
                continue
            seen.add(id(item))
        yield item
        if isinstance(item, Expression):
            stack.extend(reversed(children(item)))
        elif isinstance(item, (tuple, list)):
            stack.extend(reversed(item))
