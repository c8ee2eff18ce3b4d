"""HANNAH's test_parameter_scopes: parameter ids follow the scopes of the nodes that register them."""

from ops import Conv2d, Relu
from supernet import CategoricalParameter, IntScalarParameter, Tensor, search_space


@search_space
def simple_search_space():
    x = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))
    weight_0 = Tensor(
        name="weight",
        shape=(IntScalarParameter(min=8, max=64, name="out_channels"), 3, 1, 1),
        axis=("O", "I", "kH", "kW"),
    )
    conv_0 = Conv2d(stride=CategoricalParameter(name="stride", choices=[1, 2]))(x, weight_0)
    relu_0 = Relu()(conv_0)
    weight_1 = Tensor(
        name="weight",
        shape=(IntScalarParameter(min=32, max=64, name="out_channels"), conv_0.shape()[1], 3, 3),
        axis=("O", "I", "kH", "kW"),
    )
    conv_1 = Conv2d(stride=CategoricalParameter(name="stride", choices=[1, 2]))(relu_0, weight_1)
    return Relu()(conv_1)


def test_parameter_scoping():
    params = simple_search_space().parametrization()
    assert sorted(params) == [
        "simple_search_space_0.Conv2d_0.stride",
        "simple_search_space_0.Conv2d_0.weight.out_channels",
        "simple_search_space_0.Conv2d_1.stride",
        "simple_search_space_0.Conv2d_1.weight.out_channels",
    ]
