"""The search-space language: parameters, expressions, parametrizations, choices, custom ops, the
shared-weight store of the executor, train/eval behaviour and the error messages."""

from functools import partial

import numpy as np
import pytest
import torch

from ops import Add, BatchNorm, Conv2d, Dropout, Identity, Linear, MaxPooling, Relu, conv1d, conv2d
from supernet import (
    BasicExecutor,
    CategoricalParameter,
    Ceil,
    ChoiceOp,
    FloatScalarParameter,
    Floor,
    IntScalarParameter,
    Op,
    Tensor,
    get_nodes,
    lazy,
    scope,
    search_space,
)

# --- parameters -----------------------------------------------------------------------------------


def registered(param):
    """`param` used by a node inside a search space, so that it gets an id."""

    @search_space
    def space():
        x = Tensor("x", (1, param), ("N", "C"))
        return Relu()(x)

    space()
    return param


def test_set_current_outside_domain_names_the_parameter():
    p = registered(IntScalarParameter(0, 4, name="width"))
    assert p.id == "space_0.x.width"
    with pytest.raises(ValueError, match=r"space_0\.x\.width"):
        p.set_current(7)
    assert p.current_value == 0
    c = CategoricalParameter([1, 3, 5], name="k")
    with pytest.raises(ValueError, match="k"):
        c.set_current(2)
    with pytest.raises(ValueError):
        c.set_current("3")
    with pytest.raises(ValueError):
        c.set_current(True)  # a bool is not the choice 1
    f = FloatScalarParameter(0.0, 1.0, name="rate")
    with pytest.raises(ValueError, match="rate"):
        f.set_current(1.5)


def test_int_scalar_parameter_domain_and_step_size():
    p = IntScalarParameter(min=4, max=16, step_size=4, name="c")
    assert p.current_value == 4
    assert p.values() == [4, 8, 12, 16]
    for v in (4, 8, 12, 16, np.int64(8)):
        assert p.contains(v)
    for v in (5, 0, 20, 8.0, "8", True):
        assert not p.contains(v)
    p.set_current(np.int64(12))
    assert p.current_value == 12 and type(p.current_value) is int
    with pytest.raises(ValueError, match="c"):
        p.set_current(6)
    draws = {p.sample() for _ in range(200)}
    assert draws == {4, 8, 12, 16}
    assert p.bounds() == (4, 16)
    with pytest.raises(ValueError):
        IntScalarParameter(min=5, max=1)
    with pytest.raises(ValueError):
        IntScalarParameter(min=1, max=5, step_size=0)


def test_float_scalar_parameter():
    p = FloatScalarParameter(min=0.1, max=0.5, name="p")
    assert p.current_value == 0.1
    p.set_current(0.3)
    assert p.current_value == 0.3
    assert not p.contains(0) and not p.contains("0.3") and not p.contains(True)
    p.set_current(np.float32(0.25))
    assert type(p.current_value) is float
    draws = [p.sample(np.random.default_rng(s)) for s in range(50)]
    assert all(0.1 <= d <= 0.5 for d in draws) and len(set(draws)) == 50
    assert p.bounds() == (0.1, 0.5)
    p.set_current(0.25)
    assert lazy(p * 2) == pytest.approx(0.5)


def test_categorical_parameter_stores_the_choice_itself():
    p = CategoricalParameter([1, 2], name="stride")
    p.set_current(2.0)
    assert p.current_value == 2 and type(p.current_value) is int
    p.set_current(np.int64(1))
    assert type(p.current_value) is int
    s = CategoricalParameter(["relu", "gelu"], name="act")
    s.set_current("gelu")
    assert s.index() == 1 and s.index("relu") == 0
    with pytest.raises(TypeError, match="non-numeric"):
        s.bounds()


def test_new_gives_an_independent_parameter():
    p = CategoricalParameter([1, 3, 5], name="k")
    p.set_current(5)
    q = p.new()
    assert q is not p and q.choices == p.choices and q.name == "k"
    assert q.id is None and q.current_value == 5  # a fresh parameter keeps the current value (as in HANNAH)
    q.set_current(3)
    assert p.current_value == 5

    registered(p)
    r = p.new()
    assert p.id is not None and r.id is None


def test_parameter_sample_with_own_seed_is_reproducible():
    a = IntScalarParameter(0, 1000, seed=7)
    b = IntScalarParameter(0, 1000, seed=7)
    assert [a.sample() for _ in range(5)] == [b.sample() for _ in range(5)]
    assert a.current_value == b.current_value


def make_sampled_space():
    @search_space
    def space():
        x = Tensor("x", (1, 3, 16, 16), ("N", "C", "H", "W"))
        k = CategoricalParameter([1, 3, 5], name="k")
        c = IntScalarParameter(4, 32, name="c")
        s = CategoricalParameter([1, 2], name="s")
        net = x
        for _ in range(3):
            net = conv2d(net, c.new(), k.new(), stride=s.new())
        return net

    return space()


def test_node_sample_with_seed_is_reproducible():
    net = make_sampled_space()
    first = net.sample(seed=123)
    assert set(first) == set(net.parametrization())
    assert {k: p.current_value for k, p in net.parametrization().items()} == first
    net.sample(seed=5)
    assert net.sample(seed=123) == first
    # a second, identical space samples the same values from the same seed
    assert make_sampled_space().sample(seed=123) == first
    assert any(net.sample(seed=s) != first for s in range(5))


# --- expressions ----------------------------------------------------------------------------------


def test_arithmetic_expressions():
    c = IntScalarParameter(1, 10, name="c")
    c.set_current(7)
    cases = {
        c + 1: 8,
        1 + c: 8,
        c - 2: 5,
        10 - c: 3,
        c * 3: 21,
        3 * c: 21,
        c / 2: 3.5,
        14 / c: 2.0,
        c // 2: 3,
        15 // c: 2,
        c % 3: 1,
        15 % c: 1,
        c + c * 2: 21,
        (c + 1) // (c - 5): 4,
    }
    for expression, value in cases.items():
        assert lazy(expression) == value, expression
    c.set_current(2)  # expressions are re-evaluated at the current value
    assert lazy(c * 3) == 6 and lazy(15 // c) == 7


def test_comparison_expressions():
    c = IntScalarParameter(1, 10, name="c")
    c.set_current(7)
    assert lazy(c < 7) is False and lazy(c < 8) is True
    assert lazy(c <= 7) is True and lazy(c <= 6) is False
    assert lazy(c > 6) is True and lazy(c > 7) is False
    assert lazy(c >= 7) is True and lazy(c >= 8) is False
    assert lazy(c.eq(7)) is True and lazy(c.eq(6)) is False
    assert lazy(c.ne(7)) is False and lazy(c.ne(6)) is True
    # `==` keeps identity semantics so parameters stay hashable
    assert (c == 7) is False and c == c and c in {c}
    with pytest.raises(TypeError, match="lazy"):
        bool(c < 3)


def test_floor_ceil_and_bounds():
    c = IntScalarParameter(1, 10, name="c")
    c.set_current(7)
    assert lazy(Floor(c / 2)) == 3 and lazy(Ceil(c / 2)) == 4
    assert lazy(Floor((0 - c) / 2)) == -4 and lazy(Ceil((0 - c) / 2)) == -3
    assert isinstance(lazy(Floor(c / 2)), int)
    assert (c + 1).bounds() == (2, 11)
    assert (c * 3).bounds() == (3, 30)
    assert (10 - c).bounds() == (0, 9)
    assert (c // 2).bounds() == (0, 5)
    assert Ceil(c / 2).bounds() == (1, 5)
    assert int(c * 2) == 14 and [0, 1, 2, 3][c // 3] == 2  # __int__ / __index__


def test_lazy_on_scalars_tuples_and_lists():
    c = IntScalarParameter(1, 10, name="c")
    c.set_current(4)
    assert lazy(5) == 5 and lazy(2.5) == 2.5 and lazy("same") == "same" and lazy(None) is None
    assert lazy(c) == 4
    assert lazy((1, c, c * 2)) == (1, 4, 8)
    assert lazy([c, (c + 1, 2)]) == [4, (5, 2)]


# --- parametrizations -----------------------------------------------------------------------------


def make_small_space():
    @search_space
    def small():
        x = Tensor("x", (1, 3, 8, 8), ("N", "C", "H", "W"))
        net = conv2d(x, IntScalarParameter(2, 8, name="c"), CategoricalParameter([1, 3], name="k"))
        return Relu()(net)

    return small()


def test_set_parametrization_unknown_key_changes_nothing():
    net = make_small_space()
    before = {k: p.current_value for k, p in net.parametrization().items()}
    with pytest.raises(KeyError, match="small_0.Conv2d_0.weight.nope"):
        net.set_parametrization({"small_0.Conv2d_0.weight.c": 5, "small_0.Conv2d_0.weight.nope": 1})
    assert {k: p.current_value for k, p in net.parametrization().items()} == before


def test_set_parametrization_out_of_domain_changes_nothing():
    net = make_small_space()
    before = {k: p.current_value for k, p in net.parametrization().items()}
    with pytest.raises(ValueError, match=r"small_0\.Conv2d_0\.weight\.k"):
        net.set_parametrization({"small_0.Conv2d_0.weight.c": 5, "small_0.Conv2d_0.weight.k": 2})
    assert {k: p.current_value for k, p in net.parametrization().items()} == before
    net.set_parametrization({"small_0.Conv2d_0.weight.c": 5, "small_0.Conv2d_0.weight.k": 3})
    assert lazy(net.shape()) == (1, 5, 8, 8)


def test_set_parametrization_accepts_parameters_as_values():
    net = make_small_space()
    other = IntScalarParameter(2, 8)
    other.set_current(6)
    net.set_parametrization({"small_0.Conv2d_0.weight.c": other})
    assert lazy(net.shape()) == (1, 6, 8, 8)


def test_duplicate_parameter_names_on_one_node_raise():
    x = Tensor("x", (IntScalarParameter(1, 4, name="n"), IntScalarParameter(1, 4, name="n")), ("N", "C"))
    with pytest.raises(ValueError, match="duplicate parameter id x.n"):
        Relu()(x)


# --- choices --------------------------------------------------------------------------------------


@scope
def conv_block(x, out_channels, kernel_size, stride):
    return Relu()(conv2d(x, out_channels, kernel_size, stride=stride))


def make_choice_last_space():
    @search_space
    def space():
        x = Tensor("x", (1, 3, 16, 16), ("N", "C", "H", "W"))
        options = [
            Identity(),
            partial(conv_block, out_channels=IntScalarParameter(4, 8, name="c"), kernel_size=3, stride=2),
            MaxPooling(kernel_size=2),
        ]
        return ChoiceOp(*options, same_shape=False)(x)  # one-path execution: the output shape follows the switch

    return space()


def test_choice_op_as_last_node_returns_the_chosen_output():
    net = make_choice_last_space()
    assert isinstance(net, ChoiceOp) and net.id == "space_0.ChoiceOp_0"
    torch.manual_seed(0)
    model = BasicExecutor(net)
    x = torch.randn(2, 3, 16, 16)
    c = net.parametrization()["space_0.conv_block_0.Conv2d_0.weight.c"]
    c.set_current(6)
    expected = {0: (1, 3, 16, 16), 1: (1, 6, 8, 8), 2: (1, 3, 8, 8)}
    for choice, shape in expected.items():
        net.set_parametrization({"space_0.ChoiceOp_0.choice": choice})
        assert net.active_index() == choice
        assert lazy(net.shape()) == shape
        out = model(x)
        assert tuple(out.shape) == (2, *shape[1:])
    net.set_parametrization({"space_0.ChoiceOp_0.choice": 0})
    assert torch.equal(model(x), x)
    net.set_parametrization({"space_0.ChoiceOp_0.choice": 2})
    assert torch.equal(model(x), torch.nn.functional.max_pool2d(x, 2))


def test_choice_op_with_categorical_switch_and_names():
    x = Tensor("x", (1, 4), ("N", "C"))
    switch = CategoricalParameter([1, 0], name="pick")
    net = ChoiceOp(Identity(), Relu(), switch=switch, names=["id", "relu"])(x)
    assert net.option_names() == ["id", "relu"]
    assert set(net.parametrization()) == {"ChoiceOp_0.pick"}
    model = BasicExecutor(net)
    v = torch.randn(3, 4)
    assert torch.equal(model(v), torch.relu(v))  # choice 1 is the current (first) value
    switch.set_current(0)
    assert torch.equal(model(v), v)


def test_choice_op_switch_must_index_its_options():
    with pytest.raises(ValueError, match="index none"):
        ChoiceOp(Identity(), Relu(), switch=IntScalarParameter(0, 2, name="s"))
    with pytest.raises(TypeError):
        ChoiceOp(Identity(), switch=FloatScalarParameter(0, 1))
    with pytest.raises(ValueError, match="names"):
        ChoiceOp(Identity(), Relu(), names=["a"])


def test_input_created_inside_the_search_space_runs():
    @search_space
    def space():
        x = Tensor("input", (1, 3, 8, 8), ("N", "C", "H", "W"))
        return Relu()(conv2d(x, 4, 3))

    net = space()
    model = BasicExecutor(net)
    assert [t.id for t in model.input_nodes] == ["space_0.input"]
    v = torch.randn(5, 3, 8, 8)
    assert tuple(model(v).shape) == (5, 4, 8, 8)
    # inputs can be given by name or by id as well
    assert torch.equal(model(input=v), model(v))
    assert torch.equal(model(**{"space_0.input": v}), model(v))


# --- custom ops -----------------------------------------------------------------------------------


class My_Op(Op):
    """Doubles the input and repeats it `times` along the last axis."""

    def __init__(self, times=1):
        super().__init__(times=times)

    def _forward_implementation(self, x):
        return torch.cat([2 * x] * lazy(self.times), dim=-1)

    def shape_fun(self):
        shape = self.operands[0].shape()
        return (*shape[:-1], shape[-1] * self.times)


def test_custom_op_used_twice_gets_unique_ids_and_runs():
    x = Tensor("x", (1, 4), ("N", "C"))
    times = IntScalarParameter(1, 3, name="times")
    net = My_Op()(My_Op(times=times)(x))
    assert net.id == "My_Op_1" and net.operands[0].id == "My_Op_0"
    assert set(net.parametrization()) == {"My_Op_0.times"}
    model = BasicExecutor(net)
    v = torch.randn(2, 4)
    for t in (1, 3):
        times.set_current(t)
        out = model(v)
        assert list(out.shape) == [2, lazy(net.shape())[1]] == [2, 4 * t]
        assert torch.equal(out, torch.cat([4 * v] * t, dim=-1))

    @search_space
    def space(x):  # inside a space, parallel uses are counted too
        a, b = My_Op()(x), My_Op()(x)
        return Add()(a, b)

    y = Tensor("y", (1, 4), ("N", "C"))
    out = space(y)
    assert [o.id for o in out.operands] == ["space_0.My_Op_0", "space_0.My_Op_1"]
    assert torch.equal(BasicExecutor(out)(v), 4 * v)


def test_op_attributes_may_not_shadow_op_members():
    with pytest.raises(ValueError, match="reserved"):
        Op(shape=3)
    op = Relu()(Tensor("x", (1, 2), ("N", "C")))
    with pytest.raises(RuntimeError, match="already part of a graph"):
        op(Tensor("y", (1, 2), ("N", "C")))


# --- weights --------------------------------------------------------------------------------------


def test_weights_are_trainable_unless_grad_false():
    @search_space
    def space():
        x = Tensor("x", (1, 4), ("N", "C"))
        w = Tensor("weight", (3, 4), ("O", "I"))
        frozen = Tensor("bias", (3,), ("O",), grad=False, init="ones")
        return Linear()(x, w, frozen)

    net = space()
    model = BasicExecutor(net)
    assert dict(model.named_parameters()).keys() == {"space_0.Linear_0.weight"}
    assert dict(model.named_buffers()).keys() == {"space_0.Linear_0.bias"}
    assert model.get_parameter("space_0.Linear_0.weight").requires_grad
    assert torch.equal(model.get_buffer("space_0.Linear_0.bias"), torch.ones(3))
    assert set(model.state_dict()) == {"space_0.Linear_0.weight", "space_0.Linear_0.bias"}
    assert net.operands[2].trainable is False and net.operands[1].trainable is True


def test_state_dict_keys_are_the_weight_tensor_ids():
    net = make_weight_sharing_space()
    model = BasicExecutor(net)
    weight_ids = {n.id for n in get_nodes(net) if isinstance(n, Tensor) and n.role == "weight"}
    assert set(model.state_dict()) == weight_ids
    assert "space_0.BatchNorm_0.running_mean" in weight_ids
    assert "space_0.conv_block_0.Conv2d_0.weight" in weight_ids


def make_weight_sharing_space():
    @search_space
    def space():
        x = Tensor("x", (1, 3, 12, 12), ("N", "C", "H", "W"))
        c0 = IntScalarParameter(4, 12, step_size=4, name="c")
        k0 = CategoricalParameter([1, 3, 5], name="k")
        net = conv2d(x, c0, k0, bias=True)
        net = BatchNorm()(net)
        net = Relu()(net)
        net = ChoiceOp(
            Identity(),
            partial(conv_block, out_channels=c0, kernel_size=CategoricalParameter([3, 5], name="k"), stride=1),
        )(net)
        net = conv2d(net, 6, CategoricalParameter([1, 3], name="k"))
        return net

    return space()


def test_weight_sharing_round_trip_is_bit_identical():
    torch.manual_seed(0)
    net = make_weight_sharing_space()
    params = net.parametrization()
    model = BasicExecutor(net).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, 12, 12)
    net.set_parametrization({"space_0.Conv2d_0.weight.c": 8, "space_0.ChoiceOp_0.choice": 1})
    reference = model(x)
    for change in (
        {"space_0.Conv2d_0.weight.c": 12},
        {"space_0.Conv2d_0.weight.k": 5},
        {"space_0.ChoiceOp_0.choice": 0},
        {"space_0.conv_block_0.Conv2d_0.weight.k": 5},
        {"space_0.Conv2d_1.weight.k": 3},
    ):
        saved = {k: params[k].current_value for k in change}
        net.set_parametrization(change)
        changed = model(x)
        assert changed.shape != reference.shape or not torch.equal(changed, reference), change
        net.set_parametrization(saved)
        assert torch.equal(model(x), reference), change
    # nothing was re-allocated or re-initialised along the way
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        assert torch.equal(after[key], before[key]), key


def test_initialize_again_keeps_trained_weights():
    torch.manual_seed(0)
    net = make_weight_sharing_space()
    model = BasicExecutor(net)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    net.sample(seed=3)
    model.initialize()
    for key, value in model.state_dict().items():
        assert torch.equal(value, trained[key]), key


def test_weights_are_allocated_at_their_largest_shape():
    net = make_weight_sharing_space()
    model = BasicExecutor(net)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["space_0.Conv2d_0.weight"] == (12, 3, 5, 5)
    assert shapes["space_0.conv_block_0.Conv2d_0.weight"] == (12, 12, 5, 5)
    assert shapes["space_0.Conv2d_1.weight"] == (6, 12, 3, 3)
    assert shapes["space_0.BatchNorm_0.running_var"] == (12,)


def test_executor_seed_fixes_the_initial_weights():
    a = BasicExecutor(make_weight_sharing_space(), seed=11).state_dict()
    b = BasicExecutor(make_weight_sharing_space(), seed=11).state_dict()
    c = BasicExecutor(make_weight_sharing_space(), seed=12).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["space_0.Conv2d_0.weight"], c["space_0.Conv2d_0.weight"])


def test_kernel_slicing_is_centred():
    @search_space
    def space():
        x = Tensor("x", (1, 2, 9, 9), ("N", "C", "H", "W"))
        return conv2d(x, IntScalarParameter(1, 4, name="c"), CategoricalParameter([1, 3, 5], name="k"))

    net = space()
    torch.manual_seed(0)
    model = BasicExecutor(net)
    full = model.get_parameter("space_0.Conv2d_0.weight")
    assert tuple(full.shape) == (4, 2, 5, 5)
    weight_node = net.operands[1]
    x = torch.randn(3, 2, 9, 9)
    for k, c in ((1, 2), (3, 4), (5, 3)):
        net.set_parametrization({"space_0.Conv2d_0.weight.k": k, "space_0.Conv2d_0.weight.c": c})
        start = (5 - k) // 2
        expected = full[:c, :, start : start + k, start : start + k]
        current = model.weight(weight_node)
        assert torch.equal(current, expected)
        assert current.data_ptr() == expected.data_ptr()  # a view of the shared storage
        assert torch.allclose(model(x), torch.nn.functional.conv2d(x, expected, padding=k // 2))

    @search_space
    def space1d():
        x = Tensor("x", (1, 2, 9), ("N", "C", "L"))
        return conv1d(x, 3, CategoricalParameter([3, 7], name="k"))

    net1 = space1d()
    model1 = BasicExecutor(net1)
    full1 = model1.get_parameter("space1d_0.Conv1d_0.weight")
    net1.set_parametrization({"space1d_0.Conv1d_0.weight.k": 3})
    assert torch.equal(model1.weight(net1.operands[1]), full1[:, :, 2:5])


# --- train / eval ---------------------------------------------------------------------------------


def test_dropout_is_identity_in_eval_and_active_in_train():
    x = Tensor("x", (1, 1000), ("N", "C"))
    net = Dropout(p=FloatScalarParameter(0.0, 0.9, name="p"))(x)
    net.set_parametrization({"Dropout_0.p": 0.5})
    model = BasicExecutor(net)
    v = torch.rand(4, 1000) + 1.0
    model.eval()
    assert torch.equal(model(v), v)
    model.train()
    torch.manual_seed(0)
    out = model(v)
    zeros = (out == 0).float().mean().item()
    assert 0.4 < zeros < 0.6
    kept = out != 0
    assert torch.allclose(out[kept], 2 * v[kept])
    net.set_parametrization({"Dropout_0.p": 0.0})
    assert torch.equal(model(v), v)


def test_batchnorm_train_uses_batch_stats_and_updates_running_stats():
    @search_space
    def space():
        x = Tensor("x", (1, 3, 4, 4), ("N", "C", "H", "W"))
        return BatchNorm(momentum=0.5)(x)

    net = space()
    model = BasicExecutor(net)
    torch.manual_seed(0)
    v = torch.randn(8, 3, 4, 4) * 3 + 2
    mean_key, var_key = "space_0.BatchNorm_0.running_mean", "space_0.BatchNorm_0.running_var"
    assert torch.equal(model.get_buffer(mean_key), torch.zeros(3))
    assert torch.equal(model.get_buffer(var_key), torch.ones(3))

    model.train()
    out = model(v)
    batch_mean = v.mean(dim=(0, 2, 3))
    batch_var = v.var(dim=(0, 2, 3), unbiased=False)
    expected = (v - batch_mean[None, :, None, None]) / torch.sqrt(batch_var[None, :, None, None] + 1e-5)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(model.get_buffer(mean_key), 0.5 * batch_mean, atol=1e-6)
    assert torch.allclose(model.get_buffer(var_key), 0.5 + 0.5 * v.var(dim=(0, 2, 3), unbiased=True), atol=1e-5)

    model.eval()
    mean, var = model.get_buffer(mean_key).clone(), model.get_buffer(var_key).clone()
    out = model(v)
    expected = (v - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + 1e-5)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.equal(model.get_buffer(mean_key), mean)  # eval leaves the statistics alone


def test_batchnorm_running_stats_of_a_sliced_channel_count():
    @search_space
    def space():
        x = Tensor("x", (1, 3, 4, 4), ("N", "C", "H", "W"))
        return BatchNorm()(conv2d(x, IntScalarParameter(2, 6, name="c"), 1))

    net = space()
    model = BasicExecutor(net).train()
    net.set_parametrization({"space_0.Conv2d_0.weight.c": 4})
    model(torch.randn(4, 3, 4, 4) + 5)
    mean = model.get_buffer("space_0.BatchNorm_0.running_mean")
    assert (mean[:4] != 0).all() and (mean[4:] == 0).all()  # only the active slice moved


# --- errors name the culprit ----------------------------------------------------------------------


def test_operand_that_is_not_a_node():
    with pytest.raises(TypeError, match="Relu: operand 0 is Tensor"):
        Relu()(torch.zeros(3))
    x = Tensor("x", (1, 3), ("N", "C"))
    with pytest.raises(TypeError, match="operand 1 is int"):
        Add()(x, 3)


def test_empty_choice_op():
    with pytest.raises(ValueError, match="ChoiceOp needs at least one option"):
        ChoiceOp()


def test_choice_options_must_be_uncalled():
    x = Tensor("x", (1, 3), ("N", "C"))
    used = Relu()(x)
    with pytest.raises(TypeError, match="already a graph node"):
        ChoiceOp(used, Identity())(x)


def test_mismatched_conv_channels():
    @search_space
    def space():
        x = Tensor("x", (1, 3, 8, 8), ("N", "C", "H", "W"))
        w = Tensor("weight", (4, 5, 3, 3), ("O", "I", "kH", "kW"))
        return Conv2d()(x, w)

    with pytest.raises(ValueError, match=r"space_0\.Conv2d_0: input has 3 channels"):
        space()


def test_mismatched_linear_features():
    x = Tensor("x", (1, 7), ("N", "C"))
    with pytest.raises(ValueError, match="Linear_0: input has 7 features"):
        Linear()(x, Tensor("weight", (3, 5), ("O", "I")))


def test_wrong_input_shape_names_the_input():
    @search_space
    def space():
        x = Tensor("image", (1, 3, 8, 8), ("N", "C", "H", "W"))
        return conv2d(x, 4, 3)

    model = BasicExecutor(space())
    with pytest.raises(ValueError, match=r"space_0\.image.*'C'"):
        model(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"space_0\.image.*4 dims"):
        model(torch.zeros(1, 3, 8))
    with pytest.raises(TypeError, match=r"space_0\.image"):
        model(np.zeros((1, 3, 8, 8)))
    with pytest.raises(TypeError, match="expected 1 input"):
        model()
    assert tuple(model(torch.zeros(9, 3, 8, 8)).shape) == (9, 4, 8, 8)  # the batch axis is free


def test_duplicate_node_ids_are_refused():
    a = Tensor("a", (1, 4), ("N", "C"))
    b = Tensor("a", (1, 4), ("N", "C"))
    net = Add()(a, b)
    with pytest.raises(ValueError, match="duplicate node id 'a'"):
        BasicExecutor(net)


def test_executor_needs_a_node():
    with pytest.raises(TypeError, match="output node"):
        BasicExecutor(torch.zeros(3))


def test_colliding_top_level_ids_are_reported_not_merged():
    # outside any scope ids count only the nodes upstream of the operands, so parallel branches
    # collide; the parametrization must refuse them instead of silently dropping a parameter
    x = Tensor("x", (1, 3, 8, 8), ("N", "C", "H", "W"))
    a = conv2d(x, IntScalarParameter(2, 4, name="c"), 3)
    b = conv2d(x, IntScalarParameter(2, 6, name="c"), 3)
    assert a.id == b.id == "Conv2d_0"
    net = Add()(a, b)
    with pytest.raises(ValueError, match="duplicate parameter id 'Conv2d_0.weight.c'"):
        net.parametrization()
    with pytest.raises(ValueError, match="duplicate node id 'Conv2d_0"):
        BasicExecutor(net)


def test_dynamic_depth_may_skip_every_block():
    @search_space
    def space(x):
        exits = [x]
        for _ in range(2):
            exits.append(Relu()(conv2d(exits[-1], 4, 3)))
        return ChoiceOp(*exits, switch=IntScalarParameter(0, 2, name="depth"))()

    x = Tensor("x", (1, 4, 6, 6), ("N", "C", "H", "W"))
    net = space(x)
    model = BasicExecutor(net)
    v = torch.randn(2, 4, 6, 6)
    net.set_parametrization({"space_0.ChoiceOp_0.depth": 0})
    assert torch.equal(model(v), v)
    assert [n.id for n in model.active_nodes()] == ["x", "space_0.ChoiceOp_0"]
    for depth in (1, 2):
        net.set_parametrization({"space_0.ChoiceOp_0.depth": depth})
        assert tuple(model(v).shape) == (2, 4, 6, 6)
        assert sum(isinstance(n, Conv2d) for n in model.active_nodes()) == depth


def test_op_attributes_may_be_parameters():
    momentum = FloatScalarParameter(0.0, 1.0, name="momentum")

    @search_space
    def space():
        x = Tensor("x", (1, 3, 5), ("N", "C", "L"))
        return BatchNorm(momentum=momentum)(x)

    net = space()
    assert "space_0.BatchNorm_0.momentum" in net.parametrization()
    model = BasicExecutor(net).train()
    for value in (0.0, 1.0):
        net.set_parametrization({"space_0.BatchNorm_0.momentum": value})
        v = torch.randn(4, 3, 5) + 3
        model(v)
        mean = model.get_buffer("space_0.BatchNorm_0.running_mean")
        if value == 1.0:
            assert torch.allclose(mean, v.mean(dim=(0, 2)), atol=1e-6)
        else:
            assert torch.equal(mean, torch.zeros(3))


def test_rejected_op_leaves_no_trace_in_the_graph():
    from ops import Conv2d

    x = Tensor("x", (1, 3, 8, 8), ("N", "C", "H", "W"))
    w = Tensor("weight", (4, 5, 3, 3), ("O", "I", "kH", "kW"))
    with pytest.raises(ValueError, match="Conv2d_0: input has 3 channels"):
        Conv2d()(x, w)
    assert x.users == [] and w.users == [] and w.role is None and w.id == "weight"


def test_unary_minus_builds_an_expression():
    c = IntScalarParameter(2, 6, name="c")
    c.set_current(4)
    assert lazy(-c) == -4 and lazy(10 + -c) == 6
