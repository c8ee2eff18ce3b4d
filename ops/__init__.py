"""Operators and blocks of the search-space language."""
from .convolution import Conv1d, Conv2d, conv1d, conv2d
from .elementwise import Add, Dropout, Identity, Relu, Zero
from .linear import Linear, linear
from .normalization import BatchNorm
from .pooling import AdaptiveAvgPooling, AvgPooling, MaxPooling
from .reshape import Flatten, Permute, Reshape

__all__ = [
    "AdaptiveAvgPooling", "Add", "AvgPooling", "BatchNorm", "Conv1d", "Conv2d", "Dropout", "Flatten",
    "Identity", "Linear", "MaxPooling", "Permute", "Relu", "Reshape", "Zero", "conv1d", "conv2d", "linear",
]
