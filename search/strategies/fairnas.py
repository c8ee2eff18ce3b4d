"""FairNAS (Chu et al., 2021), strict fairness: every option of every choice is trained equally often.

Each weight step runs the batch through `cycle` paths and sums their gradients before the one
optimizer step. Over those passes each switch (and value choice) takes every one of its k options
exactly cycle / k times, in a random order drawn anew each step: a random permutation of the
options per switch when every switch has the same k (the paper's schedule, cycle = k), a random
order of each option repeated cycle / k times otherwise, with cycle the least common multiple of
the option counts (capped by `max_paths`). Forward passes outside weight steps (the search's
validation metrics) draw uniformly and count for nothing. No architecture logits are learned; the
result carries the trained supernet for `SearchResult.evaluate` and `search.evolve`.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch

from supernet import Mixture, SupernetExecutor
from supernet.mixture import Phase

from ..bilevel import Batch, BilevelOptimizer
from .base import Strategy
from .paths import one_hot_gates


class FairMixture(Mixture):
    """One-hot paths; in weight steps, from per-switch schedules with exact counts."""

    def __init__(self) -> None:
        self.cycle = 1
        self.queues: dict[str, list[int]] = {}  # id -> positions still to run in this cycle
        self.counts: dict[str, list[int]] = {}  # id -> how often each option ran in weight steps

    def bind(self, supernet: Any) -> None:
        sizes = [len(alpha) for alpha in supernet.alphas.values()]
        self.cycle = math.lcm(*sizes) if sizes else 1
        self.counts = {sid: [0] * len(alpha) for sid, alpha in supernet.alphas.items()}

    def weights(
        self, alpha: torch.Tensor, training: bool, sid: Optional[str] = None, phase: Optional[Phase] = None
    ) -> tuple[torch.Tensor, Optional[Sequence[int]]]:
        if not training:
            index = int(torch.argmax(alpha))
        elif phase is not Phase.WEIGHT_STEP or sid is None:  # passes outside weight steps count for nothing
            index = int(torch.randint(len(alpha), (), generator=self.generator(torch.device("cpu")), device="cpu"))
        else:
            queue = self.queues.get(sid)
            if not queue:
                repeated = torch.arange(len(alpha), device="cpu").repeat(self.cycle // len(alpha))
                order = torch.randperm(len(repeated), generator=self.generator(torch.device("cpu")), device="cpu")
                queue = self.queues[sid] = repeated[order].tolist()
            index = queue.pop(0)
            self.counts[sid][index] += 1
        return one_hot_gates(alpha, index), [index]

    def state_dict(self) -> dict[str, Any]:
        """The schedule's plain state (for checkpoints)."""
        return {
            "cycle": self.cycle,
            "queues": {k: list(v) for k, v in self.queues.items()},
            "counts": {k: list(v) for k, v in self.counts.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cycle = state["cycle"]
        self.queues = {k: list(v) for k, v in state["queues"].items()}
        self.counts = {k: list(v) for k, v in state["counts"].items()}


class FairNAS(Strategy):
    """Strict-fairness single-path training, weights only."""

    name = "fairnas"
    fixed_graph = False  # a sampled path per step
    learns_architecture = False

    def __init__(self, max_paths: int = 60) -> None:
        """`max_paths`: the most passes one weight step may take (the fair cycle's length)."""
        super().__init__()
        if isinstance(max_paths, bool) or not isinstance(max_paths, int) or max_paths < 1:
            raise ValueError(f"max_paths must be a positive int, got {max_paths!r}")
        self.max_paths = max_paths

    def mixture(self) -> Mixture:
        return FairMixture()

    def on_epoch_start(self, epoch: int, epochs: int, supernet: SupernetExecutor) -> None:
        cycle = supernet.mixture.cycle
        if cycle > self.max_paths:
            sizes = {sid: len(alpha) for sid, alpha in supernet.alphas.items()}
            raise ValueError(
                f"FairNAS: the option counts {sorted(set(sizes.values()))} (per switch or value choice: {sizes}) need "
                f"cycles of {cycle} paths per weight step for exact fairness, above max_paths={self.max_paths}; "
                "raise max_paths or fix (param.fix(value)) the parameters with unusual option counts"
            )

    def weight_step(self, bilevel: BilevelOptimizer, train_batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return bilevel.weight_step(*train_batch, passes=bilevel.supernet.mixture.cycle)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "max_paths": self.max_paths}
