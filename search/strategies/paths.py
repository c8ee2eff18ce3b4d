"""One-hot path mixtures: each switch runs exactly one option, with a constant gate of 1.

`FixedPathMixture` runs a path that is set from outside (evaluating one sub-architecture with the
supernet's shared weights); `UniformPathMixture` draws every switch's option uniformly at each
forward in training (SPOS). Value choices (kernel sizes, widths) get one-hot weights too, so their
masks select one value. The gates carry no gradient: these mixtures learn no architecture.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import torch

from supernet import Mixture
from supernet.mixture import Phase


def one_hot_gates(alpha: torch.Tensor, index: int) -> torch.Tensor:
    """Gates 1 at `index`, 0 elsewhere, shaped like `alpha`, without gradient."""
    gates = torch.zeros_like(alpha.detach())
    gates[index] = 1.0
    return gates


class FixedPathMixture(Mixture):
    """Runs the option `path[id]` (a position into the id's logits) of every switch and value
    parameter, in training and evaluation alike; ids left out of `path` run their first option."""

    def __init__(self) -> None:
        self.path: dict[str, int] = {}

    def set_path(self, path: Mapping[str, int]) -> None:
        """Positions (into each id's logits) of the options to run from now on."""
        self.path = dict(path)

    def weights(
        self, alpha: torch.Tensor, training: bool, sid: Optional[str] = None, phase: Optional[Phase] = None
    ) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        index = self.path.get(sid, 0) if sid is not None else 0
        return one_hot_gates(alpha, index), [index]

    def state_dict(self) -> dict[str, Any]:
        return {"path": dict(self.path)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.set_path(state["path"])


class UniformPathMixture(Mixture):
    """SPOS: in training, every switch and value parameter draws one option uniformly at each
    forward (from `Mixture.generator`); in evaluation the argmax of the logits (the first option,
    as SPOS leaves its logits at zero) runs."""

    def weights(
        self, alpha: torch.Tensor, training: bool, sid: Optional[str] = None, phase: Optional[Phase] = None
    ) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        if training:
            index = int(torch.randint(len(alpha), (), generator=self.generator(torch.device("cpu")), device="cpu"))
        else:
            index = int(torch.argmax(alpha))
        return one_hot_gates(alpha, index), [index]
