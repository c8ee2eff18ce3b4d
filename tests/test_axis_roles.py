"""Axis roles and affine structure are declared (by the Tensor or the op owning it), never read from names."""

import pytest
import torch

from ops import Conv1d, Identity, Linear
from supernet import BasicExecutor, CategoricalParameter, ChoiceOp, SupernetExecutor, Tensor, get_nodes, search_space
from supernet.axis_role import AxisRole
from supernet.node import Op
from supernet.traits import Affine, OpTraits
from supernet.value_choice import WeightMask


def weight_of(net, name):
    """The weight Tensor of `net` (an op) named `name`."""
    return next(o for o in net.operands if isinstance(o, Tensor) and o.name == name)


def sized_conv(axis_name):
    """A Conv1d whose weight's kernel axis is called `axis_name` and sized by a value choice (1 or 3)."""
    x = Tensor("x", (1, 2, 8), ("N", "C", "L"))
    kernel = CategoricalParameter([1, 3], name="size")

    @search_space
    def space(x):
        return Conv1d()(x, Tensor("weight", (4, 2, kernel), ("O", "I", axis_name)))

    return space(x), kernel


class Shift(Op):
    """x + weight along the last axis: an op that declares no roles."""

    n_inputs = 1

    def _forward_implementation(self, x, weight):
        return x + weight


def sized_shift(axis_name, axis_roles=None):
    x = Tensor("x", (1, 4), ("N", "C"))
    size = CategoricalParameter([2, 4], name="size")

    @search_space
    def space(x):
        return Shift()(x, Tensor("weight", (size,), (axis_name,), axis_roles=axis_roles))

    return space(x), size


def test_the_convolution_declares_its_kernel_axis_whatever_its_name():
    net, kernel = sized_conv("z")
    assert weight_of(net, "weight").axis_roles == (None, None, AxisRole.KERNEL)
    model = BasicExecutor(net, seed=0)
    full = model.get_parameter(weight_of(net, "weight").id).detach().clone()
    kernel.set_current(1)
    assert torch.equal(model.weight(weight_of(net, "weight")), full[:, :, 1:2])  # the centre of the 3-kernel


def test_an_axis_named_like_a_kernel_without_the_role_is_sliced_from_the_start():
    net, size = sized_shift("k_channels")
    weight = weight_of(net, "weight")
    assert weight.axis_roles == (None,)
    model = BasicExecutor(net, seed=0)
    full = model.get_parameter(weight.id).detach().clone()
    size.set_current(2)
    assert torch.equal(model.weight(weight), full[:2])
    mask = WeightMask(weight, [size], (4,))
    assert torch.equal(mask({size.id: torch.tensor([1.0, 0.0])}), torch.tensor([1.0, 1.0, 0.0, 0.0]))


def test_a_tensor_may_declare_its_own_roles():
    net, size = sized_shift("anything", axis_roles=("kernel",))
    weight = weight_of(net, "weight")
    assert weight.axis_roles == (AxisRole.KERNEL,)
    model = BasicExecutor(net, seed=0)
    full = model.get_parameter(weight.id).detach().clone()
    size.set_current(2)
    assert torch.equal(model.weight(weight), full[1:3])
    mask = WeightMask(weight, [size], (4,))
    assert torch.equal(mask({size.id: torch.tensor([1.0, 0.0])}), torch.tensor([0.0, 1.0, 1.0, 0.0]))


def test_bad_axis_roles_name_the_tensor():
    with pytest.raises(ValueError, match="Tensor w: unknown axis role 'spatial'"):
        Tensor("w", (3, 3), ("a", "b"), axis_roles=("spatial", None))
    with pytest.raises(ValueError, match="Tensor w: 1 axis roles"):
        Tensor("w", (3, 3), ("a", "b"), axis_roles=("kernel",))


class ScaleShift(Op):
    """gamma * x + beta per feature (axis 1), through weights called gamma and beta."""

    traits = OpTraits(pure=True, affine=Affine(axis=1, scale=1, shift=2))
    n_inputs = 1

    def _forward_implementation(self, x, gamma, beta):
        return x * gamma + beta


class NamedLikeAffine(Op):
    """x @ weight.T + bias, with operands named weight and bias but no affine declaration."""

    traits = OpTraits(pure=True)
    n_inputs = 1

    def _forward_implementation(self, x, weight, bias):
        return Linear()._forward_implementation(x, weight, bias)


def mixed(op_type, names):
    x = Tensor("x", (1, 4), ("N", "C"))

    @search_space
    def space(x):
        def option(h):
            return op_type()(
                h,
                Tensor(names[0], (4,) if op_type is ScaleShift else (4, 4), init="ones"),
                Tensor(names[1], (4,), init="zeros"),
            )

        return ChoiceOp(Identity(), option)(x)

    return space(x)


def test_the_affine_structure_is_declared_not_read_from_operand_names():
    declared = SupernetExecutor(mixed(ScaleShift, ("gamma", "beta")), seed=0)
    assert declared.plan().counts["scaled_outputs"] == 1
    named = SupernetExecutor(mixed(NamedLikeAffine, ("weight", "bias")), seed=0)
    assert named.plan().counts["scaled_outputs"] == 0
    x = torch.randn(3, 4)
    for net in (mixed(ScaleShift, ("gamma", "beta")), mixed(NamedLikeAffine, ("weight", "bias"))):
        fast, reference = SupernetExecutor(net, seed=0), SupernetExecutor(net, seed=0, optimize=False)
        reference.set_alphas({k: torch.tensor([0.3, -0.4]) for k in reference.alphas})
        fast.set_alphas({k: torch.tensor([0.3, -0.4]) for k in fast.alphas})
        assert torch.allclose(fast(x), reference(x), atol=1e-6)


def test_the_batch_axis_is_a_role_named_n_by_default_or_declared():
    from ops import Relu
    from supernet.export_module import export_module

    assert Tensor("x", (1, 3), ("N", "C")).axis_roles == (AxisRole.BATCH, None)
    for axes, roles in ((("N", "C"), None), (("B", "C"), ("batch", None))):
        x = Tensor("x", (1, 3), axes, axis_roles=roles)

        @search_space
        def space(x):
            return Relu()(x)

        net = space(x)
        for model in (BasicExecutor(net), export_module(net)):
            assert model(torch.ones(5, 3)).shape == (5, 3)  # any batch size
            with pytest.raises(ValueError, match="x"):
                model(torch.ones(5, 4))
    fixed = Tensor("x", (2, 3), ("B", "C"))  # "B" without the role: a plain axis of size 2

    @search_space
    def plain(x):
        return Relu()(x)

    with pytest.raises(ValueError, match="axis 'B' must have size 2"):
        BasicExecutor(plain(fixed))(torch.ones(5, 3))


def batch_named(axes, roles):
    """A conv space whose input's axes are `axes` with roles `roles` (None: the default roles)."""
    from ops import conv1d

    @search_space
    def space(x):
        return conv1d(x, 3, 3)

    return space(Tensor("x", (1, 2, 8), axes, axis_roles=roles))


def test_latency_batches_the_axis_declared_as_batch_whatever_its_name():
    from supernet.latency import example_input, op_signature

    declared = batch_named(("B", "C", "L"), ("batch", None, None))
    assert [tuple(t.shape) for t in example_input(declared, batch_size=4)] == [(4, 2, 8)]
    conv = next(n for n in get_nodes(declared) if isinstance(n, Conv1d))
    assert '["x", [4, 2, 8]]' in op_signature(conv, batch_size=4)
    # "N" without the batch role is a plain axis: its declared size is kept
    plain = batch_named(("N", "C", "L"), (None, None, None))
    assert [tuple(t.shape) for t in example_input(plain, batch_size=4)] == [(1, 2, 8)]
    last = batch_named(("C", "L", "B"), (None, None, "batch"))
    with pytest.raises(ValueError, match=r"x: latency tables need the batch axis \(AxisRole.BATCH\) first"):
        example_input(last, batch_size=4)


def test_standalone_source_shows_the_declared_batch_axis_by_its_own_name(tmp_path):
    from supernet.export_module import export_module
    from supernet.standalone import write_standalone

    model = export_module(batch_named(("B", "C", "L"), ("batch", None, None)))
    source, _ = write_standalone(model, tmp_path / "batched.py")
    assert "# x: (B, 2, 8)" in source.read_text()
    plain = export_module(batch_named(("N", "C", "L"), (None, None, None)))
    source, _ = write_standalone(plain, tmp_path / "plain.py")
    assert "# x: (1, 2, 8)" in source.read_text()  # "N" declared a plain axis: its size, not the letter
