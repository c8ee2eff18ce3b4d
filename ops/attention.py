"""Multi-head self-attention (Vaswani et al. 2017) over (N, T, C) token sequences.

    softmax(Q K^T / sqrt(d_head)) V per head, heads concatenated, then the output projection W_O,
    with Q, K, V = x W_Q, x W_K, x W_V.

The op owns its weights (`q_weight`, `k_weight`, `v_weight`, `out_weight` and biases), created by
`multi_head_self_attention` as `linear` creates its weight. The head split is an einops
`rearrange`; the number of heads only reshapes, so it may differ between ops with equal weights.
"""

from __future__ import annotations

from typing import Any, Optional

import torch.nn.functional as F
from einops import rearrange

from supernet import Op, Tensor, lazy
from supernet.node import Node

_WEIGHTS = ("q_weight", "k_weight", "v_weight", "out_weight")


class MultiHeadSelfAttention(Op):
    """`MultiHeadSelfAttention(heads, causal=False, dropout=0.0)(x, q_weight, k_weight, v_weight,
    out_weight[, q_bias, k_bias, v_bias, out_bias])` on x of shape (N, T, C_in).

    Q/K/V weights are (d_model, C_in), the output weight (C_out, d_model), as Linear weights;
    `heads` must divide d_model. `causal` masks future positions; `dropout` drops attention
    probabilities in training."""

    n_inputs = 1
    mode_arguments = ("training",)

    def __init__(self, heads: Any = 1, causal: bool = False, dropout: Any = 0.0) -> None:
        super().__init__(heads=heads, causal=causal, dropout=dropout)

    def _named(self) -> dict[str, Node]:
        return {w.name: w for w in self.operands[1:]}

    def check(self) -> None:
        x = self.operands[0]
        if len(x.shape()) != 3:
            raise ValueError(f"{self.id} expects (N, T, C) tokens, got shape {lazy(x.shape())}")
        named = self._named()
        missing = [n for n in _WEIGHTS if n not in named]
        if missing:
            raise TypeError(
                f"{self.id} needs weight Tensors named {list(_WEIGHTS)}; missing {missing} (use multi_head_self_attention)"
            )
        d_in = lazy(x.shape()[-1])
        d_model = lazy(named["q_weight"].shape()[0])
        for name in ("q_weight", "k_weight", "v_weight"):
            rows, cols = lazy(named[name].shape())
            if cols != d_in or rows != d_model:
                raise ValueError(f"{self.id}: {name} is ({rows}, {cols}), expected ({d_model}, {d_in})")
        if lazy(named["out_weight"].shape()[1]) != d_model:
            raise ValueError(
                f"{self.id}: out_weight takes {lazy(named['out_weight'].shape()[1])} features, expected {d_model}"
            )
        heads = lazy(self.heads)
        if not isinstance(heads, int) or heads < 1 or d_model % heads:
            raise ValueError(f"{self.id}: {heads!r} heads do not divide the model width {d_model}")

    def shape_fun(self) -> tuple:
        x = self.operands[0].shape()
        return (*x[:-1], self._named()["out_weight"].shape()[0])

    def flops(self) -> Any:
        """Q, K, V and output projections, plus the QK^T and AV matmuls (summed over heads)."""
        _, tokens, d_in = self.operands[0].shape()
        named = self._named()
        d_model = named["q_weight"].shape()[0]
        d_out = named["out_weight"].shape()[0]
        projections = 3 * tokens * d_in * d_model + tokens * d_model * d_out
        return projections + 2 * tokens * tokens * d_model

    def _forward_implementation(self, x, *weights, training):
        named = dict(zip((w.name for w in self.operands[1:]), weights))
        heads = lazy(self.heads)
        q, k, v = (F.linear(x, named[f"{p}_weight"], named.get(f"{p}_bias")) for p in "qkv")
        q, k, v = (rearrange(t, "n t (h d) -> n h t d", h=heads) for t in (q, k, v))
        dropout = lazy(self.dropout) if training else 0.0
        z = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=self.causal)
        z = rearrange(z, "n h t d -> n t (h d)")
        return F.linear(z, named["out_weight"], named.get("out_bias"))

    def source(self, args, out):
        x, named = args[0], dict(zip((w.name for w in self.operands[1:]), args[1:]))
        heads = lazy(self.heads)
        d_model = lazy(self._named()["q_weight"].shape()[0])
        lines = [
            f"{out}_{p} = F.linear({x}, {named[f'{p}_weight']}, {named.get(f'{p}_bias')})"
            f".reshape([{x}.shape[0], {x}.shape[1], {heads}, {d_model // heads}]).transpose(1, 2)"
            for p in "qkv"
        ]
        dropout = f"{float(lazy(self.dropout))!r} if self.training else 0.0"
        lines.append(
            f"{out}_z = F.scaled_dot_product_attention({out}_q, {out}_k, {out}_v, dropout_p={dropout}, is_causal={self.causal!r})"
        )
        lines.append(f"{out}_z = {out}_z.transpose(1, 2).reshape([{x}.shape[0], {x}.shape[1], {d_model}])")
        lines.append(f"{out} = F.linear({out}_z, {named['out_weight']}, {named.get('out_bias')})")
        return "\n".join(lines)


def multi_head_self_attention(
    x: Node,
    heads: Any = 1,
    d_model: Optional[Any] = None,
    out_features: Optional[Any] = None,
    bias: bool = True,
    causal: bool = False,
    dropout: Any = 0.0,
) -> Op:
    """A MultiHeadSelfAttention on x (N, T, C) with new weights: Q/K/V (d_model, C), output
    (out_features, d_model); d_model and out_features default to C."""
    d_in = x.shape()[-1]
    d_model = d_in if d_model is None else d_model
    out_features = d_in if out_features is None else out_features
    weights = [Tensor(name=f"{p}_weight", shape=(d_model, d_in), axis=("O", "I")) for p in "qkv"]
    weights.append(Tensor(name="out_weight", shape=(out_features, d_model), axis=("O", "I")))
    if bias:
        weights += [Tensor(name=f"{p}_bias", shape=(d_model,), axis=("O",), init="zeros") for p in "qkv"]
        weights.append(Tensor(name="out_bias", shape=(out_features,), axis=("O",), init="zeros"))
    return MultiHeadSelfAttention(heads=heads, causal=causal, dropout=dropout)(x, *weights)
