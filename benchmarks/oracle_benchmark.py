"""What an exhaustive (oracle) benchmark is made of, so that the table and strategies passes of
`oracle.py` / `oracle_strategies.py` run on more than one: its space, data, training recipe and files.

The 1-D benchmark is `oracle.ORACLE` (MNIST-1D), the 2-D one `oracle2d.ORACLE2D` (Fashion-MNIST).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from supernet import Node

Split = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class OracleBenchmark:
    """One exhaustive benchmark.

    `space()`: a fresh copy of its search space; `data()`: (train, val, test) splits;
    `train_architecture(architecture, seed, *, epochs, data)`: the table recipe (a run dict with
    `test_accuracy` and `val_accuracy`); `table_epochs`: the recipe's epochs, also random search's
    per candidate; `setup(epochs, seeds)`: the recipe as JSON-able text (a partial table is resumed
    only under the same one); `table_path` / `strategies_path`: where its JSON files live;
    `command`: how a user writes its table (named in errors)."""

    name: str
    space: Callable[[], Node]
    data: Callable[[], tuple[Split, Split, Split]]
    train_architecture: Callable[..., dict[str, Any]]
    table_epochs: int
    setup: Callable[[int, Sequence[int]], dict[str, Any]]
    table_path: Path
    strategies_path: Path
    command: str
