"""Spaces refused where they are built or first checked: repeated option names or choices (issues
26.3, 27.3), a space whose output ignores its input (26.2)."""

from __future__ import annotations

import pytest

from ops import Identity, Relu
from supernet import CategoricalParameter, ChoiceOp, SubsetParameter, Tensor, scope


def test_duplicate_option_names_are_refused_naming_the_choice_and_the_name():
    @scope
    def block(x):
        return ChoiceOp(Identity(), Relu(), names=["a", "a"])(x)

    with pytest.raises(ValueError, match=r"block_0\.ChoiceOp \(names \['a', 'a'\]\): option name 'a' .* 0 and 1"):
        block(Tensor("x", (1, 4)))


def test_distinct_option_names_are_accepted():
    choice = ChoiceOp(Identity(), Relu(), names=["skip", "relu"])(Tensor("x", (1, 4)))
    assert choice.option_names() == ["skip", "relu"]


def test_duplicate_categorical_choices_are_refused_naming_the_parameter_and_the_value():
    with pytest.raises(ValueError, match=r"CategoricalParameter 'width': choice 8 is given twice \(positions 0 and 1"):
        CategoricalParameter([8, 8, 16], name="width")


def test_a_number_given_as_int_and_float_is_one_choice():
    with pytest.raises(ValueError, match=r"choice 8.0 is given twice"):
        CategoricalParameter([8, 16, 8.0])


def test_duplicate_subset_choices_are_refused():
    with pytest.raises(ValueError, match=r"SubsetParameter 'skips': choice 'a' is given twice"):
        SubsetParameter(["a", "b", "a"], 0, 2, name="skips")


def test_distinct_choices_of_mixed_types_are_accepted():
    assert CategoricalParameter([1, "1", True, None]).choices == [1, "1", True, None]
