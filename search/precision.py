"""Mixed precision of a search, a retraining or an evaluation: autocast and the gradient scalers.

`precision` takes Lightning's names:

- "32": everything in float32 (the default; no autocast, bit-identical to a run without the option);
- "bf16-mixed": the forward passes run under `torch.autocast(device_type, dtype=torch.bfloat16)`;
  no scaler (bfloat16 has float32's exponent range);
- "16-mixed": autocast to float16, and one `torch.amp.GradScaler` per optimizer (weights, alphas):
  the loss is scaled before backward, the gradients unscaled before clipping and stepping, and a
  step whose scaled gradients overflowed is skipped by the scaler, which then lowers its scale.

What stays in float32 whatever the precision: the parameters, the alphas and the mixing weights
drawn from them (the executor computes them with autocast disabled: softmax, Dirichlet and Gumbel
maths), BatchNorm's running statistics (float32 buffers), the loss (computed on the logits cast to
float32, outside autocast), the cost penalty and every regulariser (outside autocast), and the
confidence (from the float32 alphas).

On CPU, "16-mixed" runs (torch 2.13 autocasts to float16 on CPU and `GradScaler("cpu")` works)
but float16 convolutions are emulated there and several times slower than float32: it is meant
for checking a GPU configuration on a laptop, not for speed. A device type that torch cannot
autocast (e.g. "meta"), and "bf16-mixed" on a CUDA device without bfloat16, are refused.

A scaler's skipped step is not a failure: the bad-step guard (search.guard) does not count it
(`MixedPrecision.step` drops the overflowing gradients before the optimizer, and with it the
guard's check, runs); the skips are counted in `MixedPrecision.skipped`.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Optional, Sequence, Union

import torch

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
DTYPES = {"32": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
KINDS = ("weight", "architecture")
INIT_SCALE = 2.0**16  # GradScaler's default


def check_precision(precision: Any, device: Union[str, torch.device, None] = None) -> str:
    """`precision` if it is one of PRECISIONS and `device` can run it, else a ValueError naming both."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "32" or device is None:
        return precision
    kind = torch.device(device).type
    if not torch.amp.is_autocast_available(kind):
        raise ValueError(
            f"precision={precision!r} needs autocast on the device, and torch {torch.__version__} has none for "
            f"device {str(device)!r}; use precision='32' there"
        )
    if precision == "bf16-mixed" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"precision='bf16-mixed': device {str(device)!r} does not support bfloat16; use precision='16-mixed'"
        )
    return precision


class MixedPrecision:
    """Autocast and the gradient scalers of one run at `precision` on `device_type` ("cpu", "cuda")."""

    def __init__(self, precision: str = "32", device_type: str = "cpu", init_scale: Optional[float] = None) -> None:
        self.precision = check_precision(precision, device_type)
        self.device_type = device_type
        self.dtype = DTYPES[self.precision]
        scaled = self.precision == "16-mixed"
        scale = INIT_SCALE if init_scale is None else init_scale
        self.scalers = {kind: torch.amp.GradScaler(device_type, init_scale=scale) for kind in KINDS} if scaled else {}
        self.skipped = {kind: 0 for kind in KINDS}  # steps a scaler skipped (overflowing gradients)

    @property
    def enabled(self) -> bool:
        """Whether the forward passes run under autocast (any precision but "32")."""
        return self.dtype is not None

    def autocast(self) -> ContextManager[Any]:
        """The context of a forward pass: autocast to the precision's dtype (nothing at "32")."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor, inputs: Sequence[torch.Tensor], kind: str) -> None:
        """`loss.backward(inputs=inputs)`, the loss scaled by the `kind` step's scaler if there is one."""
        scaler = self.scalers.get(kind)
        (scaler.scale(loss) if scaler is not None else loss).backward(inputs=list(inputs))

    def unscale(self, optimizer: torch.optim.Optimizer, kind: str) -> None:
        """Divide the gradients of `optimizer` by the scale (before clipping them); nothing without a scaler."""
        scaler = self.scalers.get(kind)
        if scaler is not None:
            scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer, kind: str, loss: torch.Tensor) -> bool:
        """Step `optimizer` (after `unscale`); returns False when the scaler skipped the step.

        With a scaler, a step whose unscaled gradients are not finite while `loss` is finite is an
        overflow of the scaled gradients: the gradients are dropped before the optimizer steps (so
        it changes nothing and the guard attached to it sees no bad value), the skip is counted and
        the scale lowered. A non-finite loss is a failure of the step itself: the gradients are
        left to the guard, which skips and counts the step."""
        scaler = self.scalers.get(kind)
        if scaler is None:
            optimizer.step()
            return True
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        grads_finite = not params or bool(torch.isfinite(torch.nn.utils.get_total_norm([p.grad for p in params])))
        overflow = not grads_finite and bool(torch.isfinite(loss.detach()).all())
        if overflow:  # the optimizer still steps, on no gradient: it changes nothing, its schedule goes on
            self.skipped[kind] += 1
            for param in params:
                param.grad = None
        optimizer.step()
        if params:  # unscale_ found the overflow (or not): update lowers the scale after one, grows it over time
            scaler.update()
        return not overflow

    def scale(self, kind: str) -> Optional[float]:
        """The current scale of the `kind` step's scaler (None without one)."""
        scaler = self.scalers.get(kind)
        return float(scaler.get_scale()) if scaler is not None else None

    def state_dict(self) -> dict[str, Any]:
        """The scalers' states and the skip counts (for checkpoints; plain numbers)."""
        return {
            "precision": self.precision,
            "scalers": {kind: scaler.state_dict() for kind, scaler in self.scalers.items()},
            "skipped": dict(self.skipped),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (of a run at the same precision)."""
        if state["precision"] != self.precision:
            raise ValueError(
                f"the saved state is of precision={state['precision']!r}, this run has precision={self.precision!r}"
            )
        for kind, scaler in self.scalers.items():
            scaler.load_state_dict(state["scalers"][kind])
        self.skipped.update(state["skipped"])
