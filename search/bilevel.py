"""The bilevel optimizer: architecture steps on validation batches, weight steps on training batches.

Defaults follow the DARTS paper: weights SGD(lr 0.025, momentum 0.9, wd 3e-4) with a cosine
schedule and gradient clipping at 5; alphas Adam(betas (0.5, 0.999), wd 1e-3) at the strategy's
default learning rate for the search's number of steps (`Strategy.default_arch_lr`: DARTS's 3e-4
for the softmax strategies, scaled with the step count for the sampling ones) unless `arch_lr` is given.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Optional

import torch

from supernet import SupernetExecutor
from supernet.mixture import Phase

from .optim_check import check_optim_settings

from .precision import MixedPrecision

DEFAULT_ARCH_LR = 3e-4  # DARTS's, for 50 epochs of CIFAR-10 (about 20,000 steps)


@dataclass
class BilevelConfig:
    """Optimizer settings of a search (every field overridable)."""

    weight_lr: float = 0.025
    weight_lr_min: float = 0.001
    weight_momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    arch_lr: Optional[float] = None  # None: the strategy's default for the search's step count
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3

    def __post_init__(self) -> None:
        check_optim_settings(self)  # each setting's type and range, named

    @classmethod
    def from_any(cls, value: "BilevelConfig | dict | None") -> "BilevelConfig":
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            unknown = set(value) - set(asdict(cls()))
            if unknown:
                raise TypeError(f"unknown optimizer setting(s) {sorted(unknown)}; known: {sorted(asdict(cls()))}")
            return cls(**value)
        raise TypeError(f"optim must be a BilevelConfig or a dict, got {type(value).__name__}")


Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]  # (inputs, targets)


Penalty = Callable[[], torch.Tensor]


def architecture_lr(config: BilevelConfig, strategy: Any = None, epochs: int = 0) -> float:
    """The architecture learning rate, decided here only: `config.arch_lr` when given, else the
    strategy's default for its architecture steps in `epochs` epochs (`Strategy.default_arch_lr`,
    after `Strategy.plan`), else DARTS's DEFAULT_ARCH_LR without a strategy."""
    if config.arch_lr is not None:
        return config.arch_lr
    if strategy is None:
        return DEFAULT_ARCH_LR
    return float(strategy.default_arch_lr(strategy.architecture_steps(epochs)))


class BilevelOptimizer:
    """Owns the two optimizers and the schedule; performs one weight or architecture step.

    `model` is the module weight steps run (default: the supernet; DistributedDataParallel around
    it in a distributed search); `penalty` is a term every strategy adds to the architecture loss
    (e.g. the hardware cost of `fit_supernet(cost=...)`), None for none. `strategy` (planned for
    `total_epochs`) decides the architecture learning rate when `config` sets none
    (`architecture_lr`); `self.config` holds the one used. `precision` (search.precision): the
    forward passes run under its autocast, the loss is computed in float32 on the logits, the
    regulariser outside autocast, and with "16-mixed" both steps go through its gradient scalers.
    `forward`: the module both steps run (default: the supernet; its compiled form with
    `fit_supernet(compile=True)`, search.compiled_step).
    """

    def __init__(
        self,
        supernet: SupernetExecutor,
        loss: Loss,
        config: BilevelConfig,
        total_epochs: int,
        *,
        model: Optional[torch.nn.Module] = None,
        penalty: Optional[Penalty] = None,
        strategy: Any = None,
        precision: Optional[MixedPrecision] = None,
        forward: Optional[torch.nn.Module] = None,
    ) -> None:
        arch_lr = architecture_lr(config, strategy, total_epochs)
        self.supernet, self.loss, self.config = supernet, loss, replace(config, arch_lr=arch_lr)
        self.weights = supernet.weight_parameters()
        self.forward: torch.nn.Module = forward if forward is not None else supernet
        self.model: torch.nn.Module = model if model is not None else self.forward
        self.alphas = supernet.arch_parameters()
        self.penalty = penalty
        self.precision = precision if precision is not None else MixedPrecision()
        self.weight_optimizer = torch.optim.SGD(
            self.weights, lr=config.weight_lr, momentum=config.weight_momentum, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.weight_optimizer, max(1, total_epochs), eta_min=config.weight_lr_min
        )
        self.arch_optimizer = torch.optim.Adam(
            self.alphas, lr=arch_lr, betas=config.arch_betas, weight_decay=config.arch_weight_decay
        )

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, passes: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on the weights only; returns (loss, logits) detached. With `passes` > 1
        the batch runs that many times (sampling mixtures draw a path each time) and the
        gradients of all passes are summed before the one step (FairNAS); the loss returned is
        their mean, the logits those of the last pass."""
        if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
            raise ValueError(f"passes must be a positive int, got {passes!r}")
        self.supernet.train()
        self.weight_optimizer.zero_grad(set_to_none=True)
        precision = self.precision
        total = 0.0
        with _frozen_architecture(self.supernet), _in_phase(self.supernet, Phase.WEIGHT_STEP):  # alphas get no gradient
            for _ in range(passes):
                with precision.autocast():
                    logits = self.model(x)
                loss = self.loss(logits.float(), y)
                precision.backward(loss, self.weights, "weight")
                total = total + loss.detach()
        loss = total / passes
        precision.unscale(self.weight_optimizer, "weight")
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        precision.step(self.weight_optimizer, "weight", loss)
        return loss.detach(), logits.detach().float()

    def architecture_step(
        self, x: torch.Tensor, y: torch.Tensor, regularizer: Optional[Callable[[], Any]] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam step on the alphas only (first order); the weights and the normalisation
        statistics are left exactly as they were. Returns (loss, logits) detached."""
        self.supernet.train()
        self.arch_optimizer.zero_grad(set_to_none=True)
        precision = self.precision
        # buffers restored after backward (autograd saved them)
        with frozen_buffers(self.supernet), _in_phase(self.supernet, Phase.ARCHITECTURE_STEP):
            with precision.autocast():
                logits = self.forward(x)
            loss = self.loss(logits.float(), y)
            extra = regularizer() if regularizer is not None else None  # in float32: outside autocast
            total = loss if extra is None else loss + extra
            precision.backward(total, self.alphas, "architecture")
        precision.unscale(self.arch_optimizer, "architecture")
        precision.step(self.arch_optimizer, "architecture", total)
        return loss.detach(), logits.detach().float()

    def end_epoch(self) -> None:
        """Advance the weight learning-rate schedule by one epoch."""
        self.scheduler.step()

    def state_dict(self) -> dict:
        """The optimizer and scheduler states (for checkpoints)."""
        state = {
            "weights": self.weight_optimizer.state_dict(),
            "alphas": self.arch_optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }
        if self.precision.enabled:  # "32" keeps the checkpoint as it was before precisions existed
            state["precision"] = self.precision.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""
        self.weight_optimizer.load_state_dict(state["weights"])
        self.arch_optimizer.load_state_dict(state["alphas"])
        self.scheduler.load_state_dict(state["scheduler"])
        if "precision" in state or self.precision.enabled:
            self.precision.load_state_dict(state.get("precision", {"precision": "32"}))


def _frozen_architecture(model: Any) -> Any:
    """`model.frozen_architecture()` (SupernetExecutor), or nothing for modules without one."""
    frozen = getattr(model, "frozen_architecture", None)
    return frozen() if frozen is not None else contextlib.nullcontext()


def _in_phase(model: Any, phase: Phase) -> Any:
    """`model.in_phase(phase)` (SupernetExecutor: its mixture is told the step), or nothing for other modules."""
    in_phase = getattr(model, "in_phase", None)
    return in_phase(phase) if in_phase is not None else contextlib.nullcontext()


class frozen_buffers:
    """Context manager: buffers (BatchNorm running statistics) are restored on exit, so a forward
    pass in training mode for the architecture leaves no trace on the weights' state."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def __enter__(self) -> None:
        self.saved = [(b, b.detach().clone()) for b in self.module.buffers()]

    def __exit__(self, *exc: Any) -> None:
        with torch.no_grad():
            for buffer, value in self.saved:
                buffer.copy_(value)
