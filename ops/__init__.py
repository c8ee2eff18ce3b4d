"""Operators and blocks of the search-space language."""

from .activation import Gelu, Relu6
from .attention import MultiHeadSelfAttention, multi_head_self_attention
from .concat import Concat
from .convolution import Conv1d, Conv2d, conv1d, conv2d
from .elementwise import Add, Dropout, Identity, Relu, Zero
from .interleave import InterleaveChannels
from .layer_norm import LayerNorm
from .linear import Linear, linear
from .normalization import BatchNorm
from .optional import OptionalOp
from .pooling import AdaptiveAvgPooling, AvgPooling, MaxPooling
from .positional_encoding import PositionalEncoding, positional_encoding
from .reshape import Flatten, Permute, Reshape
from .slicing import Slice

__all__ = [
    "AdaptiveAvgPooling",
    "Add",
    "AvgPooling",
    "BatchNorm",
    "Concat",
    "Conv1d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Gelu",
    "Identity",
    "InterleaveChannels",
    "LayerNorm",
    "Linear",
    "MaxPooling",
    "MultiHeadSelfAttention",
    "OptionalOp",
    "Permute",
    "PositionalEncoding",
    "Relu",
    "Relu6",
    "Reshape",
    "Slice",
    "Zero",
    "conv1d",
    "conv2d",
    "linear",
    "multi_head_self_attention",
    "positional_encoding",
]
