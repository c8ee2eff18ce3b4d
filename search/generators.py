"""SearchGenerators: the random generators of one search, one `torch.Generator` per device.

A search's random draws (the mixtures' Gumbel, Dirichlet and path samples) come from these, never
from torch's global generator, so two searches running at once in one process (threads) cannot
draw from each other's stream: a search's result depends on its arguments alone. Every generator
starts from the search's seed (the same on every process of a distributed search, so that the
processes sample the same paths); their states go into checkpoints, so a resumed search continues
each stream where it stopped. Data order and weight initialisation have generators of their own
already (`search.loaders`, `SupernetExecutor(seed=...)`).

What still reads torch's global generator: dropout (`F.dropout` and attention dropout take no
generator) and a user's own DataLoader without a `generator=`.
"""

from __future__ import annotations

from typing import Union

import torch

Device = Union[str, torch.device]


class SearchGenerators:
    """One generator per device, each seeded with `seed` when first asked for; callable:
    `generators(device)` is the generator of `device`."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._by_device: dict[str, torch.Generator] = {}

    def __call__(self, device: Device) -> torch.Generator:
        """The generator of `device` (a CUDA device without index: the current one)."""
        key = _key(torch.device(device))
        generator = self._by_device.get(key)
        if generator is None:
            generator = self._by_device[key] = torch.Generator(device=torch.device(key)).manual_seed(self.seed)
        return generator

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Each device's generator state (for checkpoints)."""
        return {key: generator.get_state() for key, generator in self._by_device.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Continue every stream from the states `state_dict` returned."""
        for key, value in state.items():
            self(key).set_state(value)


def _key(device: torch.device) -> str:
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)
