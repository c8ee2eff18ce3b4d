"""`fit_supernet(compile=True)`: the supernet's forward pass through `torch.compile`.

What is compiled is the supernet module (`SupernetExecutor.forward`: the mixing weights and the
plan interpreter), not the step function: a step calls `backward()` and the optimizers, where
dynamo breaks the graph, while the module compiles whole (0 graph breaks on the NB201 and DARTS
spaces) and AOTAutograd compiles its backward with it. Both steps run the one compiled module; it
traces two graphs, one per step (the weight step mixes with plain numbers, the architecture step
differentiably), and none again afterwards (measured: 2 graphs over 12 DARTS or DrNAS steps).

Strategies that sample a path per step (GDAS, SPOS, Proxyless, FairNAS: `Strategy.fixed_graph`
False) are refused: each new path is a new graph (NB201 has 5^6 of them), dynamo reaches its
recompile limit (8) within a dozen steps, each recompile costing tens of seconds, and then runs
eagerly anyway (measured on NB201, C=8, 12 steps: GDAS 23 graphs, 10 graph breaks at the sampled
indices' `.item()`; SPOS 15 graphs; both hit the limit). Compiling per path or with `dynamic=True`
does not help: what changes is the graph itself, not a shape.

On CPU, inductor generates C++ and needs a C compiler: without one the search is refused up front
(instead of failing at the first step).
"""

from __future__ import annotations

import shutil

import torch
from torch import nn

from supernet import SupernetExecutor


def check_compilable(strategy_name: str, fixed_graph: bool, device: torch.device, distributed: bool) -> None:
    """Raise a ValueError naming `compile` when this search cannot be compiled."""
    if not fixed_graph:
        raise ValueError(
            f"compile=True: strategy {strategy_name!r} samples a new path every step, and each path is a new graph "
            "for torch.compile (recompiled until dynamo's limit, then run eagerly); search it with compile=False"
        )
    if distributed:
        raise ValueError("compile=True is not supported in a distributed search yet; pass compile=False")
    if device.type == "cpu" and shutil.which("cc") is None and shutil.which("gcc") is None:
        raise ValueError(
            "compile=True on CPU needs a C compiler (inductor generates C++), and none (cc, gcc) is on PATH; "
            "install one or pass compile=False"
        )


def compile_supernet(supernet: SupernetExecutor) -> nn.Module:
    """The supernet's forward pass compiled (`torch.compile`); it shares the supernet's parameters
    and buffers, so optimizers and checkpoints work on the supernet itself."""
    return torch.compile(supernet)
