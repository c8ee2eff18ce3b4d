"""A transformer-encoder search space over (N, T, F) token sequences (Vaswani et al. 2017; pre- vs
post-normalisation as in Xiong et al. 2020; see /work/shared/reference/attention-notes.md).

    tokens (N, T, F) -> Linear to d_model -> + positional encoding (sinusoids, or learned)
    -> blocks -> LayerNorm -> mean over tokens -> Linear to the classes

Each block has two residual sublayers, a token mixer and a feed-forward network (Linear(d, r*d)
-> GELU -> Linear(r*d, d)), and four searchable choices, each a ChoiceOp:

- `mixer`: multi-head self-attention or a convolution (depthwise Conv1d over the tokens -> GELU
  -> Linear), the options `mixers`;
- `heads`: the number of attention heads, one of `heads` (a ChoiceOp inside the attention option);
- `ffn_ratio`: the FFN expansion, one of `ffn_ratios`;
- `norm`: "pre" (x + F(LN(x))) or "post" (LN(x + F(x))) normalisation, for both sublayers. One
  switch drives two ChoiceOps per sublayer, LN-or-identity before F and identity-or-LN after the
  residual sum, so both placements share F and its weights.

Switch ids of block b (`transformer_switches(net)` lists them by block):
`transformer_space_0.encoder_block_<b>.token_mixer_0.ChoiceOp_0.mixer`,
`...encoder_block_<b>.token_mixer_0.attention_0.ChoiceOp_0.heads`,
`...encoder_block_<b>.ffn_0.ChoiceOp_0.ffn_ratio`, `...encoder_block_<b>.ChoiceOp_0.norm`.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Callable, Optional, Sequence

from ops import (
    AdaptiveAvgPooling,
    Add,
    Flatten,
    Gelu,
    Identity,
    LayerNorm,
    Permute,
    conv1d,
    linear,
    multi_head_self_attention,
    positional_encoding,
)
from supernet import ChoiceOp, IntScalarParameter, Node, Parameter, Tensor, lazy, scope, search_space

MIXERS = ("attention", "conv")
NORMS = ("pre", "post")


def _choice(options: Sequence[Any], names: Sequence[str], switch_name: str, x: Node) -> Node:
    """One option applied directly, or a ChoiceOp over them on a switch named `switch_name`."""
    if len(options) == 1:
        option = options[0]
        return option(x)
    switch = IntScalarParameter(0, len(options) - 1, name=switch_name)
    return ChoiceOp(*options, switch=switch, names=list(names))(x)


@scope
def attention(x: Node, heads: Sequence[int] = (1, 2, 4)) -> Node:
    """Multi-head self-attention, the number of heads a ChoiceOp over `heads` (own weights each)."""
    options = [functools.partial(multi_head_self_attention, heads=h) for h in heads]
    return _choice(options, [f"heads{h}" for h in heads], "heads", x)


@scope
def conv_mixer(x: Node, kernel_size: int = 5) -> Node:
    """Depthwise Conv1d over the tokens (kernel_size, per feature) -> GELU -> Linear over features."""
    features = int(lazy(x.shape()[-1]))
    mixed = conv1d(Permute((0, 2, 1))(x), features, kernel_size, groups=features, bias=True)
    return linear(Permute((0, 2, 1))(Gelu()(mixed)), features)


@scope
def token_mixer(
    x: Node, heads: Sequence[int] = (1, 2, 4), mixers: Sequence[str] = MIXERS, kernel_size: int = 5
) -> Node:
    """A ChoiceOp over the token mixers: "attention" (heads searched inside) and/or "conv"."""
    builders = {
        "attention": functools.partial(attention, heads=tuple(heads)),
        "conv": functools.partial(conv_mixer, kernel_size=kernel_size),
    }
    return _choice([builders[m] for m in mixers], mixers, "mixer", x)


@scope
def mlp(x: Node, ratio: int) -> Node:
    """Linear(d, ratio * d) -> GELU -> Linear(ratio * d, d)."""
    features = x.shape()[-1]
    return linear(Gelu()(linear(x, features * ratio)), features)


@scope
def ffn(x: Node, ratios: Sequence[int] = (1, 2, 4)) -> Node:
    """The feed-forward sublayer: a ChoiceOp over the expansion `ratios`."""
    return _choice([functools.partial(mlp, ratio=r) for r in ratios], [f"ffn{r}" for r in ratios], "ffn_ratio", x)


def _sublayer(x: Node, body: Callable[[Node], Node], norms: Sequence[str], norm: Optional[Parameter]) -> Node:
    """x + body(LN(x)) ("pre") or LN(x + body(x)) ("post"), or a choice of both on switch `norm`."""
    if len(norms) == 1:
        if norms[0] == "pre":
            return Add()(x, body(LayerNorm()(x)))
        return LayerNorm()(Add()(x, body(x)))
    before = {"pre": LayerNorm, "post": Identity}
    after = {"pre": Identity, "post": LayerNorm}
    inner = ChoiceOp(*[before[n]() for n in norms], switch=norm, names=list(norms))(x)
    summed = Add()(x, body(inner))
    return ChoiceOp(*[after[n]() for n in norms], switch=norm, names=list(norms))(summed)


@scope
def encoder_block(
    x: Node,
    heads: Sequence[int] = (1, 2, 4),
    ffn_ratios: Sequence[int] = (1, 2, 4),
    norms: Sequence[str] = NORMS,
    mixers: Sequence[str] = MIXERS,
    kernel_size: int = 5,
) -> Node:
    """Token-mixer sublayer then FFN sublayer, both residual, normalised before or after (one switch)."""
    norm = IntScalarParameter(0, len(norms) - 1, name="norm") if len(norms) > 1 else None
    h = _sublayer(x, functools.partial(token_mixer, heads=heads, mixers=mixers, kernel_size=kernel_size), norms, norm)
    return _sublayer(h, functools.partial(ffn, ratios=ffn_ratios), norms, norm)


@scope
def embed(x: Node, d_model: int, learned_positions: bool = False) -> Node:
    """Linear projection of every token to d_model, plus the positional encoding."""
    return positional_encoding(linear(x, d_model), learned=learned_positions)


@scope
def classifier(x: Node, num_classes: int) -> Node:
    """LayerNorm -> mean over the tokens -> Linear."""
    pooled = AdaptiveAvgPooling(1)(Permute((0, 2, 1))(LayerNorm()(x)))
    return linear(Flatten()(pooled), num_classes)


def _check(
    d_model: int, heads: Sequence[int], ffn_ratios: Sequence[int], norms: Sequence[str], mixers: Sequence[str]
) -> None:
    for name, values, allowed in (("norms", norms, NORMS), ("mixers", mixers, MIXERS)):
        if not values or any(v not in allowed for v in values) or len(set(values)) != len(values):
            raise ValueError(f"{name} must be distinct values among {allowed}, got {tuple(values)}")
    if "attention" in mixers and (not heads or any(h < 1 or d_model % h for h in heads)):
        raise ValueError(f"every number of heads must divide d_model={d_model}, got {tuple(heads)}")
    if not ffn_ratios or any(r < 1 for r in ffn_ratios):
        raise ValueError(f"ffn_ratios must be positive ints, got {tuple(ffn_ratios)}")


@search_space
def transformer_space(
    input: Tensor,
    d_model: int = 32,
    blocks: int = 2,
    num_classes: int = 10,
    heads: Sequence[int] = (1, 2, 4),
    ffn_ratios: Sequence[int] = (1, 2, 4),
    norms: Sequence[str] = NORMS,
    mixers: Sequence[str] = MIXERS,
    kernel_size: int = 5,
    learned_positions: bool = False,
) -> Node:
    """A transformer encoder classifier on `input` tokens (N, T, F): per block a searchable token
    mixer (`mixers`: attention with `heads` heads, or a Conv1d of `kernel_size`), FFN ratio and
    pre/post normalisation (see the module docstring). A choice with one value is fixed.
    MNIST-1D signals (N, 1, 40) are 40 tokens of one feature: `x.permute(0, 2, 1)`."""
    if len(input.shape()) != 3:
        raise ValueError(f"transformer_space takes (N, T, F) tokens, got shape {lazy(input.shape())}")
    _check(d_model, heads, ffn_ratios, norms, mixers)
    h = embed(input, d_model, learned_positions)
    for _ in range(blocks):
        h = encoder_block(h, tuple(heads), tuple(ffn_ratios), tuple(norms), tuple(mixers), kernel_size)
    return classifier(h, num_classes)


_BLOCK = re.compile(r"(?:^|\.)encoder_block_(\d+)\.")


def transformer_switches(net: Node) -> list[dict[str, Parameter]]:
    """Per block, in order: {"mixer", "heads", "ffn_ratio", "norm"} -> its switch (those it has)."""
    found: dict[int, dict[str, Parameter]] = {}
    for pid, param in net.parametrization().items():
        match = _BLOCK.search(pid)
        if match and param.name in ("mixer", "heads", "ffn_ratio", "norm"):
            found.setdefault(int(match[1]), {})[param.name] = param
    return [found[k] for k in sorted(found)]
