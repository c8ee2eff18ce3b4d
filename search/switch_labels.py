"""Short readable labels of switch ids (for plots and tables)."""

from __future__ import annotations


def short_id(switch_id: str) -> str:
    """The id without its space prefix and without a trailing `ChoiceOp_k.choice`, at most the
    last three segments: `nb201_1d_space_0.cell_0.edge_0to1_0.ChoiceOp_0.choice` -> `cell_0.edge_0to1_0`."""
    parts = switch_id.split(".")[1:] or switch_id.split(".")
    if len(parts) >= 2 and parts[-1] == "choice" and parts[-2].startswith("ChoiceOp_"):
        parts = parts[:-2] or parts
    return ".".join(parts[-3:])
