"""Bad input fails early, with an error naming the culprit (one test per kind of mistake)."""

import functools

import pytest
import torch

from ops import Add, Flatten, MaxPooling, Relu, conv1d, linear
from search import SearchResult, fit_supernet
from helpers import classifier
from supernet import CategoricalParameter, ChoiceOp, IntScalarParameter, SupernetExecutor, Tensor, search_space

QUIET = dict(epochs=1, batch_size=8, progress=False)


def data(n=32, classes=3, shape=(2, 16)):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_choice_options_with_mismatched_output_shapes():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def space(x, same_shape=True):
        return ChoiceOp(
            functools.partial(conv1d, out_channels=4, kernel_size=3),
            MaxPooling(3, 1, 1),
            names=["conv", "pool"],
            same_shape=same_shape,
        )(x)

    with pytest.raises(
        ValueError, match=r"ChoiceOp space_0\.ChoiceOp_0: its options can never have the same output shape"
    ):
        space(x)  # refused when built
    net = space(x, same_shape=False)  # declared one-path: the supernet, which mixes the options, refuses it
    message = r"ChoiceOp space_0\.ChoiceOp_0: options must have equal output shapes to be mixed, got conv: \(1, 4, 16\), pool: \(1, 2, 16\)"
    with pytest.raises(ValueError, match=message):
        SupernetExecutor(net)
    with pytest.raises(ValueError, match=message):
        fit_supernet(net, data(), loss=torch.nn.functional.mse_loss, **QUIET)


def test_empty_choice_op():
    with pytest.raises(ValueError, match="ChoiceOp needs at least one option, got none"):
        ChoiceOp()


def test_parameter_value_outside_its_domain():
    width = IntScalarParameter(4, 16, step_size=4, name="width")
    with pytest.raises(ValueError, match=r"parameter width: 6 is outside its domain \[4, 16\] step 4"):
        width.set_current(6)
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))
    net = conv1d(x, 2, CategoricalParameter([1, 3], name="kernel"))
    (pid,) = net.parametrization()
    with pytest.raises(ValueError, match=rf"parameter {pid}: 5 is outside its domain choices \[1, 3\]"):
        net.set_parametrization({pid: 5})
    assert net.parametrization()[pid].current_value == 1  # nothing changed


def test_set_parametrization_with_an_unknown_key():
    net = classifier()
    with pytest.raises(
        KeyError,
        match=r"unknown parameter id\(s\) \['space_0\.ChoiceOp_0\.choise'\]; known ids: \['space_0\.ChoiceOp_0\.choice'\]",
    ):
        net.set_parametrization({"space_0.ChoiceOp_0.choise": 1})


def test_duplicate_ids():
    a, b = Tensor("x", (1, 4), ("N", "C")), Tensor("x", (1, 4), ("N", "C"))
    with pytest.raises(ValueError, match=r"duplicate node id 'x': Tensor\(x\) and Tensor\(x\)"):
        SupernetExecutor(Add()(a, b))


def test_operand_that_is_not_a_node():
    with pytest.raises(
        TypeError,
        match=r"Relu: operand 0 is Tensor of shape \(8, 2, 16\), not a graph node .*declare inputs as supernet\.Tensor",
    ):
        Relu()(torch.zeros(8, 2, 16))


def test_data_whose_shape_does_not_match_the_input_tensor_fails_before_training():
    calls = []

    def loss(logits, y):
        calls.append(1)
        return torch.nn.functional.cross_entropy(logits, y)

    with pytest.raises(
        ValueError,
        match=r"train data does not fit the search space: input x: axis 'L' must have size 16, got shape \(8, 2, 15\)",
    ):
        fit_supernet(classifier(), data(shape=(2, 15)), loss=loss, **QUIET)
    with pytest.raises(ValueError, match=r"val data does not fit the search space: input x expects 3 dims"):
        fit_supernet(classifier(), data(), data(shape=(32,)), loss=loss, **QUIET)
    assert not calls  # nothing was trained


def test_labels_out_of_range_for_the_output():
    x, y = data()
    y[5] = 3
    with pytest.raises(
        ValueError,
        match=r"train label 3 \(sample 5\) is out of range: the space's output \(1, 3\) has 3 classes .*labels must lie in \[0, 2\]",
    ):
        fit_supernet(classifier(), (x, y), data(), **QUIET)
    y[5] = -1
    with pytest.raises(ValueError, match=r"val label -1 \(sample 5\) is out of range"):
        fit_supernet(classifier(), data(), (x, y), **QUIET)
    dataset = LabelledList(x, y)  # not tensors: the first batch is checked
    with pytest.raises(ValueError, match=r"train label -1 is out of range"):
        fit_supernet(classifier(), dataset, data(), **{**QUIET, "batch_size": 32})


class LabelledList(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def test_validation_split_too_small_for_one_batch():
    with pytest.raises(
        ValueError,
        match=r"val=None splits train's 13 samples into halves of 6 \(weights\) and 7 \(architecture\), fewer than one batch of 8",
    ):
        fit_supernet(classifier(), data(n=13), **QUIET)
    with pytest.raises(ValueError, match=r"val has 5 samples, fewer than one batch of 8"):
        fit_supernet(classifier(), data(), data(n=5), **QUIET)


def test_export_of_an_architecture_naming_an_unknown_switch_or_index():
    space = classifier()
    result = fit_supernet(space, data(), **QUIET)
    (sid,) = result.architecture
    unknown = SearchResult(**{**vars(result), "architecture": {"space_0.ChoiceOp_7.choice": 0}})
    with pytest.raises(
        KeyError,
        match=r"unknown switch or parameter 'space_0\.ChoiceOp_7\.choice'; known switches: \['space_0\.ChoiceOp_0\.choice'\]",
    ):
        unknown.export()
    out_of_range = SearchResult(**{**vars(result), "architecture": {sid: 2}})
    with pytest.raises(ValueError, match=rf"architecture picks option 2 for {sid}, which allows \[0, 1\]"):
        out_of_range.export()


def test_a_space_without_choice_op_has_nothing_to_search():
    x = Tensor("x", (1, 2, 16), ("N", "C", "L"))

    @search_space
    def fixed(x):
        return linear(Flatten()(x), 3)

    with pytest.raises(
        ValueError, match=r"the space ending at fixed_0\.Linear_0 has no ChoiceOp: there is no architecture to search"
    ):
        fit_supernet(fixed(x), data(), **QUIET)
