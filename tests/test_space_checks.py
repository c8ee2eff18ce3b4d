"""Spaces refused where they are built or first checked: repeated option names or choices (issues
26.3, 27.3), a space whose output ignores its input (26.2)."""

from __future__ import annotations

import pytest
import torch

from ops import Flatten, Identity, Relu, linear
from search import fit_supernet
from supernet import (
    BasicExecutor,
    CategoricalParameter,
    ChoiceOp,
    SubsetParameter,
    SupernetExecutor,
    Tensor,
    scope,
    search_space,
)
from supernet.space_inputs import space_inputs


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


def _constant_fed(with_choice: bool):
    """A space given the input x whose ops all read a Tensor made inside it (x is unused)."""
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def constant_fed(x):
        constant = Tensor("constant", (1, 2, 16), ("N", "C", "L"))
        h = ChoiceOp(Identity(), Relu(), names=["skip", "relu"])(constant) if with_choice else Relu()(constant)
        return linear(Flatten()(h), 3)

    return constant_fed(x)


def _data(n=16):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 2, 16, generator=g), torch.randint(0, 3, (n,), generator=g)


UNUSED = r"search space 'constant_fed': its output constant_fed_0\.Linear_0 does not depend on its input x \("
UNUSED += r"it reads \['constant_fed_0\.constant'\] instead\)"


@pytest.mark.parametrize("executor", [SupernetExecutor, BasicExecutor])
def test_an_executor_refuses_a_space_whose_output_ignores_its_input(executor):
    with pytest.raises(ValueError, match=UNUSED):
        executor(_constant_fed(with_choice=True))


@pytest.mark.parametrize("with_choice", [True, False])
def test_fit_supernet_names_the_unused_input_before_anything_else(with_choice):
    # without a ChoiceOp too: the unused input is the real fault, not the missing choice
    with pytest.raises(ValueError, match=UNUSED):
        fit_supernet(_constant_fed(with_choice), _data(), epochs=1, batch_size=8, progress=False)


def test_a_space_reading_its_input_is_accepted():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def used(x):
        return linear(Flatten()(ChoiceOp(Identity(), Relu())(x)), 3)

    assert [t.id for t in BasicExecutor(used(x)).input_nodes] == ["x"]
    assert space_inputs(used(x)) == (x,)
