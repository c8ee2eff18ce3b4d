"""Fuzzing: random search spaces, built by hypothesis, through the whole pipeline.

Spaces are chains of blocks in 1-D or 2-D: plain conv blocks, ChoiceOps and DARTS-like cells (nodes
summing ChoiceOp edges of two earlier states), with random kernel-size, stride and channel
parameters and random option sets (convs, conv blocks with BatchNorm/ReLU, max/avg pooling, zero,
identity), ending in an adaptive pooling and a linear classifier. Options of a ChoiceOp share their
stride and channel parameters, so the supernet can mix them at any parametrization. Properties:

- for random samples of every parameter, the runtime output shape equals the symbolic shape;
- the supernet builds, its output has the symbolic shape, one architecture and one weight step run
  and leave every value finite;
- the argmax architecture exports, with the supernet's weights, and runs with its symbolic shape;
- the result survives save/load: equal fields, equal weights, and the same outputs;
- fit_supernet searches the space, and an interrupted search resumes to a bit-identical result.

The counts of spaces and samples tried are printed at the end of the module (`pytest -s`).
"""

import tempfile
from functools import partial

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops import (
    AdaptiveAvgPooling,
    Add,
    AvgPooling,
    BatchNorm,
    Flatten,
    Identity,
    MaxPooling,
    Relu,
    Zero,
    conv1d,
    conv2d,
    linear,
)
from search import BilevelConfig, BilevelOptimizer, SearchResult, fit_supernet
from supernet import (
    BasicExecutor,
    CategoricalParameter,
    ChoiceOp,
    IntScalarParameter,
    SupernetExecutor,
    Tensor,
    lazy,
    scope,
    search_space,
)
from supernet.choice import ChoiceOp as ChoiceOpType
from supernet.graph import get_nodes

COUNTS = {"shape spaces": 0, "shape samples": 0, "pipeline spaces": 0, "pipeline samples": 0, "resume spaces": 0}
FUZZ = settings(
    deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


# --- random spaces --------------------------------------------------------------------------------
def kernel_sizes(draw):
    return CategoricalParameter(
        sorted(draw(st.lists(st.sampled_from([1, 3, 5]), min_size=1, max_size=3, unique=True))), name="kernel_size"
    )


def strides(draw):
    return CategoricalParameter(draw(st.sampled_from([[1], [2], [1, 2]])), name="stride")


def widths(draw):
    low = draw(st.integers(1, 4))
    return IntScalarParameter(low, low + draw(st.integers(0, 4)), step_size=draw(st.integers(1, 2)), name="channels")


@scope
def conv_block(x, dims, out_channels, kernel_size, stride, norm, relu):
    net = (conv1d if dims == 1 else conv2d)(x, out_channels, kernel_size, stride=stride)
    if norm:
        net = BatchNorm()(net)
    return Relu()(net) if relu else net


def shape_keeping_option(kind, x, dims, stride, draw):
    """An option that keeps the channels and divides the spatial size by `stride`."""
    if kind == "max":
        return MaxPooling(3, stride, 1)
    if kind == "avg":
        return AvgPooling(3, stride, 1)
    if kind == "zero":
        return Zero(stride)
    if kind == "identity":
        return Identity()
    return partial(
        conv_block,
        dims=dims,
        out_channels=x.shape()[1],
        kernel_size=kernel_sizes(draw),
        stride=stride,
        norm=draw(st.booleans()),
        relu=draw(st.booleans()),
    )


@scope
def choice(x, dims, draw):
    stride = strides(draw)
    if draw(st.booleans()):  # convs to a shared, searchable width
        out = widths(draw)
        options = [
            partial(
                conv_block,
                dims=dims,
                out_channels=out,
                kernel_size=kernel_sizes(draw),
                stride=stride,
                norm=draw(st.booleans()),
                relu=draw(st.booleans()),
            )
            for _ in range(draw(st.integers(1, 3)))
        ]
    else:
        kinds = ["max", "avg", "zero", "conv"] + (["identity"] if stride.choices == [1] else [])
        picked = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4, unique=True))
        options = [shape_keeping_option(kind, x, dims, stride, draw) for kind in picked]
    return ChoiceOp(*options)(x)


@scope
def edge(x, dims, draw):
    picked = draw(
        st.lists(st.sampled_from(["max", "avg", "zero", "identity", "conv"]), min_size=1, max_size=4, unique=True)
    )
    return ChoiceOp(*[shape_keeping_option(kind, x, dims, 1, draw) for kind in picked])(x)


@scope
def cell(x, dims, draw):
    states = [x]
    for _ in range(draw(st.integers(1, 3))):
        edges = [edge(state, dims, draw) for state in states[-2:]]
        states.append(Add()(*edges) if len(edges) > 1 else edges[0])
    return states[-1]


@scope
def plain_conv(x, dims, draw):
    return conv_block(
        x, dims, widths(draw), kernel_sizes(draw), strides(draw), norm=draw(st.booleans()), relu=draw(st.booleans())
    )


BLOCKS = {"conv": plain_conv, "choice": choice, "cell": cell}


def random_space(draw):
    """(output node, input shape without the batch axis) of a random space."""
    dims = draw(st.sampled_from([1, 2]))
    size = draw(st.integers(4, 24)) if dims == 1 else draw(st.integers(3, 10))
    channels = draw(st.integers(1, 4))
    kinds = draw(st.lists(st.sampled_from(list(BLOCKS)), min_size=1, max_size=4))
    kinds[draw(st.integers(0, len(kinds) - 1))] = draw(st.sampled_from(["choice", "cell"]))  # something to search
    head = (draw(st.sampled_from([1, 2])), draw(st.integers(2, 5)))
    shape = (channels, *[size] * dims)

    @search_space
    def space():
        net = Tensor("x", (1, *shape), ("N", "C", *(("L",) if dims == 1 else ("H", "W"))))
        for kind in kinds:
            net = BLOCKS[kind](net, dims, draw)
        net = AdaptiveAvgPooling(head[0])(net)
        return linear(Flatten()(net), head[1])

    return space(), shape


def every_node_has_its_symbolic_shape(model, shape, seed, batch=2, train=True):
    """Run a BasicExecutor node by node (as its forward does), checking each op's output shape."""
    model.train(train)
    values = {model.input_nodes[0]: torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))}
    for node in model.active_nodes():
        if isinstance(node, Tensor):
            if node.role == "weight":
                values[node] = model.weight(node)
            continue
        if isinstance(node, ChoiceOpType):
            values[node] = values[node.operands[node.active_index()]]
        else:
            values[node] = node.compute(*(values[o] for o in node.operands), training=train)
        expected = [batch, *lazy(node.shape())[1:]]
        assert list(values[node].shape) == expected, (
            f"{node.id}: runtime {tuple(values[node].shape)}, symbolic {tuple(expected)}"
        )
    return values[model.output_node]


def runs_with_symbolic_shape(model, net, shape, seed, batch=2, train=True):
    model.train(train)
    x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))
    out = model(x)
    assert list(out.shape) == [batch, *lazy(net.shape())[1:]]
    assert torch.isfinite(out).all()
    return x, out


# --- properties -----------------------------------------------------------------------------------
@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_sampled_architectures_run_with_their_symbolic_shape(data):
    net, shape = random_space(data.draw)
    model = BasicExecutor(net, seed=0)
    seeds = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=6, unique=True))
    for seed in seeds:
        values = net.sample(seed=seed)
        try:
            out = every_node_has_its_symbolic_shape(model, shape, seed, train=seed % 2 == 0)
            assert torch.isfinite(out).all()
            assert torch.equal(
                runs_with_symbolic_shape(model, net, shape, seed, train=False)[1],
                every_node_has_its_symbolic_shape(model, shape, seed, train=False),
            )
        except AssertionError as err:
            raise AssertionError(f"sample {values}") from err
    COUNTS["shape spaces"] += 1
    COUNTS["shape samples"] += len(seeds)


# a random space's argmax may run every path through a Zero op: exporting it says so, expectedly
@pytest.mark.filterwarnings("ignore:this architecture leaves the network without a path:RuntimeWarning")
@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_supernet_steps_and_argmax_export_and_save_load_round_trip(data):
    net, shape = random_space(data.draw)
    seeds = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=2, unique=True))
    for seed in seeds:
        net.sample(seed=seed)  # the supernet mixes the switches; the other parameters stay as sampled
        supernet = SupernetExecutor(net, seed=seed % 1000)
        assert supernet.arch_parameters()
        runs_with_symbolic_shape(supernet, net, shape, seed)
        classes = lazy(net.shape())[-1]
        bilevel = BilevelOptimizer(
            supernet, torch.nn.functional.cross_entropy, BilevelConfig(arch_lr=0.1), total_epochs=1
        )
        g = torch.Generator().manual_seed(seed)
        batches = [
            (torch.randn(4, *shape, generator=g), torch.randint(0, classes, (4,), generator=g)) for _ in range(2)
        ]
        arch_loss, _ = bilevel.architecture_step(*batches[0])
        weight_loss, _ = bilevel.weight_step(*batches[1])
        assert torch.isfinite(arch_loss) and torch.isfinite(weight_loss)
        assert all(torch.isfinite(v).all() for v in supernet.state_dict().values())

        result = SearchResult(
            architecture=supernet.architecture(),
            probabilities=supernet.probabilities(),
            history={},
            metrics=[],
            option_names=supernet.option_names(),
            config={"seed": seed},
            supernet_state={k: v.detach().clone() for k, v in supernet.state_dict().items()},
            space=net,
        )
        exported = result.export(inherit_weights=True)
        fixed = result.discretized()
        assert not any(isinstance(n, ChoiceOpType) for n in get_nodes(fixed))
        x, out = runs_with_symbolic_shape(exported, fixed, shape, seed, train=False)

        with tempfile.TemporaryDirectory() as directory:
            result.save(directory)
            loaded = SearchResult.load(directory, space=net)
        assert loaded == result
        assert torch.equal(loaded.export(inherit_weights=True).eval()(x), out)
    COUNTS["pipeline spaces"] += 1
    COUNTS["pipeline samples"] += len(seeds)


class Interrupted(Exception):
    pass


# so may a search's selection in a random space: it then repairs it to a connected one, or, where every
# option of a choice is data-independent (no connected architecture), keeps it; both say so
@pytest.mark.filterwarnings("ignore:the .* selection leaves the network without a path:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:no architecture of the space .* connects its output:RuntimeWarning")
@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_fit_supernet_searches_and_resumes_bit_identically(data):
    net, shape = random_space(data.draw)
    classes = lazy(net.shape())[-1]
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    train = (torch.randn(32, *shape, generator=g), torch.randint(0, classes, (32,), generator=g))
    search = partial(fit_supernet, net, train, epochs=2, batch_size=8, seed=1, progress=False, on_undecided="ignore")

    def interrupt(state):
        if state["epoch"] == 1:
            raise Interrupted

    with tempfile.TemporaryDirectory() as directory:
        uninterrupted = search()
        with pytest.raises(Interrupted):
            search(checkpoint_dir=directory, callbacks=[interrupt])
        resumed = search(checkpoint_dir=directory, resume=True)
    assert resumed == uninterrupted
    assert all(torch.isfinite(v).all() for v in resumed.supernet_state.values())
    COUNTS["resume spaces"] += 1


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print(
        f"\nfuzzing: {COUNTS['shape spaces']} spaces x {COUNTS['shape samples']} samples (shapes); "
        f"{COUNTS['pipeline spaces']} spaces x {COUNTS['pipeline samples']} samples (supernet, export, save/load); "
        f"{COUNTS['resume spaces']} spaces searched, interrupted and resumed"
    )
