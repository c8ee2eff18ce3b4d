"""A MobileNetV2-style chain space (Sandler et al. 2018), for 1-D (N, C, L) and 2-D (N, C, H, W) inputs.

stem (Conv3-BN-act) -> stages of inverted-residual blocks -> head (optional Conv1x1-BN-act, global
average pool, Linear). An inverted-residual block is Conv1x1 expand (ratio t) -> BN -> act ->
depthwise Conv k (stride s) -> BN -> act -> Conv1x1 project -> BN, plus the block input when the
shapes allow (stride 1 and the same channel parameter: every block of a stage but the first, and
the first when it keeps an int channel count). Per stage, four searchable dimensions:

- expansion ratio: a ChoiceOp over `expansion_ratios` per block, options = whole block bodies
  (the hidden widths differ), one switch shared by the stage's blocks;
- kernel size: a ChoiceOp over `kernel_sizes` on the depthwise conv, one switch per stage;
- width: a CategoricalParameter over `round(channels * m)` for m in `width_multipliers`, in the
  weight shapes of the stage (its project convs, and the next stage's expand convs); it starts at
  the widest. A value parameter, not a ChoiceOp switch: `BasicExecutor` runs its current value,
  `discretize(space, {width.id: 8, ...})` / `SearchResult.export` narrow the weights to a chosen
  value; the supernet searches it where it searches value parameters (otherwise it keeps its
  current value and `fit_supernet` searches the three other dimensions);
- depth: dynamic depth, `ChoiceOp(*exits, switch=depth)()` over the outputs of blocks
  `min_depth .. depth` of the stage.

Ids (stage s, blocks b): `mobilenet_space_0.stage_<s>.inverted_residual_0.ChoiceOp_0.expansion`,
`...stage_<s>.inverted_residual_0.expand_0.ChoiceOp_0.kernel`, `...stage_<s>.ChoiceOp_0.depth`, and
the width parameter is named `width` under the first weight that uses it; `mobilenet_parameters(net)`
finds them all, stage by stage.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple, Optional, Sequence

from ops import AdaptiveAvgPooling, Add, BatchNorm, Conv1d, Conv2d, Flatten, Relu, Relu6, conv1d, conv2d, linear
from supernet import CategoricalParameter, ChoiceOp, IntScalarParameter, Node, Parameter, Tensor, scope, search_space

ACTIVATIONS = {"relu6": Relu6, "relu": Relu}


class Stage(NamedTuple):
    """One stage: output `channels` (at width multiplier 1), at most `depth` blocks, first `stride`."""

    channels: int
    depth: int
    stride: int = 1


#: a small MobileNetV2-like layout (MobileNetV2 itself: (16,1,1), (24,2,2), (32,3,2), (64,4,2), (96,3,1), (160,3,2), (320,1,1))
DEFAULT_STAGES = (Stage(16, 1, 1), Stage(24, 2, 2), Stage(32, 3, 2), Stage(64, 3, 2))


def _rank_check(x: Node) -> int:
    rank = len(x.shape())
    if rank not in (3, 4):
        raise ValueError(f"MobileNet spaces take (N, C, L) or (N, C, H, W) inputs, got a {rank}-D {x!r}")
    return rank


def _pointwise(x: Node, out_channels: Any, kernel_size: int = 1, stride: int = 1) -> Node:
    return (conv1d if _rank_check(x) == 3 else conv2d)(x, out_channels, kernel_size, stride=stride)


def _depthwise(x: Node, kernel_size: int, stride: int) -> Node:
    """Depthwise conv: groups = channels, with a (C, 1, k[, k]) weight. Built here rather than with
    `conv1d(groups=C)`, which sizes the weight's input axis by the interval bound of C // C, loose
    (> 1) when C is a parameter expression."""
    rank = _rank_check(x)
    channels = x.shape()[1]
    kernel_axes = ("kL",) if rank == 3 else ("kH", "kW")
    weight = Tensor(name="weight", shape=(channels, 1, *[kernel_size] * (rank - 2)), axis=("O", "I", *kernel_axes))
    return (Conv1d if rank == 3 else Conv2d)(stride=stride, groups=channels)(x, weight)


@scope
def conv_bn_act(x: Node, out_channels: Any, kernel_size: int = 1, stride: int = 1, activation: str = "relu6") -> Node:
    """Conv(kernel_size, stride) -> BatchNorm -> activation."""
    return ACTIVATIONS[activation]()(BatchNorm()(_pointwise(x, out_channels, kernel_size, stride)))


@scope
def depthwise(x: Node, kernel_size: int, stride: int = 1, activation: str = "relu6") -> Node:
    """Depthwise Conv(kernel_size, stride) -> BatchNorm -> activation."""
    return ACTIVATIONS[activation]()(BatchNorm()(_depthwise(x, kernel_size, stride)))


@scope
def expand(
    x: Node,
    ratio: int,
    out_channels: Any,
    stride: int,
    kernel_sizes: Sequence[int],
    kernel: Optional[Parameter],
    activation: str,
) -> Node:
    """The body of an inverted-residual block at expansion `ratio`: [Conv1x1 -> BN -> act] (not at
    ratio 1) -> depthwise (a ChoiceOp over `kernel_sizes` on switch `kernel`) -> Conv1x1 -> BN."""
    hidden = x if ratio == 1 else conv_bn_act(x, x.shape()[1] * ratio, 1, activation=activation)
    options = [functools.partial(depthwise, kernel_size=k, stride=stride, activation=activation) for k in kernel_sizes]
    if len(options) == 1:
        mixed = options[0](hidden)
    else:
        mixed = ChoiceOp(*options, switch=kernel, names=[f"kernel{k}" for k in kernel_sizes])(hidden)
    return BatchNorm()(_pointwise(mixed, out_channels))


def _same_size(a: Any, b: Any) -> bool:
    return a is b or (isinstance(a, int) and isinstance(b, int) and a == b)


@scope
def inverted_residual(
    x: Node,
    out_channels: Any,
    stride: int = 1,
    expansion_ratios: Sequence[int] = (6,),
    kernel_sizes: Sequence[int] = (3,),
    expansion: Optional[Parameter] = None,
    kernel: Optional[Parameter] = None,
    activation: str = "relu6",
) -> Node:
    """An inverted-residual block; the expansion ratio is a ChoiceOp over whole bodies (switch
    `expansion`), the depthwise kernel a ChoiceOp inside each (switch `kernel`). Residual when
    stride is 1 and `out_channels` is the input's channel count (the same int or parameter)."""
    options = [
        functools.partial(
            expand,
            ratio=r,
            out_channels=out_channels,
            stride=stride,
            kernel_sizes=tuple(kernel_sizes),
            kernel=kernel,
            activation=activation,
        )
        for r in expansion_ratios
    ]
    if len(options) == 1:
        body = options[0](x)
    else:
        body = ChoiceOp(*options, switch=expansion, names=[f"expand{r}" for r in expansion_ratios])(x)
    if stride == 1 and _same_size(x.shape()[1], out_channels):
        return Add()(x, body)
    return body


def stage_widths(channels: int, width_multipliers: Sequence[float]) -> list[int]:
    """The channel counts a stage may take: round(channels * m), at least 1, sorted, unique."""
    return sorted({max(1, int(round(channels * m))) for m in width_multipliers})


@scope
def stage(
    x: Node,
    channels: int,
    depth: int,
    stride: int = 1,
    expansion_ratios: Sequence[int] = (3, 6),
    kernel_sizes: Sequence[int] = (3, 5, 7),
    width_multipliers: Sequence[float] = (0.5, 0.75, 1.0),
    min_depth: int = 1,
    activation: str = "relu6",
) -> Node:
    """`depth` inverted-residual blocks (the first with `stride`) sharing the stage's expansion,
    kernel and width parameters; a dynamic-depth ChoiceOp picks the output of block min_depth .. depth."""
    if not 1 <= min_depth <= depth:
        raise ValueError(f"a stage needs 1 <= min_depth <= depth, got min_depth={min_depth}, depth={depth}")
    widths = stage_widths(channels, width_multipliers)
    width: Any = widths[0]
    if len(widths) > 1:
        width = CategoricalParameter(widths, name="width")
        width.set_current(widths[-1])  # widest unless searched
    expansion = (
        IntScalarParameter(0, len(expansion_ratios) - 1, name="expansion") if len(expansion_ratios) > 1 else None
    )
    kernel = IntScalarParameter(0, len(kernel_sizes) - 1, name="kernel") if len(kernel_sizes) > 1 else None
    exits = []
    h = x
    for b in range(depth):
        h = inverted_residual(
            h,
            width,
            stride if b == 0 else 1,
            tuple(expansion_ratios),
            tuple(kernel_sizes),
            expansion,
            kernel,
            activation,
        )
        if b + 1 >= min_depth:
            exits.append(h)
    if len(exits) == 1:
        return exits[0]
    depth_switch = IntScalarParameter(0, len(exits) - 1, name="depth")
    depth_switch.set_current(len(exits) - 1)  # deepest unless searched
    return ChoiceOp(*exits, switch=depth_switch, names=[f"depth{d}" for d in range(min_depth, depth + 1)])()


@scope
def head(x: Node, num_classes: int, head_channels: Optional[int] = None, activation: str = "relu6") -> Node:
    """[Conv1x1 -> BN -> act, when `head_channels`] -> global average pool -> Flatten -> Linear."""
    if head_channels:
        x = conv_bn_act(x, head_channels, 1, activation=activation)
    return linear(Flatten()(AdaptiveAvgPooling(1)(x)), num_classes)


@search_space
def mobilenet_space(
    input: Tensor,
    num_classes: int = 10,
    stem_channels: int = 16,
    stem_stride: int = 1,
    stages: Sequence[Sequence[int]] = DEFAULT_STAGES,
    expansion_ratios: Sequence[int] = (3, 6),
    kernel_sizes: Sequence[int] = (3, 5, 7),
    width_multipliers: Sequence[float] = (0.5, 0.75, 1.0),
    min_depth: int = 1,
    head_channels: Optional[int] = None,
    activation: str = "relu6",
) -> Node:
    """A MobileNetV2-style space on `input` (N, C, L) or (N, C, H, W): stem Conv3 (`stem_channels`,
    `stem_stride`), `stages` of (channels, max depth, stride), head. Searchable per stage: expansion
    ratio, depthwise kernel size, width multiplier and depth (see the module docstring)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    h = conv_bn_act(input, stem_channels, 3, stride=stem_stride, activation=activation)
    for spec in stages:
        spec = Stage(*spec)
        h = stage(
            h,
            spec.channels,
            spec.depth,
            spec.stride,
            tuple(expansion_ratios),
            tuple(kernel_sizes),
            tuple(width_multipliers),
            min(min_depth, spec.depth),
            activation,
        )
    return head(h, num_classes, head_channels, activation)


_STAGE = re.compile(r"(?:^|\.)stage_(\d+)\.")


def mobilenet_parameters(net: Node) -> list[dict[str, Parameter]]:
    """Per stage, in order: {"expansion", "kernel", "width", "depth"} -> its parameter (those a
    stage has: a dimension with a single value has none)."""
    stages: dict[int, dict[str, Parameter]] = {}
    for pid, param in net.parametrization().items():
        match = _STAGE.search(pid)
        if match and param.name in ("expansion", "kernel", "width", "depth"):
            stages.setdefault(int(match[1]), {})[param.name] = param
    return [stages[k] for k in sorted(stages)]
