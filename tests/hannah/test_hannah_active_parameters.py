"""HANNAH's test_random_walk_constrainer / test_active_parameters: `get_active_parameters` gives the
parameters that influence the network under the current choices (7 / 10 / 13 at depth 0 / 1 / 2)."""

from ops import AdaptiveAvgPooling, Add, Flatten, Relu, conv2d, linear
from supernet import (
    CategoricalParameter,
    ChoiceOp,
    IntScalarParameter,
    Tensor,
    get_active_parameters,
    scope,
    search_space,
)


def conv_relu(x, out_channels, kernel_size, stride):
    return Relu()(conv2d(x, out_channels, kernel_size, stride))


@scope
def conv_block(x, stride, kernel_size, out_channels):
    out = conv_relu(x, stride=stride, kernel_size=kernel_size, out_channels=out_channels)
    return conv_relu(out, stride=1, kernel_size=kernel_size, out_channels=out_channels)


@scope
def parallel_blocks(x, stride, kernel_size, out_channels):
    out_0 = conv_block(x, stride=stride, kernel_size=kernel_size, out_channels=out_channels)
    out_1 = conv_block(x, stride=stride, kernel_size=kernel_size, out_channels=out_channels)
    return Add()(out_0, out_1)


@scope
def classifier_head(x, num_classes):
    return linear(Flatten()(AdaptiveAvgPooling()(x)), num_classes)


@search_space
def space(x):
    out_channels = IntScalarParameter(4, 64, 4, name="out_channels")
    kernel_size = CategoricalParameter([1, 3, 5, 7], name="kernel_size")
    stride = IntScalarParameter(1, 2, name="stride")
    depth = IntScalarParameter(0, 2, name="depth")
    out = conv_relu(x, out_channels=out_channels.new(), kernel_size=kernel_size.new(), stride=stride.new())
    blocks = []
    for _ in range(3):
        out = parallel_blocks(out, out_channels=out_channels.new(), kernel_size=kernel_size.new(), stride=stride.new())
        blocks.append(out)
    out = ChoiceOp(*blocks, switch=depth)()
    return classifier_head(out, num_classes=10)


def test_get_active_parameters_follows_the_depth():
    out = space(Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W")))
    assert len(out.parametrization()) == 13
    active = get_active_parameters(out)
    assert len(active) == 7 and "space_0.ChoiceOp_0.depth" in active
    assert not any("parallel_blocks_1" in p or "parallel_blocks_2" in p for p in active)
    out.parametrization()["space_0.ChoiceOp_0.depth"].set_current(1)
    active = get_active_parameters(out)
    assert len(active) == 10 and not any("parallel_blocks_2" in p for p in active)
    out.parametrization()["space_0.ChoiceOp_0.depth"].set_current(2)
    assert len(get_active_parameters(out)) == 13
    # limited to a given parametrization's ids
    some = {k: v for k, v in out.parametrization().items() if "parallel_blocks_0" in k}
    assert set(get_active_parameters(out, some)) == set(some)
