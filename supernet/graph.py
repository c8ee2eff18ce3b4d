"""The graph that ends at an output node: its walks (`walk.py`) and its input and weight Tensors."""
from __future__ import annotations

from .node import Node, Tensor
from .walk import check_unique_ids, get_nodes, topological_order

__all__ = ["check_unique_ids", "get_nodes", "input_tensors", "topological_order", "weight_tensors"]


def input_tensors(nodes: list[Node]) -> list[Tensor]:
    """The Tensors fed at run time, in topological order."""
    return [n for n in nodes if isinstance(n, Tensor) and n.role != "weight"]


def weight_tensors(nodes: list[Node]) -> list[Tensor]:
    """The Tensors owned by ops (weights, biases, statistics), in topological order."""
    return [n for n in nodes if isinstance(n, Tensor) and n.role == "weight"]
