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
