"""HANNAH's embedded_vision_net (EVN), written in this language from its published structure.

stem (Conv-BN-ReLU) -> blocks -> dynamic depth over the blocks' outputs (`num_blocks`) ->
classifier head (global average pool, Linear). A block is a dynamic-depth chain of up to
`depth.max + 1` patterns (only the first strided) and a residual choice: the chain's output, or
its sum with a 1x1 projection of the block input (stride ceil(in / out)). A pattern is a
ChoiceOp over five options sharing its stride, width and kernel size:

0. conv-relu;
1. expand-reduce: pointwise expansion (x expand_ratio), depthwise conv, pointwise reduction;
2. reduce-expand: pointwise reduction (/ reduce_ratio), conv, pointwise expansion;
3. pooling: average or max pooling (`pool_mode`), keeping the input's channels;
4. sandglass: depthwise, pointwise reduction, pointwise expansion, depthwise (strided).

Every pattern option but pooling ends at the pattern's width, pooling at its input's, and the
blocks' widths are independent: options differ in shape, so this is a one-path space (BasicExecutor,
`sample()`, random search, evolution), as in HANNAH. For a mixing (differentiable) search,
`fix_for_mixing(space)` fixes every width to one value and every stride to 1, so that all the
options of every ChoiceOp share a shape (and the reduce ratios, which shrink weights); the
switches, kernel sizes and expand ratios stay searched.

Constraint: the final feature map is larger than 1 (`cond` on the output; `allowed_params` the
strides, as in HANNAH), and `constraints=[{"name": "macs" | "weights", "upper": .., "lower": ..}]`
bound the architecture's multiply-accumulates or trainable weight count.

Parameter ids equal HANNAH's: `embedded_vision_net_0.ChoiceOp_0.num_blocks`,
`...block_<b>.ChoiceOp_0.depth`, `...block_<b>.ChoiceOp_1.residual_choice`,
`...block_<b>.pattern_<p>.ChoiceOp_0.choice`, `...pattern_<p>.Conv2d_0.stride` (first pattern),
`...pattern_<p>.Conv2d_0.weight.kernel_size` / `.out_channels`,
`...pattern_<p>.expand_reduce_0.expansion_0.Conv2d_0.weight.expand_ratio`,
`...pattern_<p>.pooling_0.ChoiceOp_0.pool_mode`,
`...pattern_<p>.reduce_expand_0.reduction_0.Conv2d_0.weight.reduce_ratio`, and
`...stem_0.Conv2d_0.stride` / `.weight.kernel_size` / `.weight.out_channels`.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

from ops import AdaptiveAvgPooling, Add, AvgPooling, BatchNorm, Conv2d, Flatten, MaxPooling, Relu, linear
from supernet import (
    CategoricalParameter,
    ChoiceOp,
    Ceil,
    Int,
    IntScalarParameter,
    Node,
    Op,
    Parameter,
    Tensor,
    scope,
    search_space,
)
from supernet.cost_expression import CostExpression


def conv2d(x: Node, out_channels: Any, kernel_size: Any = 1, stride: Any = 1) -> Op:
    """A Conv2d with a new (out_channels, in_channels, k, k) weight, "same" padding."""
    weight = Tensor("weight", (out_channels, x.shape()[1], kernel_size, kernel_size), ("O", "I", "kH", "kW"))
    return Conv2d(stride=stride)(x, weight)


def depthwise_conv2d(x: Node, kernel_size: Any, stride: Any = 1) -> Op:
    """One k x k filter per channel (groups = channels; the weight is (C, 1, k, k))."""
    channels = x.shape()[1]
    weight = Tensor("weight", (channels, 1, kernel_size, kernel_size), ("O", "I", "kH", "kW"))
    return Conv2d(stride=stride, groups=channels)(x, weight)


@scope
def batch_norm(x: Node) -> Op:
    return BatchNorm()(x)


def conv_relu(x: Node, out_channels: Any, kernel_size: Any, stride: Any) -> Op:
    return Relu()(conv2d(x, out_channels, kernel_size, stride))


def bn_relu(x: Node) -> Op:
    return Relu()(batch_norm(x))


@scope
def expansion(x: Node, expanded_channels: Any) -> Op:
    return conv2d(x, expanded_channels)


@scope
def reduction(x: Node, out_channels: Any) -> Op:
    return conv2d(x, out_channels)


@scope
def spatial_correlation(x: Node, kernel_size: Any, stride: Any) -> Op:
    return depthwise_conv2d(x, kernel_size, stride)


@scope
def expand_reduce(x: Node, out_channels: Any, expand_ratio: Any, kernel_size: Any, stride: Any) -> Op:
    out = bn_relu(expansion(x, Int(expand_ratio * x.shape()[1])))
    out = bn_relu(spatial_correlation(out, kernel_size, stride))
    return bn_relu(reduction(out, out_channels))


@scope
def reduce_expand(x: Node, out_channels: Any, reduce_ratio: Any, kernel_size: Any, stride: Any) -> Op:
    reduced = Int(x.shape()[1] / reduce_ratio)
    out = bn_relu(reduction(x, reduced))
    out = bn_relu(conv2d(out, reduced, kernel_size, stride))
    return bn_relu(expansion(out, out_channels))


@scope
def pooling(x: Node, kernel_size: Any, stride: Any) -> ChoiceOp:
    padding = kernel_size // 2  # "same" padding: the spatial size of the convolution options
    average = AvgPooling(kernel_size, stride, padding)
    maximum = MaxPooling(kernel_size, stride, padding)
    return ChoiceOp(average, maximum, switch=CategoricalParameter([0, 1], name="pool_mode"))(x)


@scope
def sandglass_block(x: Node, out_channels: Any, reduce_ratio: Any, kernel_size: Any, stride: Any) -> Op:
    out = bn_relu(depthwise_conv2d(x, kernel_size))
    out = reduction(out, Int(x.shape()[1] / reduce_ratio))
    out = batch_norm(Relu()(expansion(out, out_channels)))
    return depthwise_conv2d(out, kernel_size, stride)


@scope
def pattern(
    x: Node, stride: Any, out_channels: Any, kernel_size: Any, expand_ratio: Any, reduce_ratio: Any
) -> ChoiceOp:
    shared = {"kernel_size": kernel_size, "stride": stride}
    options = [
        functools.partial(conv_relu, out_channels=out_channels, **shared),
        functools.partial(expand_reduce, out_channels=out_channels, expand_ratio=expand_ratio, **shared),
        functools.partial(reduce_expand, out_channels=out_channels, reduce_ratio=reduce_ratio, **shared),
        functools.partial(pooling, **shared),
        functools.partial(sandglass_block, out_channels=out_channels, reduce_ratio=reduce_ratio, **shared),
    ]
    return ChoiceOp(*options, names=["conv", "expand_reduce", "reduce_expand", "pooling", "sandglass"])(x)


@scope
def residual(x: Node, main_shape: tuple) -> Op:
    stride = Int(Ceil(x.shape()[2] / main_shape[2]))
    return bn_relu(conv2d(x, main_shape[1], 1, stride))


@scope
def block(
    x: Node,
    depth: IntScalarParameter,
    stride: Any,
    out_channels: Parameter,
    kernel_size: Parameter,
    expand_ratio: Parameter,
    reduce_ratio: Parameter,
) -> ChoiceOp:
    if not isinstance(depth, IntScalarParameter):
        raise TypeError(f"block: depth must be an IntScalarParameter, got {depth!r}")
    out, exits = x, []
    for i in range(depth.max + 1):
        out = pattern(
            out,
            stride=stride.new() if i == 0 else 1,
            out_channels=out_channels.new(),
            kernel_size=kernel_size.new(),
            expand_ratio=expand_ratio.new(),
            reduce_ratio=reduce_ratio.new(),
        )
        exits.append(out)
    out = ChoiceOp(*exits, switch=depth)()
    with_residual = Add()(out, residual(x, out.shape()))
    return ChoiceOp(out, with_residual, switch=IntScalarParameter(0, 1, name="residual_choice"))()


@scope
def stem(x: Node, kernel_size: Any, stride: Any, out_channels: Any) -> Op:
    return bn_relu(conv2d(x, out_channels, kernel_size, stride))


@scope
def classifier_head(x: Node, num_classes: int) -> Op:
    return linear(Flatten()(AdaptiveAvgPooling()(x)), num_classes)


def backbone(x: Node, num_classes: int = 10, max_channels: int = 512, max_blocks: int = 9) -> Op:
    """The EVN graph (without the decorator's scope): stem, `max_blocks + 1` blocks, head."""
    out_channels = IntScalarParameter(16, max_channels, step_size=8, name="out_channels")
    kernel_size = CategoricalParameter([3, 5, 7, 9], name="kernel_size")
    stride = CategoricalParameter([1, 2], name="stride")
    expand_ratio = IntScalarParameter(1, 6, name="expand_ratio")
    reduce_ratio = IntScalarParameter(2, 4, name="reduce_ratio")
    depth = IntScalarParameter(0, 2, name="depth")
    num_blocks = IntScalarParameter(0, max_blocks, name="num_blocks")
    out = stem(
        x,
        CategoricalParameter([3, 5], name="kernel_size"),
        stride.new(),
        IntScalarParameter(16, 64, step_size=4, name="out_channels"),
    )
    exits = []
    for _ in range(num_blocks.max + 1):
        out = block(
            out,
            depth=depth.new(),
            stride=stride.new(),
            out_channels=out_channels.new(),
            kernel_size=kernel_size.new(),
            expand_ratio=expand_ratio.new(),
            reduce_ratio=reduce_ratio.new(),
        )
        exits.append(out)
    out = ChoiceOp(*exits, switch=num_blocks)()
    output_fmap = out.shape()[2]
    out = classifier_head(out, num_classes=num_classes)
    strides = [p for pid, p in out.parametrization().items() if pid.split(".")[-1] == "stride"]
    out.cond(output_fmap > 1, allowed_params=strides)
    return out


@search_space
def embedded_vision_net(
    name: str,
    x: Node,
    num_classes: int,
    max_channels: int = 512,
    max_blocks: int = 9,
    constraints: Sequence[Mapping[str, Any]] = (),
) -> Op:
    """HANNAH's `embedded_vision_net(name, input, num_classes, max_channels, max_blocks, constraints)`;
    `name` is accepted for compatibility (ids start with `embedded_vision_net_0`). `constraints`:
    dicts {"name": "macs" or "weights", "upper": .., "lower": ..} bounding the architecture's
    multiply-accumulates per sample or trainable weight elements (biases and BatchNorm included)."""
    arch = backbone(x, num_classes, max_channels, max_blocks)
    kinds = {"macs": "flops", "weights": "params"}
    for constraint in constraints:
        kind = kinds.get(constraint.get("name"))
        if kind is None:
            raise ValueError(f"embedded_vision_net: unknown constraint {constraint!r}; names: {sorted(kinds)}")
        cost = CostExpression(arch, kind)
        if "upper" in constraint:
            arch.cond(cost < constraint["upper"])
        if "lower" in constraint:
            arch.cond(cost > constraint["lower"])
    return arch


def fix_for_mixing(space: Node, width: int = 16) -> list[str]:
    """Fix every width (`out_channels`) to `width` and every stride to 1, so that the options of
    every ChoiceOp share one shape and a mixing (differentiable) strategy can search the rest, and
    every `reduce_ratio` at its current value (a weight that shrinks as its value grows cannot be
    a searched value choice). Returns the ids fixed; ValueError if `width` is outside a domain."""
    fixed = []
    for pid, param in space.parametrization().items():
        leaf = pid.split(".")[-1]
        if leaf in ("out_channels", "stride", "reduce_ratio"):
            param.fix({"out_channels": width, "stride": 1}.get(leaf))
            fixed.append(pid)
    return fixed
