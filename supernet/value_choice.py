"""Differentiable value choices: parameters that size weights (kernel sizes, widths, ratios) searched
by the supernet with their own logits, over one shared weight allocated at the largest size.

The supernet runs every op at the largest value and multiplies each weight by the expected mask
`sum_v p(v) * mask_v`: for a plain (channel) axis `mask_v` keeps the leading `size(v)` entries, for
a kernel axis (declared `AxisRole.KERNEL`) the centred `size(v)` ones, so a small kernel is a zero-padded small
kernel inside the largest one. Axes that depend on the same parameters (kH and kW on one kernel
size) are masked jointly; independent groups multiply. With a one-hot distribution the masked
weight equals the weight the exported (shrunk) architecture carries.
"""

from __future__ import annotations

import itertools
from typing import Iterable, Mapping, Sequence

import torch

from .axis_role import is_kernel
from .expression import lazy, walk
from .node import Tensor
from .parameters import CategoricalParameter, IntScalarParameter, Parameter


def searchable_value_parameters(weights: Iterable[Tensor], exclude: Iterable[str] = ()) -> list[Parameter]:
    """The discrete, searchable parameters with more than one value that size some weight axis."""
    excluded, found, seen = set(exclude), [], set()
    for tensor in weights:
        for size in tensor.shape():
            for item in walk(size):
                if (
                    isinstance(item, (CategoricalParameter, IntScalarParameter))
                    and item.searchable
                    and item.id not in excluded
                    and id(item) not in seen
                    and len(item.values()) > 1
                ):
                    seen.add(id(item))
                    found.append(item)
    return found


class WeightMask:
    """The expected mask of one weight Tensor under the distributions of its value parameters."""

    def __init__(self, tensor: Tensor, params: Sequence[Parameter], allocated: Sequence[int]) -> None:
        self.tensor_id = tensor.id
        by_id = {id(p): p for p in params}
        axis_params = [[p for p in _params_in(size) if id(p) in by_id] for size in tensor.shape()]
        self.groups: list[tuple[list[int], list[Parameter], torch.Tensor]] = []
        remaining = [a for a, ps in enumerate(axis_params) if ps]
        while remaining:  # connected components of axes sharing parameters
            axes = [remaining.pop(0)]
            group = list(axis_params[axes[0]])
            changed = True
            while changed:
                changed = False
                for a in list(remaining):
                    if any(id(p) in {id(q) for q in group} for p in axis_params[a]):
                        axes.append(a)
                        remaining.remove(a)
                        group.extend(p for p in axis_params[a] if id(p) not in {id(q) for q in group})
                        changed = True
            axes.sort()
            self.groups.append((axes, group, self._indicators(tensor, axes, group, allocated)))
        self.rank = len(allocated)

    @staticmethod
    def _indicators(tensor: Tensor, axes: list[int], group: list[Parameter], allocated: Sequence[int]) -> torch.Tensor:
        """One 0/1 mask over the group's axes per joint assignment of its parameters."""
        saved = [p.current_value for p in group]
        masks = []
        try:
            for assignment in itertools.product(*(p.values() for p in group)):
                for p, v in zip(group, assignment):
                    p.current_value = v
                per_axis = []
                for a in axes:
                    size, cap, name = int(lazy(tensor.shape()[a])), allocated[a], tensor.axis[a]
                    if size > cap:
                        raise ValueError(
                            f"weight {tensor.id}: axis {name!r} is {size} at {dict((p.id, v) for p, v in zip(group, assignment))} "
                            f"but {cap} at the largest values; a searched value choice must not shrink a weight as it grows "
                            "(mark the parameter fixed with .fix() to leave it out of the search)"
                        )
                    start = (cap - size) // 2 if is_kernel(tensor.axis_roles[a]) else 0
                    m = torch.zeros(cap)
                    m[start : start + size] = 1.0
                    per_axis.append(m)
                joint = per_axis[0]
                for m in per_axis[1:]:
                    joint = torch.einsum("...i,j->...ij", joint, m)
                masks.append(joint)
        finally:
            for p, v in zip(group, saved):
                p.current_value = v
        return torch.stack(masks)

    def __call__(self, distributions: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The expected mask, broadcastable to the full weight, differentiable in `distributions`."""
        mask = None
        for axes, group, indicators in self.groups:
            joint = distributions[group[0].id]
            for p in group[1:]:
                joint = torch.einsum("...i,j->...ij", joint, distributions[p.id])
            expected = torch.tensordot(joint.reshape(-1), indicators.to(joint.device), dims=1)
            shape = [1] * self.rank
            for a, size in zip(axes, expected.shape):
                shape[a] = size
            expected = expected.reshape(shape)
            mask = expected if mask is None else mask * expected
        return mask


def _params_in(size) -> list[Parameter]:
    out, seen = [], set()
    for item in walk(size):
        if isinstance(item, Parameter) and id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return out
