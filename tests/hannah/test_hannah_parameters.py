"""HANNAH's test_parameters: sampling covers the domain evenly for every kind of `rng=`; new()
copies the current value; SubsetParameter; initial values."""

from collections import Counter

import numpy as np
import pytest

from supernet import CategoricalParameter, FloatScalarParameter, IntScalarParameter, SubsetParameter


@pytest.mark.parametrize("rng", [12312, None, np.random.default_rng(12345)])
def test_int_parameter_samples_every_value_evenly(rng):
    parameter = IntScalarParameter(0, 10, rng=rng)
    counter = Counter(parameter.sample() for _ in range(2000))
    assert set(counter) == set(range(11))
    assert all(0.05 <= counter[i] / 2000 <= 0.15 for i in range(11))


def test_rng_seeds_and_generators():
    a, b = IntScalarParameter(0, 100, rng=7), IntScalarParameter(0, 100, rng=7)
    assert [a.sample() for _ in range(5)] == [b.sample() for _ in range(5)]
    shared = np.random.default_rng(3)
    c = CategoricalParameter([1, 2, 3], rng=shared)
    assert c.rng is shared
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy Generator"):
        IntScalarParameter(0, 1, rng="seed")
    with pytest.raises(ValueError, match="give seed or rng, not both"):
        IntScalarParameter(0, 1, seed=1, rng=2)
    assert isinstance(a.new(rng=5).rng, np.random.Generator)


def test_float_and_categorical_sampling_stay_in_domain():
    f = FloatScalarParameter(0.5, 1.5, rng=0)
    assert all(0.5 <= f.sample() <= 1.5 for _ in range(100))
    c = CategoricalParameter(["a", "b", "c"], rng=0)
    assert set(c.sample() for _ in range(200)) == {"a", "b", "c"}


def test_initial_values_are_deterministic():
    # a difference from HANNAH, where a CategoricalParameter starts at a sampled choice
    assert CategoricalParameter([3, 5, 7]).current_value == 3
    assert IntScalarParameter(4, 9).current_value == 4
    assert FloatScalarParameter(0.1, 0.9).current_value == 0.1


def test_new_copies_the_current_value_and_is_independent():
    out_channels = IntScalarParameter(4, 64, name="out_channels")
    out_channels.set_current(48)
    fresh = out_channels.new()
    assert fresh.current_value == 48 and fresh is not out_channels and fresh.id is None
    fresh.set_current(8)
    assert out_channels.current_value == 48


def test_subset_parameter():
    s = SubsetParameter(["a", "b", "c", "d"], min=1, max=2, name="skips", rng=0)
    assert s.current_value == ("a",)
    assert len(s.values()) == 4 + 6
    drawn = [s.sample() for _ in range(300)]
    assert all(1 <= len(d) <= 2 and len(set(d)) == len(d) for d in drawn)
    assert len(set(drawn)) == 10  # every subset of 1 or 2 elements is drawn
    s.set_current(["c", "a"])
    assert s.current_value == ("a", "c")  # in the choices' order
    with pytest.raises(ValueError, match="outside its domain subsets of"):
        s.set_current(("a", "b", "c"))
    with pytest.raises(ValueError, match="need 0 <= min <= max <= 4 choices"):
        SubsetParameter(["a", "b", "c", "d"], min=3, max=5)
    with pytest.raises(TypeError, match="cannot size a shape"):
        s.bounds()
