"""Search spaces written in the supernet language."""
from .nb201 import (
    NB201_EDGES, NB201_OPS, cell, cell_switches, genotype_string, nb201_1d_space, nb201_space, nb201_switches,
)

__all__ = [
    "NB201_EDGES", "NB201_OPS", "cell", "cell_switches", "genotype_string", "nb201_1d_space", "nb201_space",
    "nb201_switches",
]
