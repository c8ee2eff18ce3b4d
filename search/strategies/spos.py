"""SPOS (Guo et al., 2020), single-path one-shot: train the supernet's shared weights on one
uniformly sampled path per step, then search architectures with those weights (`search.evolve`).

Each weight step samples every switch and value choice (kernel size, width...) uniformly and runs
that path alone (`UniformPathMixture`), costing one path's time and memory as GDAS's weight steps
do. No architecture logits are learned (`learns_architecture = False`: no architecture step), so
the result's `architecture` is empty (export and evaluate ask for one); what the result carries is
the trained supernet (`supernet_state`), for `SearchResult.evaluate` and `search.evolve`.
"""

from __future__ import annotations

from typing import Any

from supernet import Mixture

from .base import Strategy
from .paths import UniformPathMixture


class SPOS(Strategy):
    """Uniform single-path sampling, weights only."""

    name = "spos"
    fixed_graph = False  # a sampled path per step
    learns_architecture = False

    def __init__(self) -> None:
        super().__init__()

    def mixture(self) -> Mixture:
        return UniformPathMixture()

    def config(self) -> dict[str, Any]:
        return {"name": self.name}
