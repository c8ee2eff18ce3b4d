"""LiveLog: what a running search sends to its loggers (`search.loggers`), and when.

Every recorded step (`record_every`): the step's losses (`train_loss`, `val_loss`), the learning
rates (`lr/weight`, `lr/arch`), each choice's probabilities (`prob/<switch id>/<option>`), its
confidence margin (`margin/<switch id>`: the most probable option's probability minus the
runner-up's), the expected cost when a cost is set (`expected_<cost>`) and the phase as two 0/1
scalars (`phase/warmup`: weights only; `phase/decision`: the strategy's decision phase). Every
epoch, at the step that ends it: the epoch's metrics row (`epoch/<name>`, and `epoch`), the
current (argmax) architecture as text (tag `architecture`) and, for loggers whose `images` is
true and when matplotlib is installed, the architecture diagram and the alpha heatmap as images.
Texts tagged `events` say when a phase starts and when a search resumed from a checkpoint.
Only the main process (rank 0) logs.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any, Mapping, Optional, Sequence

import torch

from .confidence import normalised
from .loggers import Logger, figure_image
from .result import SearchResult


class LiveLog:
    """Sends a search's progress to `loggers` (none: every call does nothing)."""

    def __init__(
        self,
        loggers: Sequence[Logger],
        supernet: Any,
        bilevel: Any,
        strategy: Any,
        space: Any,
        cost_name: Optional[str],
        epochs: int,
        is_main: bool = True,
    ) -> None:
        self.loggers = list(loggers) if is_main else []
        self.supernet, self.bilevel, self.strategy, self.space = supernet, bilevel, strategy, space
        self.cost_name = cost_name
        self.warmup_epochs = int(getattr(strategy, "warmup_epochs", 0) or 0)
        self.decision_epoch = strategy.decision_start(epochs)
        self._phase: Optional[str] = None  # the phase last logged, to log its start once
        self._image_failure_warned = False

    def resume(self, step: int) -> None:
        """The search continues from a checkpoint at `step`: loggers drop what followed it, and
        an `events` text marks the resume point."""
        for logger in self.loggers:
            if callable(getattr(logger, "resume", None)):
                logger.resume(step)
            logger.log_text(step, "events", f"resumed from the checkpoint at step {step}")
        self._phase = None

    def record(self, step: int, epoch: int, losses: Mapping[str, Any]) -> None:
        """The scalars of search step `step` of `epoch` (`losses`: the step's train_loss and
        val_loss, floats or scalar tensors; a skipped step's are left out)."""
        if not self.loggers:
            return
        scalars = {key: float(value) for key, value in losses.items()}
        scalars.update(self._learning_rates())
        scalars.update(self._phase_flags(step, epoch))
        names = self.supernet.option_names()
        for sid, p in self.supernet.probabilities().items():
            labels = names.get(sid) or [str(i) for i in range(len(p))]
            for label, value in zip(labels, p):
                scalars[f"prob/{sid}/{label}"] = float(value)
            ranked = sorted(normalised(p), reverse=True)
            scalars[f"margin/{sid}"] = ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0)
        penalty = getattr(self.bilevel, "penalty", None)
        if penalty is not None:
            with torch.no_grad():
                scalars[f"expected_{self.cost_name}"] = float(penalty.expected())
        for logger in self.loggers:
            logger.log_metrics(step, scalars)

    def epoch_end(self, step: int, row: Mapping[str, float], history: Any) -> None:
        """The epoch's metrics row, the current architecture as text and its pictures, at `step`
        (`history`: the search's AlphaHistory, read only when something is logged)."""
        if not self.loggers:
            return
        snapshot = SearchResult(
            architecture=self.supernet.architecture(),
            probabilities=self.supernet.probabilities(),
            history=history.as_dict(),
            metrics=[dict(row)],
            option_names=self.supernet.option_names(),
            option_values=self.supernet.option_values(),
            space=self.space,
        )
        text = "\n".join(f"{sid}: {label}" for sid, label in snapshot.chosen_options.items())
        drawing = [logger for logger in self.loggers if getattr(logger, "images", True)]
        images = self._images(snapshot) if drawing and importlib.util.find_spec("matplotlib") else {}
        scalars = {(k if k == "epoch" else f"epoch/{k}"): float(v) for k, v in row.items()}
        for logger in self.loggers:
            logger.log_metrics(step, scalars)
            logger.log_text(step, "architecture", text)
            if logger in drawing:
                for tag, image in images.items():
                    logger.log_image(step, tag, image)

    def close(self) -> None:
        """Close every logger (also when the search stopped with an error: what was logged is kept)."""
        for logger in self.loggers:
            logger.close()

    def _phase_flags(self, step: int, epoch: int) -> dict[str, float]:
        """`phase/warmup` and `phase/decision` as 0/1, and an `events` text when the phase changes."""
        warmup = epoch < self.warmup_epochs
        decision = self.decision_epoch is not None and epoch >= self.decision_epoch
        phase = "warm-up" if warmup else "decision" if decision else "search"
        if phase != self._phase:
            self._phase = phase
            text = {
                "warm-up": f"warm-up: weights only in epoch{'s 0-' if self.warmup_epochs > 1 else ' '}"
                f"{self.warmup_epochs - 1}",
                "search": f"searching from epoch {epoch}",
                "decision": f"decision phase from epoch {self.decision_epoch}",
            }[phase]
            for logger in self.loggers:
                logger.log_text(step, "events", text)
        return {"phase/warmup": float(warmup), "phase/decision": float(decision)}

    def _learning_rates(self) -> dict[str, float]:
        rates = {}
        for name in ("weight_optimizer", "arch_optimizer"):
            optimizer = getattr(self.bilevel, name, None)
            if optimizer is not None and optimizer.param_groups:
                rates[f"lr/{name.replace('_optimizer', '')}"] = float(optimizer.param_groups[0]["lr"])
        return rates

    def _images(self, snapshot: SearchResult) -> dict[str, Any]:
        from .architecture_plot import plot_architecture
        from .plots import plot_alpha_heatmap

        images = {}
        for tag, draw in (("architecture", plot_architecture), ("alpha_heatmap", plot_alpha_heatmap)):
            try:
                images[tag] = figure_image(draw(snapshot))
            except Exception as error:  # a picture must not end an hours-long search; say so once
                if not self._image_failure_warned:
                    warnings.warn(f"the loggers get no {tag} image: drawing it failed ({error})", RuntimeWarning)
                    self._image_failure_warned = True
        return images
