"""Every example of the reference document (HANNAH "Search Spaces", /work/shared/reference/search-spaces.md),
adapted to our import paths, with the documented ids, parametrizations, shapes and graph structure.

Where the reference shows values that HANNAH drew at random when a parameter was created (its
categoricals start at a random choice, ours at the first one), the test sets those values first.
"""

from functools import partial

import torch

from ops import Conv2d, Identity, Relu
from supernet import (
    BasicExecutor,
    CategoricalParameter,
    ChoiceOp,
    IntScalarParameter,
    Tensor,
    get_nodes,
    lazy,
    scope,
    search_space,
)


def run_and_check_shape(net, *, batch=None, seed=0):
    """Run `net` in a BasicExecutor on random input(s); the output shape must equal lazy(net.shape()).

    `batch` replaces the declared size of the batch axis N (which is free at run time)."""
    torch.manual_seed(seed)
    model = BasicExecutor(net)
    model.initialize()
    inputs = []
    for tensor in model.input_nodes:
        shape = list(lazy(tensor.shape()))
        if batch is not None:
            shape[tensor.axis.index("N")] = batch
        inputs.append(torch.randn(shape))
    out = model(*inputs)
    expected = list(lazy(net.shape()))
    if batch is not None:
        expected[0] = batch
    assert list(out.shape) == expected
    return model, out


def ids(nodes):
    return [n.id for n in nodes]


# --- Ops & Tensors --------------------------------------------------------------------------------


def test_ops_and_tensors_simple_search_space():
    @search_space
    def simple_search_space():
        input = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))
        weight = Tensor(name="weight", shape=(32, 3, 1, 1), axis=("O", "I", "kH", "kW"))

        conv = Conv2d(stride=2, dilation=1)  # Define operator and parametrization
        graph = conv(input, weight)  # Define/create/extend graph
        return graph

    graph = simple_search_space()
    assert repr(graph) == "Conv2d(simple_search_space_0.Conv2d_0)"
    assert graph.id == "simple_search_space_0.Conv2d_0"
    # an input created inside the space is named under it; a weight under its op
    assert ids(graph.operands) == ["simple_search_space_0.input", "simple_search_space_0.Conv2d_0.weight"]
    assert graph.parametrization() == {}
    assert [lazy(i) for i in graph.shape()] == [1, 32, 16, 16]

    model, _ = run_and_check_shape(graph)
    run_and_check_shape(graph, batch=5)
    assert list(model.state_dict()) == ["simple_search_space_0.Conv2d_0.weight"]


# --- Parametrization & Expressions ----------------------------------------------------------------


def test_simple_parametrized_search_space():
    @search_space
    def simple_parametrized_search_space():
        input = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))
        weight = Tensor(
            name="weight",
            shape=(IntScalarParameter(min=8, max=64, name="out_channels"), 3, 1, 1),
            axis=("O", "I", "kH", "kW"),
        )
        # a search space with stride 1 and stride 2 convolutions
        graph = Conv2d(stride=CategoricalParameter(name="stride", choices=[1, 2]))(input, weight)
        return graph

    graph = simple_parametrized_search_space()
    params = graph.parametrization(flatten=True)
    assert set(params) == {
        "simple_parametrized_search_space_0.Conv2d_0.stride",
        "simple_parametrized_search_space_0.Conv2d_0.weight.out_channels",
    }
    stride = params["simple_parametrized_search_space_0.Conv2d_0.stride"]
    out_channels = params["simple_parametrized_search_space_0.Conv2d_0.weight.out_channels"]
    assert isinstance(stride, CategoricalParameter) and stride.choices == [1, 2]
    assert stride.name == "stride" and stride.id == "simple_parametrized_search_space_0.Conv2d_0.stride"
    assert isinstance(out_channels, IntScalarParameter)
    assert (out_channels.min, out_channels.max, out_channels.step_size) == (8, 64, 1)
    assert out_channels.current_value == 8  # an IntScalarParameter starts at its minimum

    # the nested form groups the same parameters by id segments
    nested = graph.parametrization(flatten=False)
    conv = nested["simple_parametrized_search_space_0"]["Conv2d_0"]
    assert conv["stride"] is stride and conv["weight"]["out_channels"] is out_channels

    for s in (1, 2):
        for c in (8, 33, 64):
            graph.set_parametrization({stride.id: s, out_channels.id: c})
            assert [lazy(i) for i in graph.shape()] == [1, c, 32 // s, 32 // s]
            run_and_check_shape(graph, batch=3)


def make_symbolic_shape_example():
    in_channel = 3
    kernel_size = 1
    input = Tensor(name="input", shape=(1, in_channel, 32, 32), axis=("N", "C", "H", "W"))

    @search_space
    def simple_search_space(input):
        weight_0 = Tensor(
            name="weight",
            shape=(IntScalarParameter(min=8, max=64, name="out_channels"), in_channel, kernel_size, kernel_size),
            axis=("O", "I", "kH", "kW"),
        )
        conv_0 = Conv2d(stride=CategoricalParameter(name="stride", choices=[1, 2]))(input, weight_0)
        return conv_0

    return input, simple_search_space(input)


def test_symbolic_shapes_and_lazy():
    input, out = make_symbolic_shape_example()
    assert input.id == "input"  # created outside the space: no prefix
    assert out.id == "simple_search_space_0.Conv2d_0"

    assert input.shape() == (1, 3, 32, 32)
    weight_shape = out.operands[1].shape()
    assert isinstance(weight_shape[0], IntScalarParameter)
    assert weight_shape[0].id == "simple_search_space_0.Conv2d_0.weight.out_channels"
    assert weight_shape[1:] == (3, 1, 1)
    conv_shape = out.shape()
    assert conv_shape[0] == 1 and conv_shape[1] is weight_shape[0]  # the parameter itself

    # the reference's printout has stride 2 (drawn at random there)
    out.set_parametrization({"simple_search_space_0.Conv2d_0.stride": 2})
    assert [lazy(i) for i in input.shape()] == [1, 3, 32, 32]
    assert [lazy(i) for i in out.operands[1].shape()] == [8, 3, 1, 1]
    assert [lazy(i) for i in out.shape()] == [1, 8, 16, 16]
    assert lazy(out.shape()) == (1, 8, 16, 16)
    run_and_check_shape(out)
    run_and_check_shape(out, batch=4)

    out.set_parametrization({"simple_search_space_0.Conv2d_0.stride": 1})
    assert [lazy(i) for i in out.shape()] == [1, 8, 32, 32]

    # lazy on plain values returns them unchanged
    assert lazy(3) == 3 and lazy("same") == "same" and lazy(None) is None


# --- Graphs and Hierarchy -------------------------------------------------------------------------


def make_two_conv_space():
    @search_space
    def simple_search_space():
        input = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))

        weight_0 = Tensor(
            name="weight",
            shape=(IntScalarParameter(min=8, max=64, name="out_channels"), 3, 1, 1),
            axis=("O", "I", "kH", "kW"),
        )
        conv_0 = Conv2d(stride=CategoricalParameter(name="stride", choices=[1, 2]))(input, weight_0)
        relu_0 = Relu()(conv_0)

        weight_1 = Tensor(
            name="weight",
            shape=(IntScalarParameter(min=32, max=64, name="out_channels"), conv_0.shape()[1], 3, 3),
            axis=("O", "I", "kH", "kW"),
        )
        conv_1 = Conv2d(stride=CategoricalParameter(name="stride", choices=[1, 2]))(relu_0, weight_1)
        relu_1 = Relu()(conv_1)
        return relu_1

    return simple_search_space()


def test_graphs_and_hierarchy_parametrization():
    out = make_two_conv_space()
    params = out.parametrization(flatten=True)
    assert set(params) == {
        "simple_search_space_0.Conv2d_1.stride",
        "simple_search_space_0.Conv2d_1.weight.out_channels",
        "simple_search_space_0.Conv2d_0.stride",
        "simple_search_space_0.Conv2d_0.weight.out_channels",
    }
    assert params["simple_search_space_0.Conv2d_1.weight.out_channels"].min == 32
    assert params["simple_search_space_0.Conv2d_0.weight.out_channels"].min == 8
    # the second weight's in-channel axis is the first conv's out_channels parameter itself
    assert out.operands[0].operands[1].shape()[1] is params["simple_search_space_0.Conv2d_0.weight.out_channels"]


def test_graphs_and_hierarchy_operands_users_and_get_nodes():
    out = make_two_conv_space()
    assert repr(out) == "Relu(simple_search_space_0.Relu_1)"
    assert [repr(o) for o in out.operands] == ["Conv2d(simple_search_space_0.Conv2d_1)"]
    assert [repr(u) for u in out.operands[0].users] == ["Relu(simple_search_space_0.Relu_1)"]
    assert out.users == []

    listing = [(repr(n), [repr(o) for o in n.operands]) for n in get_nodes(out)]
    assert listing == [
        ("Relu(simple_search_space_0.Relu_1)", ["Conv2d(simple_search_space_0.Conv2d_1)"]),
        (
            "Conv2d(simple_search_space_0.Conv2d_1)",
            ["Relu(simple_search_space_0.Relu_0)", "Tensor(simple_search_space_0.Conv2d_1.weight)"],
        ),
        ("Tensor(simple_search_space_0.Conv2d_1.weight)", []),
        ("Relu(simple_search_space_0.Relu_0)", ["Conv2d(simple_search_space_0.Conv2d_0)"]),
        (
            "Conv2d(simple_search_space_0.Conv2d_0)",
            ["Tensor(simple_search_space_0.input)", "Tensor(simple_search_space_0.Conv2d_0.weight)"],
        ),
        ("Tensor(simple_search_space_0.Conv2d_0.weight)", []),
        ("Tensor(simple_search_space_0.input)", []),
    ]
    # users are the forward edges of the same graph
    nodes = {n.id: n for n in get_nodes(out)}
    assert ids(nodes["simple_search_space_0.input"].users) == ["simple_search_space_0.Conv2d_0"]
    assert ids(nodes["simple_search_space_0.Conv2d_0.weight"].users) == ["simple_search_space_0.Conv2d_0"]
    assert ids(nodes["simple_search_space_0.Conv2d_0"].users) == ["simple_search_space_0.Relu_0"]
    assert ids(nodes["simple_search_space_0.Relu_0"].users) == ["simple_search_space_0.Conv2d_1"]


def test_graphs_and_hierarchy_runs():
    out = make_two_conv_space()
    for seed in range(4):
        out.sample(seed=seed)
        run_and_check_shape(out, seed=seed)
        run_and_check_shape(out, batch=2, seed=seed)


# --- Blocks ---------------------------------------------------------------------------------------


def conv_relu(input, kernel_size, out_channels, stride):
    in_channels = input.shape()[1]
    weight = Tensor(
        name="weight",
        shape=(out_channels, in_channels, kernel_size, kernel_size),
        axis=("O", "I", "kH", "kW"),
        grad=True,
    )

    conv = Conv2d(stride=stride)(input, weight)
    relu = Relu()(conv)
    return relu


def test_blocks_share_parameters():
    input = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))

    @search_space
    def space(input):
        kernel_size = CategoricalParameter(name="kernel_size", choices=[1, 3, 5])
        stride = CategoricalParameter(name="stride", choices=[1, 2])
        out_channels = IntScalarParameter(name="out_channels", min=8, max=64)
        net = conv_relu(input, kernel_size=kernel_size, out_channels=out_channels, stride=stride)
        net = conv_relu(net, kernel_size=kernel_size, out_channels=out_channels, stride=stride)
        return net

    net = space(input)
    assert [repr(n) for n in get_nodes(net)] == [
        "Relu(space_0.Relu_1)",
        "Conv2d(space_0.Conv2d_1)",
        "Tensor(space_0.Conv2d_1.weight)",
        "Relu(space_0.Relu_0)",
        "Conv2d(space_0.Conv2d_0)",
        "Tensor(space_0.Conv2d_0.weight)",
        "Tensor(input)",
    ]
    # "just one set of parameters": both blocks share them, registered at their first use
    params = net.parametrization(flatten=True)
    assert set(params) == {
        "space_0.Conv2d_0.stride",
        "space_0.Conv2d_0.weight.kernel_size",
        "space_0.Conv2d_0.weight.out_channels",
    }
    conv_1 = net.operands[0]
    assert conv_1.stride is params["space_0.Conv2d_0.stride"]
    assert conv_1.operands[1].shape()[0] is params["space_0.Conv2d_0.weight.out_channels"]

    net.set_parametrization(
        {
            "space_0.Conv2d_0.stride": 2,
            "space_0.Conv2d_0.weight.kernel_size": 5,
            "space_0.Conv2d_0.weight.out_channels": 12,
        }
    )
    assert [lazy(i) for i in net.shape()] == [1, 12, 8, 8]  # both convs use stride 2
    assert lazy(conv_1.operands[1].shape()) == (12, 12, 5, 5)
    run_and_check_shape(net)
    run_and_check_shape(net, batch=2)


def test_blocks_new_parameters_are_separate():
    input = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))

    @search_space
    def space(input):
        kernel_size = CategoricalParameter(name="kernel_size", choices=[1, 3, 5])
        stride = CategoricalParameter(name="stride", choices=[1, 2])
        out_channels = IntScalarParameter(name="out_channels", min=8, max=64)
        net = conv_relu(input, kernel_size=kernel_size.new(), out_channels=out_channels.new(), stride=stride.new())
        net = conv_relu(net, kernel_size=kernel_size.new(), out_channels=out_channels.new(), stride=stride.new())
        return net

    net = space(input)
    params = net.parametrization(flatten=True)
    assert set(params) == {
        "space_0.Conv2d_1.stride",
        "space_0.Conv2d_1.weight.kernel_size",
        "space_0.Conv2d_1.weight.out_channels",
        "space_0.Conv2d_0.stride",
        "space_0.Conv2d_0.weight.kernel_size",
        "space_0.Conv2d_0.weight.out_channels",
    }
    assert len({id(p) for p in params.values()}) == 6
    for key, param in params.items():
        assert param.id == key
    assert params["space_0.Conv2d_1.weight.out_channels"].current_value == 8

    net.set_parametrization(
        {
            "space_0.Conv2d_0.stride": 2,
            "space_0.Conv2d_1.stride": 1,
            "space_0.Conv2d_0.weight.kernel_size": 5,
            "space_0.Conv2d_1.weight.kernel_size": 3,
            "space_0.Conv2d_0.weight.out_channels": 20,
            "space_0.Conv2d_1.weight.out_channels": 9,
        }
    )
    assert [lazy(i) for i in net.shape()] == [1, 9, 16, 16]
    assert lazy(net.operands[0].operands[1].shape()) == (9, 20, 3, 3)
    run_and_check_shape(net)
    run_and_check_shape(net, batch=3)


def test_nested_blocks_without_scope():
    def block(input):
        kernel_size = CategoricalParameter(name="kernel_size", choices=[1, 3, 5])
        stride = CategoricalParameter(name="stride", choices=[1, 2])
        out_channels = IntScalarParameter(name="out_channels", min=8, max=64)
        net = conv_relu(input, kernel_size=kernel_size.new(), out_channels=out_channels.new(), stride=stride.new())
        net = conv_relu(net, kernel_size=kernel_size.new(), out_channels=out_channels.new(), stride=stride.new())
        net = conv_relu(net, kernel_size=kernel_size.new(), out_channels=out_channels.new(), stride=stride.new())
        return net

    input = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))

    @search_space
    def space(input):
        net = block(input)
        net = block(net)
        return net

    net = space(input)
    expected = []
    for i in reversed(range(6)):
        expected += [f"Relu(space_0.Relu_{i})", f"Conv2d(space_0.Conv2d_{i})", f"Tensor(space_0.Conv2d_{i}.weight)"]
    expected.append("Tensor(input)")
    assert [repr(n) for n in get_nodes(net)] == expected
    assert len(net.parametrization()) == 18
    for seed in range(3):
        net.sample(seed=seed)
        run_and_check_shape(net, seed=seed)


# --- Scopes ---------------------------------------------------------------------------------------


# the reference decorates the same `conv_relu` body with @scope; ids come from the function's name
scoped_conv_relu = scope(conv_relu)


@scope
def block(input):
    kernel_size = CategoricalParameter(name="kernel_size", choices=[1, 3, 5])
    stride = CategoricalParameter(name="stride", choices=[1, 2])
    out_channels = IntScalarParameter(name="out_channels", min=8, max=64)
    net = scoped_conv_relu(input, kernel_size=kernel_size.new(), out_channels=out_channels.new(), stride=stride.new())
    net = scoped_conv_relu(net, kernel_size=kernel_size.new(), out_channels=out_channels.new(), stride=stride.new())
    net = scoped_conv_relu(net, kernel_size=kernel_size.new(), out_channels=out_channels.new(), stride=stride.new())
    return net


def make_scoped_space():
    input = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))

    @search_space
    def space(input):
        net = block(input)
        net = block(net)
        return net

    return input, space(input)


def test_scopes_ids():
    _, net = make_scoped_space()
    expected = []
    for b in (1, 0):
        for c in (2, 1, 0):
            prefix = f"space_0.block_{b}.conv_relu_{c}"
            expected += [f"Relu({prefix}.Relu_0)", f"Conv2d({prefix}.Conv2d_0)", f"Tensor({prefix}.Conv2d_0.weight)"]
    expected.append("Tensor(input)")
    assert [repr(n) for n in get_nodes(net)] == expected
    assert net.id == "space_0.block_1.conv_relu_2.Relu_0"
    assert net.operands[0].id == "space_0.block_1.conv_relu_2.Conv2d_0"

    params = net.parametrization()
    assert len(params) == 18
    assert "space_0.block_1.conv_relu_2.Conv2d_0.weight.kernel_size" in params
    assert "space_0.block_0.conv_relu_0.Conv2d_0.stride" in params
    assert "space_0.block_0.conv_relu_1.Conv2d_0.weight.out_channels" in params
    # scopes only change ids: the graph is still flat
    nested = net.parametrization(flatten=False)
    assert set(nested["space_0"]) == {"block_0", "block_1"}
    assert set(nested["space_0"]["block_0"]) == {"conv_relu_0", "conv_relu_1", "conv_relu_2"}


def test_scopes_run():
    _, net = make_scoped_space()
    for seed in range(3):
        net.sample(seed=seed)
        model, _ = run_and_check_shape(net, seed=seed)
        run_and_check_shape(net, batch=2, seed=seed)
    assert "space_0.block_1.conv_relu_2.Conv2d_0.weight" in model.state_dict()


# --- Choice Ops -----------------------------------------------------------------------------------


@scope
def choice_block(input):
    kernel_size = CategoricalParameter([1, 3, 5], name="kernel_size")
    out_channels = IntScalarParameter(min=4, max=64, name="out_channels")
    stride = CategoricalParameter([1, 2], name="stride")

    identity = Identity()
    optional_conv = partial(
        scoped_conv_relu, out_channels=out_channels.new(), stride=stride.new(), kernel_size=kernel_size.new()
    )
    net = ChoiceOp(identity, optional_conv)(input)
    return net


def make_choice_space():
    kernel_size = CategoricalParameter(name="kernel_size", choices=[1, 3, 5])
    stride = CategoricalParameter(name="stride", choices=[1, 2])
    out_channels = IntScalarParameter(name="out_channels", min=8, max=64)

    input = Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W"))

    @search_space
    def space(input, out_channels, stride, kernel_size):
        conv = scoped_conv_relu(
            input, out_channels=out_channels.new(), stride=stride.new(), kernel_size=kernel_size.new()
        )
        net = choice_block(conv)
        return net

    return space(input, out_channels, stride, kernel_size)


def test_choice_op_parametrization_and_ids():
    net = make_choice_space()
    assert isinstance(net, ChoiceOp)
    assert net.id == "space_0.choice_block_0.ChoiceOp_0"
    params = net.parametrization(flatten=True)
    assert set(params) == {
        "space_0.choice_block_0.ChoiceOp_0.choice",
        "space_0.choice_block_0.conv_relu_0.Conv2d_0.stride",
        "space_0.choice_block_0.conv_relu_0.Conv2d_0.weight.kernel_size",
        "space_0.choice_block_0.conv_relu_0.Conv2d_0.weight.out_channels",
        "space_0.conv_relu_0.Conv2d_0.stride",
        "space_0.conv_relu_0.Conv2d_0.weight.kernel_size",
        "space_0.conv_relu_0.Conv2d_0.weight.out_channels",
    }
    choice = params["space_0.choice_block_0.ChoiceOp_0.choice"]
    assert isinstance(choice, IntScalarParameter)
    assert (choice.min, choice.max, choice.step_size, choice.current_value) == (0, 1, 1, 0)
    assert params["space_0.choice_block_0.conv_relu_0.Conv2d_0.weight.out_channels"].min == 4
    assert params["space_0.conv_relu_0.Conv2d_0.weight.out_channels"].min == 8

    # the options are the choice node's operands, in switch order
    assert ids(net.operands) == ["space_0.choice_block_0.Identity_0", "space_0.choice_block_0.conv_relu_0.Relu_0"]
    assert ids(net.options) == ids(net.operands)
    first_conv = net.operands[0].operands[0]
    assert first_conv.id == "space_0.conv_relu_0.Relu_0"
    assert ids(first_conv.users) == ["space_0.choice_block_0.Identity_0", "space_0.choice_block_0.conv_relu_0.Conv2d_0"]


def test_choice_op_runs_each_option():
    net = make_choice_space()
    params = net.parametrization()
    net.set_parametrization(
        {
            "space_0.conv_relu_0.Conv2d_0.weight.out_channels": 10,
            "space_0.conv_relu_0.Conv2d_0.stride": 2,
            "space_0.choice_block_0.conv_relu_0.Conv2d_0.weight.out_channels": 6,
            "space_0.choice_block_0.conv_relu_0.Conv2d_0.stride": 2,
            "space_0.choice_block_0.conv_relu_0.Conv2d_0.weight.kernel_size": 3,
        }
    )
    expected = {0: [1, 10, 16, 16], 1: [1, 6, 8, 8]}
    torch.manual_seed(0)
    model = BasicExecutor(net).initialize()
    x = torch.randn(2, 3, 32, 32)
    for choice, shape in expected.items():
        params["space_0.choice_block_0.ChoiceOp_0.choice"].set_current(choice)
        assert [lazy(i) for i in net.shape()] == shape
        assert list(model(x).shape) == [2, *shape[1:]]
        run_and_check_shape(net)
    # with the identity chosen, the output is the first block's output
    params["space_0.choice_block_0.ChoiceOp_0.choice"].set_current(0)
    active = ids(model.active_nodes())
    assert "space_0.choice_block_0.conv_relu_0.Conv2d_0" not in active
    assert "space_0.choice_block_0.Identity_0" in active


def test_dynamic_depth():
    def dynamic_depth(*exits, switch):
        return ChoiceOp(*exits, switch=switch)()

    input = Tensor(name="input", shape=(1, 3, 16, 16), axis=("N", "C", "H", "W"))

    @search_space
    def space(input):
        depth = IntScalarParameter(min=0, max=2, name="depth")
        out_channels = IntScalarParameter(name="out_channels", min=4, max=16)
        stride = CategoricalParameter(name="stride", choices=[1, 2])
        kernel_size = CategoricalParameter(name="kernel_size", choices=[1, 3])
        exits = []
        net = input
        for _ in range(3):
            net = scoped_conv_relu(
                net, kernel_size=kernel_size.new(), out_channels=out_channels.new(), stride=stride.new()
            )
            exits.append(net)
        return dynamic_depth(*exits, switch=depth)

    net = space(input)
    assert net.id == "space_0.ChoiceOp_0"
    assert ids(net.operands) == [f"space_0.conv_relu_{i}.Relu_0" for i in range(3)]
    params = net.parametrization()
    assert "space_0.ChoiceOp_0.depth" in params and len(params) == 10
    for i in range(3):
        params[f"space_0.conv_relu_{i}.Conv2d_0.weight.out_channels"].set_current(5 + i)
        params[f"space_0.conv_relu_{i}.Conv2d_0.stride"].set_current(2)
    torch.manual_seed(0)
    model = BasicExecutor(net).initialize()
    x = torch.randn(3, 3, 16, 16)
    for depth in range(3):
        net.set_parametrization({"space_0.ChoiceOp_0.depth": depth})
        expected = [1, 5 + depth, 16 >> (depth + 1), 16 >> (depth + 1)]
        assert [lazy(i) for i in net.shape()] == expected
        assert list(model(x).shape) == [3, *expected[1:]]
        active = ids(model.active_nodes())
        for i in range(3):
            assert (f"space_0.conv_relu_{i}.Conv2d_0" in active) == (i <= depth)
        run_and_check_shape(net, seed=depth)


# --- Executor -------------------------------------------------------------------------------------


def test_executor_example():
    input, net = make_scoped_space()
    model = BasicExecutor(net)
    model.initialize()
    assert isinstance(model, torch.nn.Module)

    x = torch.randn(input.shape())
    out = model.forward(x)
    assert list(out.shape) == list(lazy(net.shape()))
    assert out.grad_fn is not None  # trainable weights
    assert (out >= 0).all()  # the last op is a Relu
    # the reference's printout: 8 channels, 4x4 (stride 2 in three of the six convs)
    strides = [p for k, p in net.parametrization().items() if k.endswith(".stride")]
    for i, p in enumerate(sorted(strides, key=lambda p: p.id)):
        p.set_current(2 if i % 2 == 0 else 1)
    assert list(model(x).shape) == [1, 8, 4, 4]
    assert list(model(torch.randn(6, 3, 32, 32)).shape) == [6, 8, 4, 4]
    # weights and buffers are registered as a torch module's parameters, named by node id
    names = {name for name, _ in model.named_parameters()}
    assert len(names) == 6 and "space_0.block_0.conv_relu_0.Conv2d_0.weight" in names
