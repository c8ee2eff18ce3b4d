"""DARTS, second order (Liu et al., 2019): the architecture gradient of the unrolled objective.

The alphas follow the gradient of L_val(w', alpha) at the one-step unrolled weights
w' = w - xi * grad_w L_train(w, alpha):

    grad = d_alpha L_val(w', alpha) - xi * grad2_{alpha,w} L_train(w, alpha) . grad_w' L_val(w', alpha)

with the Hessian-vector product by central finite differences, as in the paper:
(d_alpha L_train(w + r v, alpha) - d_alpha L_train(w - r v, alpha)) / 2r, v = grad_w' L_val,
r = 0.01 / |v|. The unrolled and perturbed weights are evaluated with `torch.func.functional_call`
on the supernet itself (no copy of the model); the normalisation statistics are restored afterwards.
xi defaults to the current weight learning rate (the paper's xi = eta). The unrolled step is the
plain gradient step of the paper's equation (no momentum or weight decay). The loss and logits
returned (for the search metrics) are those of the unrolled weights.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn
from torch.func import functional_call

from supernet.mixture import Phase

from ..bilevel import Batch, BilevelOptimizer, frozen_buffers

from .base import Strategy


class SecondOrderDARTS(Strategy):
    """DARTS with the unrolled (second-order) architecture gradient."""

    name = "darts2"
    scaled_gradients = False  # the unrolled gradient is taken by hand (autograd.grad), past any scaler

    def __init__(self, xi: Optional[float] = None, r: float = 0.01, warmup_epochs: int = 0) -> None:
        super().__init__(warmup_epochs=warmup_epochs)
        self.xi, self.r = xi, r

    def architecture_step(
        self, bilevel: BilevelOptimizer, train_batch: Batch, val_batch: Batch
    ) -> tuple[torch.Tensor, torch.Tensor]:
        grads, loss, logits = self.unrolled_gradient(bilevel, train_batch, val_batch)
        bilevel.arch_optimizer.zero_grad(set_to_none=True)
        for alpha, grad in zip(bilevel.alphas, grads):
            alpha.grad = grad
        bilevel.arch_optimizer.step()
        return loss, logits

    def unrolled_gradient(
        self, bilevel: BilevelOptimizer, train_batch: Batch, val_batch: Batch
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """(gradient for each of `bilevel.alphas`, unrolled validation loss, its logits)."""
        supernet, loss_fn, alphas = bilevel.supernet, bilevel.loss, list(bilevel.alphas)
        (x_train, y_train), (x_val, y_val) = train_batch, val_batch
        names, weights = zip(*supernet.named_weight_parameters())
        xi = self.xi if self.xi is not None else bilevel.weight_optimizer.param_groups[0]["lr"]
        supernet.train()

        def at(values: list[torch.Tensor], requires_grad: bool) -> dict[str, nn.Parameter]:
            # Parameters, not plain tensors: the executor reads weights with get_parameter
            return {n: nn.Parameter(v.detach(), requires_grad=requires_grad) for n, v in zip(names, values)}

        autocast = bilevel.precision.autocast  # forward passes only: the losses in float32

        def forward(params: Optional[dict[str, nn.Parameter]], x: torch.Tensor) -> torch.Tensor:
            with autocast():
                out = supernet(x) if params is None else functional_call(supernet, params, (x,))
            return out.float()

        with frozen_buffers(supernet), supernet.in_phase(Phase.ARCHITECTURE_STEP):
            train_loss = loss_fn(forward(None, x_train), y_train)
            dw = _grads(train_loss, weights)
            unrolled = at([w - xi * g for w, g in zip(weights, dw)], requires_grad=True)
            logits = forward(unrolled, x_val)
            val_loss = loss_fn(logits, y_val)
            extra = self.architecture_penalty(bilevel)
            total = val_loss if extra is None else val_loss + extra
            grads = _grads(total, [*alphas, *unrolled.values()])
            d_alpha, v = grads[: len(alphas)], grads[len(alphas) :]
            norm = torch.cat([g.reshape(-1) for g in v]).norm()
            if float(norm) > 0:
                r = self.r / norm
                sides = []
                for sign in (1.0, -1.0):
                    perturbed = at([w + sign * r * g for w, g in zip(weights, v)], requires_grad=False)
                    sides.append(_grads(loss_fn(forward(perturbed, x_train), y_train), alphas))
                d_alpha = [d - xi * (p - m) / (2 * r) for d, p, m in zip(d_alpha, *sides)]
        return [d.detach() for d in d_alpha], val_loss.detach(), logits.detach()

    def config(self) -> dict[str, Any]:
        return {**super().config(), "xi": self.xi, "r": self.r}


def _grads(loss: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """d loss / d inputs, zeros for inputs the loss does not depend on."""
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return [torch.zeros_like(i) if g is None else g for i, g in zip(inputs, grads)]
