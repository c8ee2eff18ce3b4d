"""Search spaces written in the supernet language."""

from .darts import (
    DARTS_OPS,
    Genotype,
    darts_edges,
    darts_genotype,
    darts_genotype_text,
    darts_genotype_tuple,
    darts_space,
    darts_switch_ids,
    darts_switches,
    reduction_layers,
)
from .embedded_vision_net import embedded_vision_net, fix_for_mixing
from .mobilenet import DEFAULT_STAGES, Stage, mobilenet_parameters, mobilenet_space, stage_widths
from .transformer import MIXERS, NORMS, transformer_space, transformer_switches
from .nb201 import (
    NB201_EDGES,
    NB201_OPS,
    cell,
    cell_switches,
    genotype_string,
    nb201_1d_space,
    nb201_space,
    nb201_switches,
)

__all__ = [
    "DARTS_OPS",
    "Genotype",
    "darts_edges",
    "darts_genotype",
    "darts_genotype_text",
    "darts_genotype_tuple",
    "darts_space",
    "darts_switch_ids",
    "darts_switches",
    "reduction_layers",
    "embedded_vision_net",
    "fix_for_mixing",
    "DEFAULT_STAGES",
    "Stage",
    "mobilenet_parameters",
    "mobilenet_space",
    "stage_widths",
    "MIXERS",
    "NORMS",
    "transformer_space",
    "transformer_switches",
    "NB201_EDGES",
    "NB201_OPS",
    "cell",
    "cell_switches",
    "genotype_string",
    "nb201_1d_space",
    "nb201_space",
    "nb201_switches",
]
