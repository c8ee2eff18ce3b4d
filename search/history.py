"""The alpha trajectory: every switch's probabilities and logits at every recorded step."""

from __future__ import annotations

from typing import Any, Optional

from supernet import SupernetExecutor

from .confidence import ConfidenceTrack


class AlphaHistory:
    """Records the architecture distribution as plain lists (JSON-ready, columnar per switch),
    and each choice's confidence statistics (`search.confidence`) at the same steps."""

    def __init__(self, supernet: SupernetExecutor) -> None:
        self.options = supernet.option_names()
        self.steps: list[int] = []
        self.epochs: list[int] = []
        self.probabilities: dict[str, list[list[float]]] = {sid: [] for sid in supernet.alphas}
        self.logits: dict[str, list[list[float]]] = {sid: [] for sid in supernet.alphas}
        self.confidence = ConfidenceTrack(list(supernet.alphas))
        # the first epoch of the strategy's decision phase (None: it has none), see search.confidence
        self.decision_epoch: Optional[int] = None
        # the step counts at which the search continued from a checkpoint (the plots mark them)
        self.resumed_at_step: list[int] = []

    def record(self, step: int, epoch: int, supernet: SupernetExecutor) -> None:
        """Append the supernet's current distribution, as at `step` of `epoch`."""
        self.steps.append(step)
        self.epochs.append(epoch)
        probabilities = supernet.probabilities()
        for sid, p in probabilities.items():
            self.probabilities[sid].append(p)
            self.logits[sid].append(supernet.alphas[sid].detach().tolist())
        self.confidence.record(step, probabilities)

    def resumed(self, step: int) -> None:
        """The search continues from a checkpoint taken after `step` steps."""
        self.resumed_at_step.append(int(step))

    def as_dict(self) -> dict[str, Any]:
        """{"options", "steps", "epochs", "probabilities", "logits", "confidence", "decision_epoch"}
        and, in a search that resumed, "resumed_at_step" (the step counts it continued from):
        plain Python containers; "confidence" maps switch id -> {statistic: one value per step}."""
        resumed = {"resumed_at_step": list(self.resumed_at_step)} if self.resumed_at_step else {}
        return {
            "options": self.options,
            "steps": list(self.steps),
            "epochs": list(self.epochs),
            "probabilities": {k: list(v) for k, v in self.probabilities.items()},
            "logits": {k: list(v) for k, v in self.logits.items()},
            "confidence": self.confidence.as_dict(),
            "decision_epoch": self.decision_epoch,
            **resumed,
        }

    def state_dict(self) -> dict[str, Any]:
        """The recorded trajectory (for checkpoints): `as_dict()`."""
        return self.as_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the trajectory `state_dict` (or `as_dict`) returned."""
        self.steps, self.epochs = list(state["steps"]), list(state["epochs"])
        self.probabilities = {k: list(v) for k, v in state["probabilities"].items()}
        self.logits = {k: list(v) for k, v in state["logits"].items()}
        self.decision_epoch = state.get("decision_epoch")
        self.resumed_at_step = [int(step) for step in state.get("resumed_at_step", [])]
        if "confidence" in state:
            self.confidence.load(state["confidence"])
        else:  # a checkpoint written before confidence was recorded: replay the distributions
            self.confidence = ConfidenceTrack(list(self.probabilities))
            for i, step in enumerate(self.steps):
                self.confidence.record(step, {sid: p[i] for sid, p in self.probabilities.items()})
