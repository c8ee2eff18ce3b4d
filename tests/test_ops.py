"""Every op against its plain torch equivalent, on 1-D and 2-D inputs where torch has both.

Each case builds a one-op graph, runs it in a BasicExecutor and checks that the runtime shape equals
`lazy(symbolic shape)` (for the declared and for another batch size) and that the values equal the
torch functional given the executor's own weights.
"""

import pytest
import torch
import torch.nn.functional as F

from ops import (
    AdaptiveAvgPooling,
    Add,
    AvgPooling,
    BatchNorm,
    Conv1d,
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPooling,
    Permute,
    Relu,
    Reshape,
    Zero,
    conv1d,
    conv2d,
    linear,
)
from supernet import BasicExecutor, CategoricalParameter, IntScalarParameter, Tensor, lazy, search_space

SPATIAL_AXES = {1: ("L",), 2: ("H", "W")}


def data(name, shape):
    axes = ("N", "C", *SPATIAL_AXES[len(shape) - 2]) if len(shape) > 2 else ("N", "C")[: len(shape)]
    return Tensor(name, shape, axes)


def run(net, *values, eval_mode=False):
    """Run `net` on `values`; check the runtime shape against the symbolic one; return (model, output)."""
    torch.manual_seed(0)
    model = BasicExecutor(net)
    if eval_mode:
        model.eval()
    out = model(*values)
    expected = list(lazy(net.shape()))
    expected[0] = values[0].shape[0]  # the batch axis is free
    assert list(out.shape) == expected
    return model, out


def inputs(*shapes, batch=2, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *shape[1:], generator=generator) for shape in shapes]


# --- convolutions ---------------------------------------------------------------------------------

CONV_CASES = [
    # dims, in_channels, out_channels, kernel, stride, dilation, groups, size, bias
    (1, 3, 4, 3, 1, 1, 1, 11, False),
    (1, 4, 6, 5, 2, 1, 2, 16, True),
    (1, 6, 6, 3, 1, 2, 6, 10, False),
    (1, 2, 3, 1, 3, 1, 1, 10, True),
    (2, 3, 4, 3, 1, 1, 1, 9, False),
    (2, 4, 8, 5, 2, 1, 2, 12, True),
    (2, 6, 3, 3, 2, 2, 3, 13, False),
    (2, 4, 4, 3, 1, 3, 4, 8, True),
    (2, 3, 5, 1, 2, 1, 1, 7, False),
]


@pytest.mark.parametrize("dims,cin,cout,k,stride,dilation,groups,size,bias", CONV_CASES)
def test_conv_block_matches_torch(dims, cin, cout, k, stride, dilation, groups, size, bias):
    x = data("x", (1, cin, *[size] * dims))
    block = conv1d if dims == 1 else conv2d
    net = block(x, cout, k, stride=stride, dilation=dilation, groups=groups, bias=bias)
    assert isinstance(net, Conv1d if dims == 1 else Conv2d)
    weight_id = f"{net.id}.weight"
    assert lazy(net.operands[1].shape()) == (cout, cin // groups, *[k] * dims)
    for batch in (1, 3):
        (v,) = inputs(x.shape(), batch=batch)
        model, out = run(net, v)
        weight = model.get_parameter(weight_id)
        b = model.get_parameter(f"{net.id}.bias") if bias else None
        functional = F.conv1d if dims == 1 else F.conv2d
        expected = functional(
            v, weight, b, stride=stride, padding=dilation * (k - 1) // 2, dilation=dilation, groups=groups
        )
        assert torch.allclose(out, expected, atol=1e-6)
        if stride == 1:  # the default padding keeps the size at stride 1 (odd kernels)
            assert out.shape[2:] == v.shape[2:]


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_explicit_padding_and_even_kernel(dims):
    cls, functional = (Conv1d, F.conv1d) if dims == 1 else (Conv2d, F.conv2d)
    axes = ("O", "I", *(("kL",) if dims == 1 else ("kH", "kW")))
    for k, padding in ((3, 0), (3, 2), (2, None), (4, 1)):
        x = data("x", (1, 2, *[9] * dims))
        w = Tensor("weight", (3, 2, *[k] * dims), axes)
        net = cls(stride=2, padding=padding)(x, w)
        (v,) = inputs(x.shape())
        model, out = run(net, v)
        pad = (k - 1) // 2 if padding is None else padding
        assert torch.allclose(
            out, functional(v, model.get_parameter("Conv%dd_0.weight" % dims), stride=2, padding=pad), atol=1e-6
        )


def test_conv_with_searchable_channels_and_kernel_uses_the_sliced_weight():
    @search_space
    def space():
        x = data("x", (1, 4, 10, 10))
        return conv2d(
            x,
            IntScalarParameter(2, 8, name="c"),
            CategoricalParameter([1, 3, 5], name="k"),
            stride=CategoricalParameter([1, 2], name="s"),
            bias=True,
        )

    net = space()
    (v,) = inputs(net.operands[0].shape(), batch=3)
    for c, k, s in ((2, 1, 1), (5, 3, 2), (8, 5, 1), (3, 5, 2)):
        net.set_parametrization(
            {"space_0.Conv2d_0.weight.c": c, "space_0.Conv2d_0.weight.k": k, "space_0.Conv2d_0.s": s}
        )
        model, out = run(net, v)
        full = model.get_parameter("space_0.Conv2d_0.weight")
        bias = model.get_parameter("space_0.Conv2d_0.bias")
        start = (5 - k) // 2
        weight = full[:c, :, start : start + k, start : start + k]
        assert torch.allclose(out, F.conv2d(v, weight, bias[:c], stride=s, padding=k // 2), atol=1e-6)


# --- linear ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,bias", [((1, 7), True), ((1, 7), False), ((1, 5, 7), True)])
def test_linear_matches_torch(shape, bias):
    x = Tensor("x", shape, ("N", "T", "C")[: len(shape)] if len(shape) == 3 else ("N", "C"))
    net = linear(x, 4, bias=bias)
    assert isinstance(net, Linear)
    (v,) = inputs(shape, batch=3)
    model, out = run(net, v)
    b = model.get_parameter("Linear_0.bias") if bias else None
    assert torch.allclose(out, F.linear(v, model.get_parameter("Linear_0.weight"), b), atol=1e-6)


def test_linear_with_searchable_features():
    @search_space
    def space():
        x = data("x", (1, 6))
        hidden = linear(x, IntScalarParameter(3, 9, name="h"))
        return linear(Relu()(hidden), 2)

    net = space()
    (v,) = inputs((1, 6), batch=4)
    for h in (3, 9, 5):
        net.set_parametrization({"space_0.Linear_0.weight.h": h})
        model, out = run(net, v)
        w0, b0 = model.get_parameter("space_0.Linear_0.weight"), model.get_parameter("space_0.Linear_0.bias")
        w1, b1 = model.get_parameter("space_0.Linear_1.weight"), model.get_parameter("space_0.Linear_1.bias")
        hidden = F.relu(F.linear(v, w0[:h], b0[:h]))
        assert torch.allclose(out, F.linear(hidden, w1[:, :h], b1), atol=1e-6)


# --- normalisation --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 5), (1, 5, 9), (1, 5, 6, 7)])
@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_matches_torch(shape, training):
    x = data("x", shape)
    net = BatchNorm(momentum=0.2, eps=1e-3)(x)
    torch.manual_seed(0)
    model = BasicExecutor(net).train(training)
    with torch.no_grad():  # non-trivial affine parameters and running statistics
        model.get_parameter("BatchNorm_0.weight").uniform_(0.5, 1.5)
        model.get_parameter("BatchNorm_0.bias").uniform_(-1, 1)
        model.get_buffer("BatchNorm_0.running_mean").uniform_(-1, 1)
        model.get_buffer("BatchNorm_0.running_var").uniform_(0.5, 2)
    mean, var = (
        model.get_buffer("BatchNorm_0.running_mean").clone(),
        model.get_buffer("BatchNorm_0.running_var").clone(),
    )
    (v,) = inputs(shape, batch=6)
    out = model(v)
    assert list(out.shape) == [6, *lazy(net.shape())[1:]]
    expected = F.batch_norm(
        v,
        mean,
        var,
        model.get_parameter("BatchNorm_0.weight"),
        model.get_parameter("BatchNorm_0.bias"),
        training,
        0.2,
        1e-3,
    )
    assert torch.allclose(out, expected, atol=1e-5)
    # F.batch_norm updated our copies exactly as the executor updated its buffers
    assert torch.allclose(model.get_buffer("BatchNorm_0.running_mean"), mean, atol=1e-6)
    assert torch.allclose(model.get_buffer("BatchNorm_0.running_var"), var, atol=1e-6)


def test_batchnorm_without_affine():
    x = data("x", (1, 3, 5))
    net = BatchNorm(affine=False)(x)
    model = BasicExecutor(net)
    assert set(model.state_dict()) == {"BatchNorm_0.running_mean", "BatchNorm_0.running_var"}
    assert list(model.parameters()) == []
    (v,) = inputs((1, 3, 5), batch=4)
    assert torch.allclose(model(v), F.batch_norm(v, None, None, training=True), atol=1e-5)


# --- pooling --------------------------------------------------------------------------------------

POOL_CASES = [
    # dims, kernel, stride, padding, size
    (1, 2, None, 0, 10),
    (1, 3, 2, 1, 11),
    (1, 3, 1, 0, 7),
    (2, 2, None, 0, 8),
    (2, 3, 2, 1, 9),
    (2, 5, 3, 2, 12),
]


@pytest.mark.parametrize("dims,kernel,stride,padding,size", POOL_CASES)
def test_max_pooling_matches_torch(dims, kernel, stride, padding, size):
    x = data("x", (1, 3, *[size] * dims))
    net = MaxPooling(kernel_size=kernel, stride=stride, padding=padding)(x)
    (v,) = inputs(x.shape(), batch=2)
    _, out = run(net, v)
    functional = F.max_pool1d if dims == 1 else F.max_pool2d
    assert torch.equal(out, functional(v, kernel, stride, padding))


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dims,kernel,stride,padding,size", POOL_CASES)
def test_avg_pooling_matches_torch(dims, kernel, stride, padding, size, count_include_pad):
    x = data("x", (1, 3, *[size] * dims))
    net = AvgPooling(kernel_size=kernel, stride=stride, padding=padding, count_include_pad=count_include_pad)(x)
    (v,) = inputs(x.shape(), batch=2)
    _, out = run(net, v)
    functional = F.avg_pool1d if dims == 1 else F.avg_pool2d
    assert torch.allclose(out, functional(v, kernel, stride, padding, count_include_pad=count_include_pad), atol=1e-6)


def test_pooling_with_searchable_kernel_and_stride():
    @search_space
    def space():
        x = data("x", (1, 2, 13, 13))
        return MaxPooling(
            kernel_size=CategoricalParameter([2, 3], name="k"), stride=CategoricalParameter([1, 2], name="s")
        )(x)

    net = space()
    (v,) = inputs((1, 2, 13, 13))
    for k in (2, 3):
        for s in (1, 2):
            net.set_parametrization({"space_0.MaxPooling_0.k": k, "space_0.MaxPooling_0.s": s})
            _, out = run(net, v)
            assert torch.equal(out, F.max_pool2d(v, k, s))


@pytest.mark.parametrize("shape,output_size", [((1, 3, 10), 1), ((1, 3, 10), 3), ((1, 3, 7, 9), 1), ((1, 3, 7, 9), 4)])
def test_adaptive_avg_pooling_matches_torch(shape, output_size):
    net = AdaptiveAvgPooling(output_size=output_size)(data("x", shape))
    (v,) = inputs(shape)
    _, out = run(net, v)
    functional = F.adaptive_avg_pool1d if len(shape) == 3 else F.adaptive_avg_pool2d
    assert torch.allclose(out, functional(v, output_size), atol=1e-6)


def test_pooling_refuses_other_ranks():
    with pytest.raises(ValueError, match="MaxPooling_0"):
        MaxPooling(2)(data("x", (1, 4)))
    with pytest.raises(ValueError, match="AdaptiveAvgPooling_0"):
        AdaptiveAvgPooling()(data("x", (1, 4)))


# --- reshaping ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,start_dim", [((1, 3, 4, 5), 1), ((1, 3, 4, 5), 2), ((1, 3, 8), 1), ((1, 6), 1)])
def test_flatten_matches_torch(shape, start_dim):
    net = Flatten(start_dim=start_dim)(data("x", shape))
    (v,) = inputs(shape, batch=3)
    _, out = run(net, v)
    assert torch.equal(out, torch.flatten(v, start_dim))


def test_flatten_of_a_searchable_shape():
    @search_space
    def space():
        x = data("x", (1, 3, 8, 8))
        return Flatten()(
            conv2d(x, IntScalarParameter(2, 4, name="c"), 3, stride=CategoricalParameter([1, 2], name="s"))
        )

    net = space()
    (v,) = inputs((1, 3, 8, 8))
    for c, s in ((2, 1), (4, 2)):
        net.set_parametrization({"space_0.Conv2d_0.weight.c": c, "space_0.Conv2d_0.s": s})
        _, out = run(net, v)
        assert list(out.shape) == [2, c * (8 // s) ** 2]


@pytest.mark.parametrize("shape,new_shape", [((1, 12), (3, 4)), ((1, 3, 4, 5), (60,)), ((1, 2, 6), (3, 2, 2))])
def test_reshape_matches_torch(shape, new_shape):
    net = Reshape(new_shape)(data("x", shape))
    (v,) = inputs(shape, batch=3)
    _, out = run(net, v)
    assert torch.equal(out, v.reshape(3, *new_shape))


def test_reshape_refuses_a_different_element_count():
    with pytest.raises(ValueError, match="Reshape_0"):
        Reshape((5,))(data("x", (1, 12)))


@pytest.mark.parametrize("shape,dims", [((1, 3, 4, 5), (0, 2, 3, 1)), ((1, 3, 7), (0, 2, 1)), ((2, 3), (1, 0))])
def test_permute_matches_torch(shape, dims):
    net = Permute(dims)(data("x", shape))
    (v,) = inputs(shape, batch=shape[0])
    out = BasicExecutor(net)(v)
    assert list(out.shape) == list(lazy(net.shape()))
    assert torch.equal(out, v.permute(*dims))


def test_permute_refuses_a_non_permutation():
    with pytest.raises(ValueError, match="Permute_0"):
        Permute((0, 1, 1))(data("x", (1, 3, 4)))


# --- elementwise ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 4), (1, 3, 6), (1, 3, 4, 5)])
def test_add_of_three_operands(shape):
    @search_space
    def space():
        a, b, c = data("a", shape), data("b", shape), data("c", shape)
        return Add()(a, b, c)

    net = space()
    va, vb, vc = inputs(shape, shape, shape, batch=3)
    _, out = run(net, va, vb, vc)
    assert torch.allclose(out, va + vb + vc)


def test_add_refuses_different_shapes():
    with pytest.raises(ValueError, match="Add_0"):
        Add()(data("a", (1, 3, 4)), data("b", (1, 3, 5)))
    with pytest.raises(TypeError, match="at least 2"):
        Add()(data("a", (1, 3, 4)))


@pytest.mark.parametrize("shape", [(1, 3, 7), (1, 3, 8), (1, 2, 7, 6), (1, 2, 9, 9)])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_zero_with_stride(shape, stride):
    net = Zero(stride=stride)(data("x", shape))
    (v,) = inputs(shape)
    _, out = run(net, v)
    pooled = (F.max_pool1d if len(shape) == 3 else F.max_pool2d)(v, 1, stride)  # torch's strided subsampling
    assert out.shape == pooled.shape
    assert torch.equal(out, torch.zeros_like(pooled))


@pytest.mark.parametrize("shape", [(1, 5), (1, 3, 6), (1, 3, 4, 5)])
def test_relu_identity_dropout(shape):
    x = data("x", shape)
    (v,) = inputs(shape)
    _, out = run(Relu()(x), v)
    assert torch.equal(out, F.relu(v))
    _, out = run(Identity()(data("y", shape)), v)
    assert torch.equal(out, v)
    _, out = run(Dropout(0.3)(data("z", shape)), v, eval_mode=True)
    assert torch.equal(out, v)
    torch.manual_seed(3)
    model = BasicExecutor(Dropout(0.3)(data("w", shape)))
    torch.manual_seed(3)
    out = model(v)
    torch.manual_seed(3)
    assert torch.equal(out, F.dropout(v, 0.3, True))
