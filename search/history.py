"""The alpha trajectory: every switch's probabilities and logits at every recorded step."""
from __future__ import annotations

from typing import Any

from supernet import SupernetExecutor


class AlphaHistory:
    """Records the architecture distribution as plain lists (JSON-ready, columnar per switch)."""

    def __init__(self, supernet: SupernetExecutor) -> None:
        self.options = supernet.option_names()
        self.steps: list[int] = []
        self.epochs: list[int] = []
        self.probabilities: dict[str, list[list[float]]] = {sid: [] for sid in supernet.alphas}
        self.logits: dict[str, list[list[float]]] = {sid: [] for sid in supernet.alphas}

    def record(self, step: int, epoch: int, supernet: SupernetExecutor) -> None:
        """Append the supernet's current distribution, as at `step` of `epoch`."""
        self.steps.append(step)
        self.epochs.append(epoch)
        for sid, probabilities in supernet.probabilities().items():
            self.probabilities[sid].append(probabilities)
            self.logits[sid].append(supernet.alphas[sid].detach().tolist())

    def as_dict(self) -> dict[str, Any]:
        """{"options", "steps", "epochs", "probabilities", "logits"}: plain Python containers."""
        return {
            "options": self.options,
            "steps": list(self.steps),
            "epochs": list(self.epochs),
            "probabilities": {k: list(v) for k, v in self.probabilities.items()},
            "logits": {k: list(v) for k, v in self.logits.items()},
        }

    def state_dict(self) -> dict[str, Any]:
        """The recorded trajectory (for checkpoints): `as_dict()`."""
        return self.as_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the trajectory `state_dict` (or `as_dict`) returned."""
        self.steps, self.epochs = list(state["steps"]), list(state["epochs"])
        self.probabilities = {k: list(v) for k, v in state["probabilities"].items()}
        self.logits = {k: list(v) for k, v in state["logits"].items()}
