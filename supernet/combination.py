"""Weighted sums of option outputs, the kernels of a mixture: `sum_t c_t * y_t` in one buffer.

`linear_combination` accumulates in place into one fresh tensor, one fused kernel per term
(`add_`, `add_(alpha=c)`, `addcmul_`), each term a tensor with a coefficient that is 1 (None), a
Python float or a 0-d tensor. `LinearCombination` is the same sum as a single autograd node: its
backward hands each term `c_t * grad` (the grad itself for coefficient 1) and each tensor
coefficient the dot product `<grad, y_t>`, computed without materialising `grad * y_t`; a term
whose coefficient is exactly zero can be left to the backward pass (computed there only for that
dot product), and a term cheap to compute again need not be kept for it.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

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


class LinearCombination(torch.autograd.Function):
    """`apply(kinds, extras, *ys, *coefs)`: sum_t c_t * y_t with, per term, `kinds[t]`:

    0: c_t = 1; 1: c_t = extras[t], a float;
    2: c_t the next 0-d tensor of `coefs`; `extras[t]` = (scale, recompute): `scale`, False when
       the value of c_t is exactly 1 (the forward pass adds y_t as it is); `recompute`, None (y_t
       is kept for the gradient <grad, y_t> of c_t) or a function computing y_t again in the
       backward pass (y_t is not kept: cheaper when what it is computed from is kept anyway).
       y_t gets `grad` itself: scaling it by c_t is left to a `ScaledGradient` in front of y_t;
    3: c_t the next tensor of `coefs`, exactly zero, and y_t not computed in the forward pass:
       `extras[t]()` computes it in the backward pass, for the gradient <grad, y_t> of c_t.
    `ys` holds the terms of kinds 0-2, `coefs` the coefficients of kinds 2 and 3. A sum of one
    weight-1 term is that term itself (no copy)."""

    @staticmethod
    def forward(ctx: Any, kinds: tuple, extras: tuple, *args: torch.Tensor) -> torch.Tensor:
        n = sum(k != 3 for k in kinds)
        ys, coefs = args[:n], iter(args[n:])
        cs, kept = [], []
        for k, extra in zip(kinds, extras):
            if k == 3:
                next(coefs)
            elif k == 2:
                c = next(coefs)
                cs.append(c if extra[0] else None)
                if extra[1] is None:
                    kept.append(ys[len(cs) - 1])
            else:
                cs.append(None if k == 0 else extra)
        ctx.kinds, ctx.extras, ctx.n = kinds, extras, n
        ctx.save_for_backward(*kept, *args[n:])
        ctx.kept = len(kept)
        return linear_combination(ys, cs)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        kinds, extras, n = ctx.kinds, ctx.extras, ctx.n
        saved = ctx.saved_tensors
        kept, coefs = iter(saved[:ctx.kept]), iter(saved[ctx.kept:])
        needs = ctx.needs_input_grad[2:]
        grad_ys: list[Optional[torch.Tensor]] = []
        grad_cs: list[Optional[torch.Tensor]] = []
        for kind, extra in zip(kinds, extras):
            if kind == 0:
                grad_ys.append(grad if needs[len(grad_ys)] else None)
            elif kind == 1:
                grad_ys.append(grad * extra if needs[len(grad_ys)] else None)
            else:
                c = next(coefs)
                if kind == 2:
                    recompute = extra[1]
                    y = next(kept) if recompute is None else None
                    grad_ys.append(grad if needs[len(grad_ys)] else None)
                else:
                    y, recompute = None, extra
                if needs[n + len(grad_cs)]:
                    grad_cs.append(_dot(grad, y if y is not None else recompute()).to(c.dtype).reshape(c.shape))
                else:
                    grad_cs.append(None)
        return (None, None, *grad_ys, *grad_cs)


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


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b), without materialising the product when both share a dense layout."""
    flat_a, flat_b = _flat(a), _flat(b)
    if flat_a is not None and flat_b is not None and _same_layout(a, b):
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
