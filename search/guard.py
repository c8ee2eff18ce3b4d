"""Guarded steps: a step whose loss or gradients are not finite (NaN or inf) is skipped.

`StepGuard` watches the loss function and the two optimizers of a `BilevelOptimizer`. Just before
an optimizer steps (a step pre-hook, after any gradient averaging), it checks that every loss
computed since the step began and every gradient is finite; if not, it drops the gradients, so
the optimizer leaves the parameters and its own state untouched, restores the normalisation
statistics the step's forward pass changed, and warns, naming the step. After `max_bad_steps`
consecutive skipped steps of one kind it raises a `FloatingPointError` that names the last good
checkpoint. In a distributed search the decision is taken jointly: all processes skip together.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import torch

from .distributed import SINGLE_PROCESS, DistributedContext

KINDS = ("architecture", "weight")
Loss = Callable[..., torch.Tensor]


class StepGuard:
    """Skips non-finite steps; stops the search after `max_bad_steps` consecutive ones of a kind.

    `last_good_checkpoint` is called to name, in the error, where the search can be resumed from.
    """

    def __init__(
        self,
        max_bad_steps: int,
        context: DistributedContext = SINGLE_PROCESS,
        last_good_checkpoint: Callable[[], Optional[str]] = lambda: None,
    ) -> None:
        if isinstance(max_bad_steps, bool) or not isinstance(max_bad_steps, int) or max_bad_steps < 1:
            raise ValueError(
                f"max_bad_steps must be a positive int (or None to skip the checks), got {max_bad_steps!r}"
            )
        self.max_bad_steps = max_bad_steps
        self.context = context
        self.last_good_checkpoint = last_good_checkpoint
        self.consecutive = {kind: 0 for kind in KINDS}
        self.skipped_total = {kind: 0 for kind in KINDS}
        self._epoch_steps = {kind: [0, 0] for kind in KINDS}  # (steps, skipped) of each kind this epoch
        self.skipped = False  # whether the last guarded step was skipped
        self._kind: Optional[str] = None
        self._losses: list[torch.Tensor] = []
        self._reason = ""

    def watch_loss(self, loss: Loss) -> Loss:
        """`loss`, recording every value it computes inside a guarded step."""

        def watched(*args: Any, **kwargs: Any) -> torch.Tensor:
            value = loss(*args, **kwargs)
            if self._kind is not None and isinstance(value, torch.Tensor):
                self._losses.append(value.detach())
            return value

        watched.__wrapped__ = loss  # type: ignore[attr-defined]
        return watched

    def attach(self, optimizer: torch.optim.Optimizer) -> Any:
        """Check every step of `optimizer` (register last: after any gradient averaging)."""
        params = [p for group in optimizer.param_groups for p in group["params"]]

        def hook(_optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
            self._check(params)

        return optimizer.register_step_pre_hook(hook)

    @contextmanager
    def step(self, kind: str, epoch: int, step: int, module: torch.nn.Module) -> Iterator[None]:
        """Guard one `kind` step ("architecture" or "weight") of the search at (epoch, step)."""
        if kind not in KINDS:
            raise ValueError(f"unknown step kind {kind!r}; known: {KINDS}")
        saved = [(b, b.detach().clone()) for b in module.buffers()] if kind == "weight" else []
        self._kind, self._losses, self.skipped, self._reason = kind, [], False, ""
        try:
            yield
        finally:
            self._kind, self._losses = None, []
        self._epoch_steps[kind][0] += 1
        if not self.skipped:
            self.consecutive[kind] = 0
            return
        self._epoch_steps[kind][1] += 1
        with torch.no_grad():  # the skipped forward pass may have changed running statistics
            for buffer, value in saved:
                buffer.copy_(value)
        self.consecutive[kind] += 1
        self.skipped_total[kind] += 1
        count = self.consecutive[kind]
        if self.context.is_main:  # the processes skip together: one warning is enough
            warnings.warn(
                f"search step {step} (epoch {epoch}): {self._reason}; skipped this {kind} step "
                f"({count} in a row; the search stops at {self.max_bad_steps})",
                RuntimeWarning,
                stacklevel=3,
            )
        if count >= self.max_bad_steps:
            checkpoint = self.last_good_checkpoint()
            where = (
                f"the last good checkpoint is {checkpoint} (resume from it with resume=True)"
                if checkpoint
                else "no checkpoint was written (pass checkpoint_dir= to keep one per epoch)"
            )
            raise FloatingPointError(
                f"the search stopped at step {step} (epoch {epoch}): {count} consecutive {kind} steps had a "
                f"non-finite loss or gradient (last: {self._reason}); {where}"
            )

    def end_epoch(self, epoch: int) -> None:
        """Raise if every step of a kind in this epoch was skipped (nothing was learned: e.g. the
        data are all NaN), else start counting the next epoch."""
        counts, self._epoch_steps = self._epoch_steps, {kind: [0, 0] for kind in KINDS}
        for kind, (steps, skipped) in counts.items():
            if steps and skipped == steps:
                raise FloatingPointError(
                    f"every {kind} step of epoch {epoch} ({steps}) had a non-finite loss or gradient, so the epoch learned "
                    f"nothing (last: {self._reason}); check the data and the loss for NaN or inf values"
                )

    def _check(self, params: list[torch.Tensor]) -> None:
        if self._kind is None:
            return
        grads = [p.grad for p in params if p.grad is not None]
        values = [loss.float().sum().reshape(1) for loss in self._losses]
        if grads:
            values.append(torch.nn.utils.get_total_norm(grads).float().reshape(1).to(grads[0].device))
        finite = bool(torch.isfinite(torch.cat([v.to(values[0].device) for v in values])).all()) if values else True
        bad = self.context.any(not finite)
        if not bad:
            return
        if self._losses and not all(bool(torch.isfinite(loss).all()) for loss in self._losses):
            shown = ", ".join(f"{loss.float().sum().item():g}" for loss in self._losses)
            self._reason = f"non-finite {self._kind} loss ({shown})"
        elif not finite:
            self._reason = f"non-finite {self._kind} gradients"
        else:
            self._reason = f"non-finite {self._kind} loss or gradients on another process"
        for param in params:
            param.grad = None
        self.skipped = True

    def state_dict(self) -> dict[str, Any]:
        """The consecutive and total skipped-step counts (for checkpoints)."""
        return {"consecutive": dict(self.consecutive), "skipped_total": dict(self.skipped_total)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the counts saved by `state_dict`."""
        self.consecutive.update(state["consecutive"])
        self.skipped_total.update(state["skipped_total"])
