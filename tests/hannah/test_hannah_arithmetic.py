"""HANNAH's test_arithmetic: expressions print, evaluate, combine; & and comparisons; operators the
language does not define raise NotImplementedError."""

import pytest

from supernet import Constant, IntScalarParameter, lazy
from supernet.expression import BinaryExpression


def test_expressions_print_and_evaluate():
    add = BinaryExpression("+", 5, 5)
    assert lazy(add) == 10 and "5 + 5" in repr(add)
    p = IntScalarParameter(0, 10)
    assert lazy(p + 10) == 10  # at the parameter's current value (its minimum)
    p.set_current(10)
    assert lazy(p + 10) == 20 and "IntScalarParameter" in repr(p + 10)
    q = IntScalarParameter(0, 10)
    assert lazy(p + q) == 10


def test_and_or_on_expressions():
    one, zero = Constant(1), Constant(0)
    assert lazy(one & one) is True and lazy(one & zero) is False
    assert lazy(one | zero) is True and lazy(zero | zero) is False
    a = IntScalarParameter(0, 10)
    both = (a > 2) & (a < 5)
    assert lazy(both) is False
    a.set_current(3)
    assert lazy(both) is True and lazy(1 & (a > 2)) is True


def test_comparisons_evaluate_to_booleans():
    one, zero = Constant(1), Constant(0)
    assert lazy(one < one) is False and lazy(one < zero) is False
    assert lazy(zero < one) is True and lazy(zero < zero) is False


def test_complex_expressions():
    a, b, c = IntScalarParameter(0, 10), IntScalarParameter(0, 10), IntScalarParameter(0, 1)
    expr = a + b * (c + 5)
    assert lazy(expr) == 0
    for p, v in ((a, 10), (b, 10), (c, 1)):
        p.set_current(v)
    assert lazy(expr) == 70
    assert expr.bounds() == (0, 70)


@pytest.mark.parametrize(
    "x,y", [(IntScalarParameter(0, 0), 2), (IntScalarParameter(0, 0), IntScalarParameter(0, 0)), (Constant(0), 2)]
)
def test_unsupported_operators_raise_not_implemented(x, y):
    for apply in (
        lambda: x**y,
        lambda: divmod(x, y),
        lambda: x << y,
        lambda: x >> y,
        lambda: x ^ y,
        lambda: 2**x,
        lambda: divmod(2, x),
    ):
        with pytest.raises(NotImplementedError, match="do not support this operator"):
            apply()
