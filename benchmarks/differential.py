"""Differential testing of the supernet engine: optimised plans against the reference interpreter.

    python benchmarks/differential.py --cases 2000            # long mode (results/differential.json)
    python benchmarks/differential.py --cases 40 --batch 10   # a smoke run
    python benchmarks/differential.py --precision bf16-mixed --variants optimized   # bf16 mode

A case is a plain, JSON-serialisable spec of a random search space in the public language (1-D or
2-D; 1-16 channels; sizes 4-16; strides 1 and 2, 1x1 stride-2 convolutions included; kernels 1/3/5;
groups and dilation; BatchNorm affine or not; Add, Concat, Slice; poolings; Zero/Identity; value
choices; dynamic depth; DARTS-like cells) plus a strategy, whose mixture drives the supernet
(sampled gates included). `run_case` builds the space once and one SupernetExecutor per plan
variant (the reference `optimize=False`, the full optimisation, and each rewrite pass switched off
alone and on alone), with the same weights and logits, and steps them in lockstep: an architecture
step, a weight step inside `frozen_architecture()`, repeated, then an eval pass without autograd.
Outputs, every weight and logit gradient and every buffer (BatchNorm statistics) after each step
must agree with the reference within float tolerance.

`--precision bf16-mixed` (results/differential_bf16.json) runs every plan's forward passes under
search.precision's autocast, as a bf16 search does, beside a float32 run of the reference and two
runs of the reference under random rounding (bf16_rounding.RandomRounding), and compares every
plan, the reference included, with the float32 run at one bf16 tolerance (`Tolerance`, numbers in
`TOLERANCES`): an output within 0.5% of its scale plus 4x bf16's error, a gradient or buffer within
1% (gradients also 0.1% of the step's largest) plus 4x, bf16's error being the reference's own
distance from float32 or, where the reference happens to be exact, a share of random rounding's.
Every run takes the float32 run's ReLU and max-pooling decisions (bf16_rounding.MatchedKinks: an
input within rounding of a kink may fall on either side in two correct plans, and the gradient
behind it then jumps). The reference's output must be bfloat16 (autocast took effect) and every
variant's dtypes must be the reference's. Each step restarts every run from the reference's state.

Cases run in batches in subprocesses (`run_batches`): a native crash fails its batch and names the
case that was running. `case_specs()` is the hypothesis strategy drawing specs; the test suite
(tests/test_differential.py) runs a quick mode of the same machinery.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bf16_rounding import MatchedKinks, RandomRounding  # noqa: E402  (benchmarks/bf16_rounding.py)


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How far a tensor may be from the one it is compared with.

    float32: a variant's tensor a against the reference's b: |a - b| <= atol * max(max|b|, 1) + rtol * |b|.
    bf16 (every plan, the reference included, against the reference's float32 run t):
    max|a - t| <= atol * max|t| + floor * g + noise * max(max|b - t|, rounding * max|r - t|), where g is
    the step's largest float32 gradient (gradients only), b the reference's bf16 tensor and r that of
    the reference's random-rounding runs (bf16_rounding.RandomRounding): bf16's error taken as the
    reference's own, or a share of random rounding's where the reference happens to be exact.
    Gradients use `grad_noise`; outputs `output_atol` and `output_rounding` where given."""

    rtol: float
    atol: float
    noise: float = 0.0
    grad_noise: float = 0.0
    floor: float = 0.0
    rounding: float = 0.0
    output_atol: Optional[float] = None
    output_rounding: Optional[float] = None


#: per precision; the bf16 numbers are chosen from 1000 measured cases (docs/precision.md)
TOLERANCES = {
    "32": Tolerance(1e-4, 1e-5),
    "bf16-mixed": Tolerance(
        0.0, 1e-2, noise=4.0, grad_noise=4.0, floor=1e-3, rounding=0.5, output_atol=5e-3, output_rounding=0.2
    ),
}
FLOAT32 = "reference 32"  # the reference plan run without autocast, beside a bf16-mode case
ROUNDED = ("random rounding 1", "random rounding 2")  # the reference under bf16_rounding.RandomRounding

STRATEGY_NAMES = (
    "darts",
    "darts2",
    "gdas",
    "snas",
    "fairdarts",
    "drnas",
    "pcdarts",
    "proxyless",
    "darts-",
    "beta-darts",
)


# --- specs (hypothesis) ---------------------------------------------------------------------------
def case_specs() -> Any:
    """The hypothesis strategy of case specs (plain dicts)."""
    from hypothesis import strategies as st

    @st.composite
    def spec(draw: Callable) -> dict:
        dims = draw(st.sampled_from([1, 2]))
        channels, size = draw(st.integers(1, 16)), draw(st.integers(4, 16))
        blocks, c, s = [], channels, size
        for _ in range(draw(st.integers(1, 3))):
            block = draw(_block(c, s, dims))
            blocks.append(block)
            c, s = _after(block, c, s)
        if not any(b["kind"] in ("choice", "cell", "value", "depth") for b in blocks):
            block = draw(_block(c, s, dims, searched=True))
            blocks.append(block)
        from search.strategies import STRATEGIES

        names = [n for n in STRATEGY_NAMES if n in STRATEGIES] or sorted(STRATEGIES)
        return {
            "dims": dims,
            "channels": channels,
            "size": size,
            "blocks": blocks,
            "classes": draw(st.integers(2, 4)),
            "batch": draw(st.integers(2, 6)),
            "strategy": draw(st.sampled_from(names)),
            "seed": draw(st.integers(0, 2**16)),
            "steps": 2,
        }

    return spec()


def _block(c: int, s: int, dims: int, searched: bool = False) -> Any:
    from hypothesis import strategies as st

    stride = st.sampled_from([1, 2]) if s >= 4 else st.just(1)
    bn = st.sampled_from([None, "affine", "plain"])

    def conv(out: Any, stride_: Any) -> Any:
        return st.fixed_dictionaries(
            {
                "out": out,
                "k": st.sampled_from([1, 3, 5]),
                "stride": stride_,
                "dilation": st.sampled_from([1, 1, 2]),
                "groups": st.sampled_from(["one", "one", "depthwise", "two"]),
                "bn": bn,
                "relu": st.booleans(),
            }
        )

    def option(stride_: int) -> Any:
        # FactorizedReduce (two stride-2 1x1 convolutions, one shifted) needs an even size, as in DARTS
        reduce = stride_ == 2 and c >= 2 and s % 2 == 0
        kinds = (
            ["zero", "max", "avg", "conv", "conv"]
            + (["identity"] if stride_ == 1 else [])
            + (["reduce"] if reduce else [])
        )
        return st.sampled_from(kinds).flatmap(
            lambda kind: (
                conv(st.just(c), st.just(stride_)).map(lambda d: {**d, "op": "conv"})
                if kind == "conv"
                else st.just({"op": kind, "bn": "plain"} if kind == "reduce" else {"op": kind})
            )
        )

    choice = stride.flatmap(
        lambda st_: st.lists(option(st_), min_size=1, max_size=4).map(
            lambda opts: {"kind": "choice", "stride": st_, "options": opts}
        )
    )
    cell = st.lists(st.lists(option(1), min_size=1, max_size=3), min_size=2, max_size=5).map(
        lambda edges: {"kind": "cell", "edges": edges}
    )
    value = st.fixed_dictionaries(
        {
            "kind": st.just("value"),
            "kernels": st.lists(st.sampled_from([1, 3, 5]), min_size=2, max_size=3, unique=True).map(sorted),
            "low": st.integers(1, 4),
            "span": st.integers(1, 3),
            "step": st.integers(1, 2),
            "bn": bn,
        }
    )
    depth = st.fixed_dictionaries(
        {"kind": st.just("depth"), "n": st.integers(2, 3), "k": st.sampled_from([1, 3]), "bn": bn}
    )
    plain = conv(st.integers(1, 16), stride).map(lambda d: {**d, "kind": "conv"})
    concat = st.fixed_dictionaries({"kind": st.just("concat"), "a": st.integers(1, 8), "b": st.integers(1, 8)})
    sliced = st.fixed_dictionaries({"kind": st.just("slice"), "channels": st.just(c > 1), "start": st.integers(1, 2)})
    residual = conv(st.just(c), st.just(1)).map(lambda d: {**d, "kind": "residual"})
    options = (
        [choice, cell, value, depth]
        if searched
        else [choice, cell, value, depth, plain, concat, residual] + ([sliced] if s > 4 or c > 1 else [])
    )
    return st.one_of(*options)


def _after(block: dict, c: int, s: int) -> tuple[int, int]:
    """Channels and size after a block."""
    kind = block["kind"]
    if kind == "conv":
        out = c if block["groups"] == "depthwise" else block["out"]
        return out, _conv_size(s, block["k"], block["stride"], block["dilation"])
    if kind == "choice":
        return c, (s - 1) // block["stride"] + 1
    if kind == "value":
        return block["low"] + block["span"] * block["step"], s
    if kind == "concat":
        return block["a"] + block["b"], s
    if kind == "slice":
        return (c // 2, s) if block["channels"] else (c, s - block["start"])
    return c, s


def _conv_size(s: int, k: int, stride: int, dilation: int) -> int:
    padding = dilation * (k - 1) // 2
    return (s + 2 * padding - dilation * (k - 1) - 1) // stride + 1


# --- spaces from specs ----------------------------------------------------------------------------
#: the ready-made spaces: (input shape without the batch axis, axes, builder) at their smallest and
#: default sizes
def _ready(name: str, scale: str) -> tuple[tuple[int, ...], tuple[str, ...], Callable[[Any], Any]]:
    from search.spaces import Stage, darts_space, mobilenet_space, nb201_1d_space, nb201_space, transformer_space

    small = scale == "smallest"
    image, axes = ((3, 8, 8) if small else (3, 32, 32)), ("N", "C", "H", "W")
    table = {
        "nb201": (image, axes, lambda x: nb201_space(x, channels=2, cells_per_stage=1) if small else nb201_space(x)),
        "nb201_1d": ((1, 40), ("N", "C", "L"), lambda x: nb201_1d_space(x, channels=2) if small else nb201_1d_space(x)),
        "darts": (
            image,
            axes,
            lambda x: darts_space(x, channels=2, layers=1, steps=1, multiplier=1) if small else darts_space(x),
        ),
        "mobilenet": (
            image,
            axes,
            lambda x: (
                mobilenet_space(x, stem_channels=4, stages=(Stage(4, 1, 1), Stage(8, 2, 2)))
                if small
                else mobilenet_space(x)
            ),
        ),
        "transformer": (
            ((4, 8) if small else (16, 32)),
            ("N", "T", "C"),
            lambda x: transformer_space(x, d_model=8, blocks=1) if small else transformer_space(x),
        ),
    }
    return table[name]


READY = ("nb201", "nb201_1d", "darts", "mobilenet", "transformer")


def ready_specs(scale: str, strategies: Sequence[str] = ("darts", "gdas", "proxyless", "darts-")) -> list[dict]:
    """Cases of every ready-made space at `scale` ("smallest" or "default"), one per strategy."""
    return [
        {"ready": name, "scale": scale, "strategy": strategy, "seed": k, "batch": 2, "classes": 10, "steps": 1}
        for name in READY
        for k, strategy in enumerate(strategies)
    ]


def input_shape(spec: dict) -> tuple[int, ...]:
    """The shape of one input sample of a case."""
    if "ready" in spec:
        return _ready(spec["ready"], spec["scale"])[0]
    return (spec["channels"], *[spec["size"]] * spec["dims"])


def build_space(spec: dict) -> Any:
    """The search space a spec describes (built with the public language only)."""
    if "ready" in spec:
        from supernet import Tensor

        shape, axes, make = _ready(spec["ready"], spec["scale"])
        return make(Tensor("x", (1, *shape), axes))
    from ops import (
        AdaptiveAvgPooling,
        Add,
        AvgPooling,
        BatchNorm,
        Concat,
        Flatten,
        Identity,
        MaxPooling,
        Relu,
        Slice,
        Zero,
    )
    from ops import conv1d, conv2d, linear
    from supernet import CategoricalParameter, ChoiceOp, IntScalarParameter, Tensor, search_space

    dims = spec["dims"]
    conv_fn = conv1d if dims == 1 else conv2d

    def norm(x: Any, bn: Optional[str]) -> Any:
        return x if bn is None else BatchNorm(affine=bn == "affine")(x)

    def conv(x: Any, d: dict, out: Any = None) -> Any:
        c = _channels(x)
        groups = {"one": 1, "depthwise": c, "two": 2 if c % 2 == 0 and (out or d["out"]) % 2 == 0 else 1}[d["groups"]]
        width = c if d["groups"] == "depthwise" else (out if out is not None else d["out"])
        y = conv_fn(
            Relu()(x) if d["relu"] else x, width, d["k"], stride=d["stride"], dilation=d["dilation"], groups=groups
        )
        return norm(y, d["bn"])

    def reduce(x: Any, bn: Optional[str]) -> Any:
        c = _channels(x)
        x = Relu()(x)
        shifted = x
        for axis in range(2, 2 + dims):
            shifted = Slice(axis, start=1)(shifted)
        return norm(Concat(axis=1)(conv_fn(x, c // 2, 1, stride=2), conv_fn(shifted, c - c // 2, 1, stride=2)), bn)

    def option(d: dict, stride: int) -> Any:
        kind = d["op"]
        if kind == "zero":
            return Zero(stride)
        if kind == "identity":
            return Identity()
        if kind == "max":
            return MaxPooling(3, stride, 1)
        if kind == "avg":
            return AvgPooling(3, stride, 1)
        if kind == "reduce":
            return functools.partial(reduce, bn=d["bn"])
        return functools.partial(conv, d=d)

    def block(x: Any, b: dict) -> Any:
        kind = b["kind"]
        if kind == "conv":
            return conv(x, b)
        if kind == "residual":
            return Add()(x, conv(x, b, out=_channels(x)))
        if kind == "choice":
            return ChoiceOp(*[option(o, b["stride"]) for o in b["options"]])(x)
        if kind == "cell":
            states = [x]
            for edge_options in b["edges"]:
                edges = [ChoiceOp(*[option(o, 1) for o in edge_options])(state) for state in states[-2:]]
                states.append(Add()(*edges) if len(edges) > 1 else edges[0])
            return states[-1]
        if kind == "value":
            kernel = CategoricalParameter(b["kernels"], name="k")
            width = IntScalarParameter(b["low"], b["low"] + b["span"] * b["step"], step_size=b["step"], name="w")
            for param in (kernel, width):  # the supernet runs value choices at their largest value
                param.current_value = max(param.values())
            return norm(conv_fn(x, width, kernel), b["bn"])
        if kind == "depth":
            exits, h = [], x
            for _ in range(b["n"]):
                h = norm(conv_fn(Relu()(h), _channels(x), b["k"]), b["bn"])
                exits.append(h)
            return ChoiceOp(*exits)()
        if kind == "concat":
            return Concat(axis=1)(conv_fn(x, b["a"], 1), conv_fn(x, b["b"], 3))
        if kind == "slice":
            return Slice(1, 0, _channels(x) // 2)(x) if b["channels"] else Slice(2, start=b["start"])(x)
        raise ValueError(f"unknown block kind {kind!r}")

    @search_space
    def space() -> Any:
        axes = ("N", "C", "L") if dims == 1 else ("N", "C", "H", "W")
        net = Tensor("x", (1, spec["channels"], *[spec["size"]] * dims), axes)
        for b in spec["blocks"]:
            net = block(net, b)
        return linear(Flatten()(AdaptiveAvgPooling(1)(net)), spec["classes"])

    return space()


def _channels(x: Any) -> int:
    from supernet import lazy

    return int(lazy(x.shape()[1]))


# --- running a case -------------------------------------------------------------------------------
def variants() -> dict[str, Any]:
    """Plan variants compared with the reference: the full optimisation, then each pass off alone
    and on alone (as `optimize=` values of SupernetExecutor)."""
    from supernet.plan_options import PlanOptions

    out: dict[str, Any] = {"optimized": True}
    for name in PlanOptions.passes():
        out[f"without {name}"] = PlanOptions().without(name)
        out[f"only {name}"] = PlanOptions.none().but(name)
    return out


def run_case(
    spec: dict,
    which: Optional[Sequence[str]] = None,
    rtol: Optional[float] = None,
    atol: Optional[float] = None,
    precision: str = "32",
    errors: Optional[dict] = None,
    tensors: Optional[list] = None,
) -> list[str]:
    """Mismatches of each plan variant against the reference on one case (empty: all agree).

    `precision` ("32" or "bf16-mixed") runs every forward pass under search.precision's autocast,
    as a search at that precision does (loss on the float32 logits, outside autocast); tolerances
    default to TOLERANCES[precision]. In bf16 mode every variant restarts each step from the
    reference's parameters and buffers (bfloat16 rounding would otherwise compound, and a sampled
    gate flip on a drifted alpha), and every plan is compared with a float32 run of the reference
    ("reference 32"; see the module docstring). `errors`, if given, collects per plan and kind
    ("output", "grad", "buffer") the largest |diff| / max|reference| (bf16: / max|float32|) seen and,
    in bf16 mode, the multiple of bf16's error needed; `tensors`, in bf16 mode, one record per
    compared tensor: the scale, the floor, random rounding's and each plan's distance from float32.
    """
    import torch
    import torch.nn.functional as F

    from search.precision import MixedPrecision
    from search.strategies import get_strategy
    from supernet import SupernetExecutor

    if precision not in TOLERANCES:
        raise ValueError(f"precision must be one of {tuple(TOLERANCES)}, got {precision!r}")
    tolerance = TOLERANCES[precision]
    tolerance = dataclasses.replace(
        tolerance, rtol=tolerance.rtol if rtol is None else rtol, atol=tolerance.atol if atol is None else atol
    )
    mixed = precision != "32"
    amp = MixedPrecision(precision, "cpu")

    torch.manual_seed(spec["seed"])
    space = build_space(spec)
    strategy = get_strategy(spec["strategy"])
    chosen = variants()
    if which is not None:
        chosen = {k: v for k, v in chosen.items() if k in which}
    models = {"reference": SupernetExecutor(space, mixture=strategy.mixture(), seed=0, optimize=False)}
    models.update(
        {name: SupernetExecutor(space, mixture=strategy.mixture(), seed=0, optimize=v) for name, v in chosen.items()}
    )
    if mixed:  # first: the other runs of a pass replay its ReLU and max-pooling decisions (bf16_rounding.MatchedKinks)
        models = {FLOAT32: SupernetExecutor(space, mixture=strategy.mixture(), seed=0, optimize=False), **models}
        for name in ROUNDED:
            models[name] = SupernetExecutor(space, mixture=strategy.mixture(), seed=0, optimize=False)
    g = torch.Generator().manual_seed(spec["seed"])
    alphas = {
        k: torch.randn(a.shape, generator=g) for k, a in models["reference"].named_parameters() if k.startswith("arch.")
    }
    batch = (spec["batch"], *input_shape(spec))
    data = [
        (torch.randn(batch, generator=g), torch.randint(0, spec["classes"], (spec["batch"],), generator=g))
        for _ in range(2)
    ]
    for model in models.values():
        with torch.no_grad():
            for k, p in model.named_parameters():
                if k in alphas:
                    p.copy_(alphas[k])
    failures: list[str] = []
    kinks = MatchedKinks()
    rounding = torch.Generator().manual_seed(spec["seed"])  # random rounding's own stream

    def compare(what: str, a: Any, b: Any, name: str, check: bool = True) -> None:
        """float32: a (a variant) against b (the reference)."""
        if a is None or b is None:
            if check and (a is None) != (b is None) and not _is_zero(a if a is not None else b):
                failures.append(f"{name}: {what}: gradient present in one run only")
            return
        if a.shape != b.shape:
            failures.append(f"{name}: {what}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
            return
        scale = float(b.abs().max()) if b.numel() else 0.0
        bound = tolerance.atol * max(scale, 1.0)
        if errors is not None:
            diff = float((a.float() - b.float()).abs().max()) if b.numel() else 0.0
            used = errors.setdefault(name, {})
            used[_kind(what)] = max(used.get(_kind(what), 0.0), _ratio(diff, scale))
        if not torch.allclose(a.float(), b.float(), rtol=tolerance.rtol, atol=bound, equal_nan=True):
            diff = float((a.float() - b.float()).abs().max())
            failures.append(f"{name}: {what}: max |diff| {diff:.3g} (scale {scale:.3g}, tolerance {bound:.3g})")

    def compare_to_float32(what: str, runs: dict, floor: float = 0.0) -> None:
        """bf16: the reference and every variant against the float32 run, at one tolerance (`Tolerance`).
        Presence, shape and dtype: each variant as the reference."""
        truth, b = runs[FLOAT32], runs["reference"]
        for name in chosen:
            a = runs[name]
            if (a is None) != (b is None) and not _is_zero(a if a is not None else b):
                failures.append(f"{name}: {what}: gradient present in one run only")
            elif a is not None and b is not None and a.shape != b.shape:
                failures.append(f"{name}: {what}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
            elif a is not None and b is not None and a.dtype != b.dtype:
                failures.append(f"{name}: {what}: dtype {a.dtype} vs {b.dtype}")
        if truth is None or not truth.numel():
            return
        kind = _kind(what)
        scale = float(truth.abs().max())
        atol, share = tolerance.atol, tolerance.rounding
        if kind == "output":
            atol = atol if tolerance.output_atol is None else tolerance.output_atol
            share = share if tolerance.output_rounding is None else tolerance.output_rounding
        rounded = max((_distance(runs[r], truth) for r in ROUNDED), default=0.0)
        noise = max(_distance(b, truth) if b is not None else 0.0, share * rounded)
        plain = atol * scale + floor
        bound = plain + (tolerance.grad_noise if kind == "grad" else tolerance.noise) * noise
        if tensors is not None:
            tensors.append(
                {"what": what, "scale": scale, "floor": floor, "random rounding": rounded}
                | {name: _distance(runs[name], truth) for name in ["reference", *chosen]}
            )
        for name in ["reference", *chosen]:
            a = runs[name]
            if a is None or a.shape != truth.shape:
                continue
            diff = _distance(a, truth)
            if errors is not None:
                used = errors.setdefault(name, {})
                # the multiple of bf16's error this tensor needs on top of atol and the floor
                needed = _ratio(max(diff - plain, 0.0), noise)
                for key, value in ((kind, _ratio(diff, scale)), (f"{kind} noise multiple", needed)):
                    used[key] = max(used.get(key, 0.0), value)
            if not diff <= bound:
                failures.append(
                    f"{name}: {what}: max |diff| from float32 {diff:.3g} (scale {scale:.3g}, tolerance {bound:.3g}, "
                    f"the reference's {_distance(b, truth) if b is not None else 0.0:.3g}, random rounding's {rounded:.3g})"
                )

    def step(model: Any, x: Any, y: Any, frozen: bool, seed: int, name: str) -> Any:
        model.train()
        model.zero_grad(set_to_none=True)
        torch.manual_seed(seed)  # the same draws for sampled gates in every variant
        with _pass(name, mixed, kinks, rounding):
            with model.frozen_architecture() if frozen else _nothing(), _autocast(name, mixed, amp):
                out = model(x)
            F.cross_entropy(out.float(), y).backward()
        with torch.no_grad():
            for p in model.weight_parameters() if frozen else model.parameters():
                if p.grad is not None:
                    p -= 0.05 * p.grad
        return out.detach()

    with kinks.installed() if mixed else _nothing():
        for number in range(spec["steps"]):
            for phase, frozen in (("architecture step", False), ("weight step", True)):
                x, y = data[int(frozen)]
                seed = spec["seed"] * 100 + number * 2 + int(frozen)
                grads, outs = {}, {}
                if mixed:
                    _copy_state(models["reference"], models.values())
                for name, model in models.items():
                    try:
                        outs[name] = step(model, x, y, frozen, seed, name)
                    except Exception as err:
                        if name in ("reference", FLOAT32):  # a space the generator should not draw
                            return [f"invalid case: the reference raised {type(err).__name__}: {err}"]
                        raise
                    # a weight step promises the weights' gradients only (the logits get none in `frozen_architecture`)
                    grads[name] = {
                        k: (None if p.grad is None else p.grad.clone())
                        for k, p in model.named_parameters()
                        if not (frozen and k.startswith("arch."))
                    }
                where = f"step {number} {phase}"
                if not mixed:
                    for name in chosen:
                        compare(f"{where} output", outs[name], outs["reference"], name)
                        for k, gr in grads["reference"].items():
                            compare(f"{where} grad {k}", grads[name].get(k), gr, name)
                        reference_buffers = dict(models["reference"].named_buffers())
                        for k, buffer in models[name].named_buffers():
                            compare(f"{where} buffer {k}", buffer, reference_buffers[k], name)
                else:
                    if outs["reference"].dtype != amp.dtype:  # the last op, a Linear, runs in bf16 under autocast
                        failures.append(f"reference: {where}: output dtype {outs['reference'].dtype}, not {amp.dtype}")
                    # a gradient is compared down to a fraction of the step's largest one, not below
                    floor = tolerance.floor * max(
                        (float(g.abs().max()) for g in grads[FLOAT32].values() if g is not None), default=0.0
                    )
                    compare_to_float32(f"{where} output", outs)
                    for k in grads[FLOAT32]:
                        compare_to_float32(f"{where} grad {k}", {n: grads[n].get(k) for n in models}, floor)
                    buffers = {n: dict(m.named_buffers()) for n, m in models.items()}
                    for k in buffers[FLOAT32]:
                        compare_to_float32(f"{where} buffer {k}", {n: buffers[n].get(k) for n in models})
                if failures:
                    return failures
        if mixed:
            _copy_state(models["reference"], models.values())
        with torch.no_grad():
            outs = {}
            for name, model in models.items():
                model.eval()
                torch.manual_seed(spec["seed"])
                with _pass(name, mixed, kinks, rounding), _autocast(name, mixed, amp):
                    outs[name] = model(data[0][0])
    if mixed:
        compare_to_float32("eval output", outs)
    else:
        for name in chosen:
            compare("eval output", outs[name], outs["reference"], name)
    return failures


def _kind(what: str) -> str:
    """ "grad", "buffer" or "output": what a comparison's label names."""
    word = what.split()[-2]
    return word if word in ("grad", "buffer") else "output"


def _distance(a: Any, b: Any) -> float:
    """max |a - b| (float32), 0 for empty tensors, inf for a missing one."""
    if a is None or a.shape != b.shape:
        return float("inf")
    return float((a.float() - b.float()).abs().max()) if b.numel() else 0.0


def _autocast(name: str, mixed: bool, amp: Any) -> Any:
    """The autocast of a run: none at float32 and for the float32 run of a bf16 case."""
    return amp.autocast() if mixed and name != FLOAT32 else _nothing()


def _pass(name: str, mixed: bool, kinks: MatchedKinks, rounding: Any) -> Any:
    """What a bf16 case's pass runs inside: the float32 run records its kink decisions (the others
    replay them), and the random-rounding runs round randomly."""
    if not mixed:
        return _nothing()
    if name == FLOAT32:
        return kinks.record()
    return RandomRounding(rounding) if name in ROUNDED else _nothing()


def _copy_state(source: Any, models: Any) -> None:
    """Every model's parameters and buffers set to those of `source` (the same plan-independent names)."""
    import torch

    state = {**dict(source.named_parameters()), **dict(source.named_buffers())}
    with torch.no_grad():
        for model in models:
            if model is not source:
                for k, t in [*model.named_parameters(), *model.named_buffers()]:
                    t.copy_(state[k])


def _ratio(a: float, b: float) -> float:
    return a / b if b else (0.0 if a == 0 else float("inf"))


def _is_zero(t: Any) -> bool:
    return bool((t == 0).all())


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


# --- batches in subprocesses ----------------------------------------------------------------------
def _serve() -> None:
    """Child side: read specs (JSON lines on stdin), print one JSON result line per case."""
    import torch

    torch.set_num_threads(1)
    request = json.loads(sys.stdin.read())
    abort_at = int(os.environ.get("DIFFERENTIAL_ABORT_AT", -1))  # for the test that a crash is reported
    for index, spec in enumerate(request["specs"]):
        print(json.dumps({"start": index}), flush=True)
        if index == abort_at:
            os.abort()
        try:
            failures = run_case(spec, request.get("variants"), precision=request.get("precision", "32"))
        except Exception as err:  # a case the optimised engine cannot run while the reference can is a failure too
            failures = [f"raised {type(err).__name__}: {err}"]
        print(json.dumps({"case": index, "failures": failures[:5]}), flush=True)


def run_batch(
    specs: list[dict],
    which: Optional[Sequence[str]] = None,
    timeout: float = 600,
    env: Optional[dict] = None,
    precision: str = "32",
) -> list[dict]:
    """Run cases in one subprocess at `precision` (see run_case); one result per case: {"spec",
    "failures"} (a crash is a failure of the case that was running, and the cases after it are
    reported as not run)."""
    done = subprocess.run(
        [sys.executable, __file__, "--serve"],
        input=json.dumps({"specs": specs, "variants": which, "precision": precision}),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    results: dict[int, list[str]] = {}
    started = -1
    for line in done.stdout.splitlines():
        message = json.loads(line)
        if "start" in message:
            started = message["start"]
        else:
            results[message["case"]] = message["failures"]
    out = []
    for index, spec in enumerate(specs):
        if index in results:
            out.append({"spec": spec, "failures": results[index]})
        elif index == started:
            out.append({"spec": spec, "failures": [f"process died (exit {done.returncode}): {done.stderr[-1500:]}"]})
        else:
            out.append({"spec": spec, "failures": ["not run: an earlier case crashed the process"]})
    return out


def draw_specs(count: int, seed: int = 0) -> list[dict]:
    """`count` specs drawn from `case_specs()` reproducibly (hypothesis with a fixed seed)."""
    from hypothesis import HealthCheck, given, seed as hseed, settings

    drawn: list[dict] = []

    @hseed(seed)
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case_specs())
    def collect(spec: dict) -> None:
        drawn.append(spec)

    collect()
    return drawn[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=25, help="cases per subprocess")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="all", help="'all' or 'optimized'")
    parser.add_argument("--precision", default="32", choices=sorted(TOLERANCES), help="bf16-mixed: under autocast")
    parser.add_argument("--out", default=None, help="default: results/differential.json (bf16: differential_bf16.json)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve()
        return
    from tqdm import tqdm

    started = time.time()
    specs = draw_specs(args.cases, args.seed)
    which = None if args.variants == "all" else ["optimized"]
    results = []
    for start in tqdm(range(0, len(specs), args.batch), desc="batches"):
        results += run_batch(specs[start : start + args.batch], which, timeout=3600, precision=args.precision)
    failed = [r for r in results if r["failures"]]
    invalid = [r for r in failed if r["failures"][0].startswith("invalid case")]
    summary = {
        "cases": len(results),
        "failed": len(failed) - len(invalid),
        "invalid": len(invalid),
        "variants": args.variants,
        "seed": args.seed,
        "precision": args.precision,
        "tolerance": dataclasses.asdict(TOLERANCES[args.precision]),
        "seconds": round(time.time() - started, 1),
        "failures": failed,
    }
    name = "differential.json" if args.precision == "32" else "differential_bf16.json"
    Path(args.out or ROOT / "benchmarks" / "results" / name).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}))
    for r in failed[:5]:
        print(json.dumps(r)[:2000])


if __name__ == "__main__":
    main()
