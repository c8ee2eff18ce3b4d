"""LiveLog: what a running search sends to its loggers (`search.loggers`), and when.

Every recorded step (`record_every`): the step's losses, the learning rates, each choice's
probabilities (`prob/<switch id>/<option>`), its confidence margin (`margin/<switch id>`: the
most probable option's probability minus the runner-up's) and the expected cost when a cost is
set. Every epoch: the epoch's metrics row, the current (argmax) architecture as text and, as
images, the architecture diagram and the alpha heatmap. Only the main process logs.
"""

from __future__ import annotations

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
        space: Any,
        cost_name: Optional[str],
        is_main: bool = True,
    ) -> None:
        self.loggers = list(loggers) if is_main else []
        self.supernet, self.bilevel, self.space, self.cost_name = supernet, bilevel, space, cost_name
        self._image_failure_warned = False

    def resume(self, step: int) -> None:
        """The search continues from a checkpoint at `step`: loggers drop what followed it."""
        for logger in self.loggers:
            logger.resume(step)

    def record(self, step: int, losses: Mapping[str, float]) -> None:
        """The scalars of search step `step` (`losses`: e.g. train_loss and val_loss of the step)."""
        if not self.loggers:
            return
        scalars = {key: float(value) for key, value in losses.items()}
        scalars.update(self._learning_rates())
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

    def epoch_end(self, step: int, row: Mapping[str, float], history: Mapping[str, Any]) -> None:
        """The epoch's metrics row, the current architecture as text and its pictures, at `step`."""
        if not self.loggers:
            return
        snapshot = SearchResult(
            architecture=self.supernet.architecture(),
            probabilities=self.supernet.probabilities(),
            history=dict(history),
            metrics=[dict(row)],
            option_names=self.supernet.option_names(),
            option_values=self.supernet.option_values(),
            space=self.space,
        )
        text = "\n".join(f"{sid}: {label}" for sid, label in snapshot.chosen_options.items())
        images = self._images(snapshot)
        for logger in self.loggers:
            logger.log_metrics(step, {f"epoch/{k}": float(v) for k, v in row.items()})
            logger.log_text(step, "architecture", text)
            for tag, image in images.items():
                logger.log_image(step, tag, image)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()

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
