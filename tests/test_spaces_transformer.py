"""Transformer space and its ops: attention (against torch), LayerNorm, GELU, positional encoding,
switch ids, pre/post normalisation, execution, and a short search on MNIST-1D tokens whose export trains."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ops import (
    Add,
    Gelu,
    LayerNorm,
    MultiHeadSelfAttention,
    PositionalEncoding,
    multi_head_self_attention,
    positional_encoding,
)
from search import UndecidedWarning, fit_supernet
from search.spaces import transformer_space, transformer_switches
from supernet import BasicExecutor, ChoiceOp, SupernetExecutor, Tensor, discretize, get_nodes, lazy, search_space
from supernet.graph import topological_order


def _tokens(batch: int = 2, tokens: int = 40, features: int = 1) -> Tensor:
    return Tensor(name="tokens", shape=(batch, tokens, features), axis=("N", "T", "C"))


def test_attention_matches_torch_multihead_attention():
    torch.manual_seed(0)
    x = Tensor("x", (3, 7, 8), ("N", "T", "C"))

    @search_space
    def space(x):
        return multi_head_self_attention(x, heads=2)

    out = space(x)
    model = BasicExecutor(out, seed=0)
    reference = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    weights = dict(model.named_parameters())
    prefix = "space_0.MultiHeadSelfAttention_0."
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([weights[prefix + f"{p}_weight"] for p in "qkv"]))
        reference.in_proj_bias.copy_(torch.randn(24))
        for i, p in enumerate("qkv"):
            weights[prefix + f"{p}_bias"].copy_(reference.in_proj_bias[8 * i : 8 * (i + 1)])
        reference.out_proj.weight.copy_(weights[prefix + "out_weight"])
        reference.out_proj.bias.copy_(torch.randn(8))
        weights[prefix + "out_bias"].copy_(reference.out_proj.bias)
    data = torch.randn(3, 7, 8)
    expected, _ = reference(data, data, data, need_weights=False)
    assert torch.allclose(model(data), expected, atol=1e-5)
    assert lazy(out.shape()) == (3, 7, 8)
    # projections 4 * T * d * d, QK^T and AV 2 * T * T * d
    assert lazy(out.flops()) == 4 * 7 * 8 * 8 + 2 * 7 * 7 * 8


def test_causal_attention_ignores_the_future_and_heads_must_divide_the_width():
    x = Tensor("x", (1, 5, 6), ("N", "T", "C"))

    @search_space
    def space(x):
        return multi_head_self_attention(x, heads=3, causal=True)

    model = BasicExecutor(space(x), seed=0)
    a = torch.randn(1, 5, 6)
    b = a.clone()
    b[:, 3:] = torch.randn(1, 2, 6)
    assert torch.allclose(model(a)[:, :3], model(b)[:, :3], atol=1e-6)
    assert not torch.allclose(model(a)[:, 3:], model(b)[:, 3:])
    with pytest.raises(ValueError, match="heads"):
        multi_head_self_attention(Tensor("y", (1, 5, 6), ("N", "T", "C")), heads=4)


def test_layer_norm_gelu_and_positional_encodings():
    x = Tensor("x", (2, 4, 6), ("N", "T", "C"))

    @search_space
    def space(x):
        return Gelu()(positional_encoding(LayerNorm()(x)))

    out = space(x)
    data = torch.randn(2, 4, 6)
    position = torch.arange(4.0)[:, None]
    frequency = 10000.0 ** (-torch.arange(0, 6, 2) / 6)
    table = torch.stack([torch.sin(position * frequency), torch.cos(position * frequency)], -1).reshape(4, 6)
    expected = F.gelu(F.layer_norm(data, (6,)) + table)
    assert torch.allclose(BasicExecutor(out)(data), expected, atol=1e-5)
    pe = out.operands[0]
    assert isinstance(pe, PositionalEncoding) and isinstance(pe.operands[0], LayerNorm)
    assert [lazy(n.flops()) for n in (out, pe, pe.operands[0])] == [24, 24, 48]

    @search_space
    def learned(x):
        return positional_encoding(x, learned=True)

    model = BasicExecutor(learned(x), seed=0)
    assert [k for k, _ in model.named_parameters()] == ["learned_0.PositionalEncoding_0.table"]
    assert torch.allclose(
        model(data) - data, model.get_parameter("learned_0.PositionalEncoding_0.table").expand(2, 4, 6)
    )


def test_switches_per_block_and_their_options():
    net = transformer_space(_tokens(), d_model=16, blocks=2, heads=(1, 2, 4), ffn_ratios=(1, 2, 4))
    blocks = transformer_switches(net)
    assert len(blocks) == 2 and len(net.parametrization()) == 8
    prefix = "transformer_space_0.encoder_block_1."
    assert {k: p.id for k, p in blocks[1].items()} == {
        "mixer": prefix + "token_mixer_0.ChoiceOp_0.mixer",
        "heads": prefix + "token_mixer_0.attention_0.ChoiceOp_0.heads",
        "ffn_ratio": prefix + "ffn_0.ChoiceOp_0.ffn_ratio",
        "norm": prefix + "ChoiceOp_0.norm",
    }
    choices = [c for c in topological_order(net) if isinstance(c, ChoiceOp) and c.id.startswith(prefix)]
    names = {c.switch.name: c.option_names() for c in choices}
    assert names == {
        "mixer": ["attention", "conv"],
        "heads": ["heads1", "heads2", "heads4"],
        "ffn_ratio": ["ffn1", "ffn2", "ffn4"],
        "norm": ["pre", "post"],
    }
    # one norm switch drives the ChoiceOps before and after both sublayers
    assert sum(c.switch is blocks[1]["norm"] for c in choices) == 4
    heads = [c for c in choices if c.switch.name == "heads"][0]
    assert [o.heads for o in heads.operands] == [1, 2, 4] and all(
        isinstance(o, MultiHeadSelfAttention) for o in heads.operands
    )
    # fixed dimensions have no switch
    fixed = transformer_space(
        _tokens(), d_model=16, blocks=1, heads=(2,), ffn_ratios=(2,), norms=("pre",), mixers=("attention",)
    )
    assert fixed.parametrization() == {}
    with pytest.raises(ValueError, match="divide"):
        transformer_space(_tokens(), d_model=6, heads=(4,))


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_pre_and_post_normalisation_after_discretization(norm):
    net = transformer_space(_tokens(), d_model=8, blocks=1, heads=(1, 2), ffn_ratios=(1, 2))
    (block,) = transformer_switches(net)
    fixed = discretize(net, {block["norm"].id: ["pre", "post"].index(norm)})
    norms = [n for n in topological_order(fixed) if isinstance(n, LayerNorm) and ".encoder_block_0." in n.id]
    assert len(norms) == 2
    if norm == "post":  # LN(x + F(x))
        assert all(isinstance(n.operands[0], Add) for n in norms)
        assert any(isinstance(u, Add) for u in norms[0].users)  # the second sublayer's residual
    else:  # x + F(LN(x)): the sums read the un-normalised stream
        assert not any(isinstance(n.operands[0], Add) for n in norms)
        sums = [n for n in topological_order(fixed) if isinstance(n, Add)]
        assert len(sums) == 2 and not any(isinstance(o, LayerNorm) for s in sums for o in s.operands)
    assert tuple(BasicExecutor(fixed, seed=0)(torch.randn(3, 40, 1)).shape) == (3, 10)


def test_supernet_and_sampled_architectures_run():
    net = transformer_space(
        _tokens(3, tokens=12, features=2), d_model=8, blocks=2, num_classes=4, heads=(1, 2), learned_positions=True
    )
    data = torch.randn(3, 12, 2)
    assert tuple(SupernetExecutor(net, seed=0)(data).shape) == (3, 4)
    model = BasicExecutor(net, seed=0)
    for seed in range(4):
        net.sample(seed=seed)
        out = model(data)
        assert tuple(out.shape) == tuple(lazy(net.shape())) == (3, 4) and torch.isfinite(out).all()


def test_search_on_mnist1d_tokens_then_export_trains():
    from search.datasets import load_mnist1d
    from search.transformer_demo import as_tokens

    torch.manual_seed(0)
    (x, y), _ = load_mnist1d()
    x = as_tokens(x)
    assert tuple(x.shape[1:]) == (40, 1)
    net = transformer_space(_tokens(), d_model=16, blocks=1)
    result = fit_supernet(net, (x[:64], y[:64]), epochs=2, batch_size=16, seed=0, progress=False, on_undecided="ignore")
    assert set(result.architecture) == set(net.parametrization())
    model = result.export(seed=0)
    assert not any(isinstance(n, ChoiceOp) for n in get_nodes(model.output_node))
    xb, yb = x[64:192], y[64:192]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    losses = []
    for _ in range(10):
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.95 * losses[0] and min(losses[5:]) < min(losses[:5]), losses


def test_demo_runs_end_to_end_on_a_small_subset(tmp_path, capsys):
    from search.transformer_demo import main

    with pytest.warns(UndecidedWarning, match="undecided after"):  # one epoch decides nothing, and the demo says so
        summary = main(
            [
                "--epochs",
                "1",
                "--retrain-epochs",
                "1",
                "--train-samples",
                "128",
                "--d-model",
                "8",
                "--blocks",
                "1",
                "--no-progress",
                "--out",
                str(tmp_path),
            ]
        )
    assert 0.0 <= summary["retrained_test_accuracy"] <= 1.0
    assert len(summary["chosen_options"]) == 4
    assert (tmp_path / "summary.json").exists() and (tmp_path / "search" / "result.json").exists()
    assert "test accuracy of the retrained architecture" in capsys.readouterr().out
