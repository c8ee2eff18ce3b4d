"""Construction stays linear in the graph with nested choices (issue 22: HANNAH's
embedded_vision_net took minutes, bounds being recomputed over shared shape expressions)."""

import functools
import time

from ops import Identity, MaxPooling, conv2d
from supernet import ChoiceOp, IntScalarParameter, SupernetExecutor, Tensor, search_space
from supernet import expression


def chain(depth: int, same_shape=None):
    x = Tensor("x", (1, 4, 16, 16), ("N", "C", "H", "W"))

    @search_space
    def space(x):
        out = x
        for _ in range(depth):
            # both options' sizes are expressions of the previous choice's output shape
            conv = functools.partial(conv2d, out_channels=out.shape()[1], kernel_size=IntScalarParameter(1, 3, 2))
            out = ChoiceOp(conv, MaxPooling(3, 1, 1), Identity(), same_shape=same_shape)(out)
        return out

    return space(x)


def count_bounds(monkeypatch):
    calls = {"n": 0}
    for cls in (expression.BinaryExpression, expression.Select, expression._Rounding):
        original = cls.bounds

        def counted(self, _original=original):
            calls["n"] += 1
            return _original(self)

        monkeypatch.setattr(cls, "bounds", counted)
    return calls


def test_bound_evaluations_grow_linearly_with_nested_choices(monkeypatch):
    calls = count_bounds(monkeypatch)
    counts = {}
    for depth in (10, 20, 40):
        calls["n"] = 0
        chain(depth, same_shape=True)  # the check at the call, over every option's shape
        counts[depth] = calls["n"]
    assert counts[40] <= 2.5 * counts[20] and counts[20] <= 2.5 * counts[10], counts
    assert counts[40] < 40 * 200, counts


def test_deep_nest_builds_and_is_checked_by_the_supernet_quickly():
    start = time.perf_counter()
    net = chain(60)
    SupernetExecutor(net)  # the mixing check walks every ChoiceOp's option shapes
    assert time.perf_counter() - start < 20


def test_bounds_are_cached_per_expression_node():
    p = IntScalarParameter(1, 4)
    e = p * 2 + 1
    assert e.cached_bounds() == (3, 9) and e.__dict__["_bounds_cache"] == ("ok", (3, 9))
    q = IntScalarParameter(1, 4)
    p.max = 8  # a parameter's own bounds are never cached
    assert p.cached_bounds() == (1, 8) and (q * 1).cached_bounds() == (1, 4)
