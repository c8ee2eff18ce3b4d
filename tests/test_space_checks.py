"""Spaces refused where they are built or first checked: repeated option names or choices (issues
26.3, 27.3), a space whose output ignores its input (26.2), and options of different shapes in
every fit_supernet strategy (22.3: they build and run one path, but every strategy mixes)."""

from __future__ import annotations

import functools

import pytest
import torch

from ops import Flatten, Identity, Relu, conv1d, linear
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


def _stride_choice():
    """The reference document's choice: Identity beside a conv with stride 2 and fixed channels."""
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def strided(x):
        conv = functools.partial(conv1d, out_channels=2, kernel_size=3, stride=2)
        return linear(Flatten()(ChoiceOp(Identity(), conv, names=["skip", "conv"])(x)), 3)

    return strided(x)


def test_options_of_different_shapes_build_and_run_one_path():
    space = _stride_choice()
    for choice in (0, 1):
        space.set_parametrization({"strided_0.ChoiceOp_0.choice": choice})
        assert tuple(BasicExecutor(space)(torch.zeros(4, 2, 16)).shape) == (4, 3)


@pytest.mark.parametrize("strategy", ["spos", "gdas", "darts"])
def test_every_strategy_refuses_them_saying_how_to_search_them(strategy):
    # one-path strategies too: they train in the one SupernetExecutor, which mixes every option
    with pytest.raises(
        ValueError,
        match=r"ChoiceOp strided_0\.ChoiceOp_0: options must have equal output shapes to be mixed, got "
        r"skip: \(1, 2, 16\), conv: \(1, 2, 8\).*the one-path ones \(spos, fairnas, gdas\) too.*"
        r"sample\(\) each architecture and train it with BasicExecutor",
    ):
        fit_supernet(_stride_choice(), _data(), strategy=strategy, epochs=1, batch_size=8, progress=False)
