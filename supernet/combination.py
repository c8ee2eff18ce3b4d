"""Weighted sums of option outputs, the kernels of a mixture: `sum_t c_t * y_t` in one buffer.

`linear_combination` accumulates in place into one fresh tensor, one fused kernel per term
(`add_`, `add_(alpha=c)`, `addcmul_`), each term a tensor with a coefficient that is 1 (None), a
Python float or a 0-d tensor. `LinearCombination` is the same sum as a single autograd node (its
terms typed `Unit`, `Constant`, `Weighted`, `OffGate`): its
backward hands each term `c_t * grad` (the grad itself for coefficient 1) and each tensor
coefficient the dot product `<grad, y_t>`, computed without materialising `grad * y_t`; a term
whose coefficient is exactly zero can be left to the backward pass (computed there only for that
dot product), and a term cheap to compute again need not be kept for it.
"""

from __future__ import annotations

import contextlib

from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import torch


def linear_combination(ys: Sequence[torch.Tensor], cs: Sequence[Any]) -> torch.Tensor:
    """sum_t cs[t] * ys[t] (None: 1) accumulated in place in one fresh buffer (the first weight-1
    term is not copied when it is the only one)."""
    acc = pending = None
    for y, c in zip(ys, cs):
        if type(c) is float and c == 1.0:
            c = None
        if acc is None:
            if pending is None:
                if c is None:
                    pending = y
                else:
                    acc = y * c
            elif c is None:
                acc = pending + y
            elif type(c) is float:
                acc = torch.add(pending, y, alpha=c)
            else:
                acc = torch.addcmul(pending, y, c)
        elif c is None:
            acc.add_(y)
        elif type(c) is float:
            acc.add_(y, alpha=c)
        else:
            acc.addcmul_(y, c)
    return pending if acc is None else acc


class Unit(NamedTuple):
    """A term added as it is (coefficient 1, no gradient to it)."""


class Constant(NamedTuple):
    """A term times a Python float (no gradient to it)."""

    value: float


class Weighted(NamedTuple):
    """A term times the next 0-d tensor of the coefficients, which gets `<grad, y>`.

    `scale`: False when the coefficient's value is exactly 1 (a sampled gate that is on): the
    forward pass adds the term as it is. `recompute`: None (the term is kept for the coefficient's
    gradient) or a function computing it again in the backward pass (not kept: cheaper when what
    it is computed from is kept anyway). The term gets `grad` itself: scaling it by the coefficient
    is left to a `ScaledGradient` in front of it."""

    scale: bool = True
    recompute: Optional[Callable[[], torch.Tensor]] = None


class OffGate(NamedTuple):
    """A term whose coefficient (the next tensor of the coefficients) is exactly zero, not computed
    in the forward pass: `compute()` computes it in the backward pass, for the coefficient's gradient."""

    compute: Callable[[], torch.Tensor]


Term = Union[Unit, Constant, Weighted, OffGate]


class LinearCombination(torch.autograd.Function):
    """`apply(terms, *ys, *coefs)`: sum_t c_t * y_t, one `Term` per entry of `terms`.

    `ys` holds the values of the terms that are not `OffGate`, in order; `coefs` the coefficients
    of the `Weighted` and `OffGate` terms, in order. A sum of one `Unit` term is that term itself
    (no copy)."""

    @staticmethod
    def forward(ctx: Any, terms: tuple, *args: torch.Tensor) -> torch.Tensor:
        n = sum(not isinstance(t, OffGate) for t in terms)
        ys, coefs = args[:n], iter(args[n:])
        cs, kept = [], []
        for term in terms:
            if isinstance(term, OffGate):
                next(coefs)
            elif isinstance(term, Weighted):
                c = next(coefs)
                cs.append(c if term.scale else None)
                if term.recompute is None:
                    kept.append(ys[len(cs) - 1])
            else:
                cs.append(term.value if isinstance(term, Constant) else None)
        ctx.terms, ctx.n, ctx.kept = terms, n, len(kept)
        ctx.autocast = _autocast_state(args[0].device.type if args else "cpu")
        ctx.save_for_backward(*kept, *args[n:])
        return linear_combination(ys, cs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        saved = ctx.saved_tensors
        kept, coefs = iter(saved[: ctx.kept]), iter(saved[ctx.kept :])
        needs = ctx.needs_input_grad[1:]
        grad_ys: list[Optional[torch.Tensor]] = []
        grad_cs: list[Optional[torch.Tensor]] = []
        for term in ctx.terms:
            if isinstance(term, (Unit, Constant)):
                wanted = needs[len(grad_ys)]
                grad_ys.append(None if not wanted else grad if isinstance(term, Unit) else grad * term.value)
                continue
            c = next(coefs)
            if isinstance(term, Weighted):
                y = next(kept) if term.recompute is None else None
                compute = term.recompute
                grad_ys.append(grad if needs[len(grad_ys)] else None)
            else:
                y, compute = None, term.compute
            if needs[ctx.n + len(grad_cs)]:
                if y is None:
                    with ctx.autocast():  # computed again as the forward pass computed it (autocast or not)
                        y = compute()
                grad_cs.append(_dot(grad, y).to(c.dtype).reshape(c.shape))
            else:
                grad_cs.append(None)
        return (None, *grad_ys, *grad_cs)


class ScaledGradient(torch.autograd.Function):
    """`apply(y, c)`: y itself (no copy) in the forward pass, `c * grad` in the backward pass (c a
    constant). In front of a term of `LinearCombination`, it scales the term's gradient when the
    term's own backward is about to use it, rather than all terms' at once in the sum's backward:
    at most one scaled gradient is alive at a time, as with one product node per term."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        ctx.c = c
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        return grad * ctx.c, None


def _autocast_state(kind: str) -> Callable[[], Any]:
    """A context factory re-entering the autocast state of device type `kind` as it is now."""
    if not (torch.amp.is_autocast_available(kind) and torch.is_autocast_enabled(kind)):
        return contextlib.nullcontext
    dtype = torch.get_autocast_dtype(kind)
    return lambda: torch.autocast(kind, dtype=dtype)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b), without materialising the product when both share a dense layout."""
    flat_a, flat_b = _flat(a), _flat(b)
    if flat_a is not None and flat_b is not None and _same_layout(a, b):
        if a.is_cpu and a.dtype in (torch.bfloat16, torch.float16):
            # ATen's CPU dot in 16 bits is a scalar loop, ~8x slower than float32's (1M elements: 3.0 ms,
            # 0.4 ms cast up and dotted, docs/precision.md); float32 is also the exact sum
            return torch.dot(flat_a.float(), flat_b.float())
        return torch.dot(flat_a, flat_b)
    return (a * b).sum()


def _flat(t: torch.Tensor) -> Optional[torch.Tensor]:
    """A 1-D view of every element of a dense tensor (contiguous or channels-last), else None."""
    if t.is_contiguous():
        return t.view(-1)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).reshape(-1)
    return None


def _same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.stride() == b.stride() and a.dtype == b.dtype
