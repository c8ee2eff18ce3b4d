"""What an axis of a weight is for: declared by the Tensor or by the op that owns it, never read
from the axis's name.

Shared weights are allocated at their largest shape and sliced to the current one: an axis without
a role keeps its leading entries (channels, features), a `KERNEL` axis its centred ones, so that a
smaller kernel is the centre of the largest (value choices mask it the same way). Partial channels
(`Mixture.option_input`) narrow every axis of an option's weights but kernel axes. A weight with
two kernel axes is a 2-D convolution's (the plan may then run channels-last). The `BATCH` axis of
an input takes any size at run time.
"""

from __future__ import annotations

import enum
from typing import Any, Optional, Sequence


class AxisRole(enum.Enum):
    """The role of one axis of a weight Tensor (None: a plain axis, sliced to its leading entries)."""

    KERNEL = "kernel"  #: a spatial kernel axis: centred slices, never narrowed by partial channels
    BATCH = "batch"  #: the batch axis of an input: any size at run time


def default_roles(axes: Sequence[str]) -> tuple[Optional[AxisRole], ...]:
    """The roles of a Tensor that declares none: the documented convention of the language, the
    axis called "N" is the batch axis (the one place an axis name means anything)."""
    return tuple(AxisRole.BATCH if name == "N" else None for name in axes)


def checked_roles(roles: Optional[Sequence[Any]], rank: int, where: str) -> tuple[Optional[AxisRole], ...]:
    """`roles` (AxisRole, its value such as "kernel", or None per axis) checked against `rank` axes;
    None: no axis has a role. `where` names the Tensor in errors."""
    if roles is None:
        return (None,) * rank
    roles = tuple(roles)
    if len(roles) != rank:
        raise ValueError(f"{where}: {len(roles)} axis roles {roles} for {rank} axes")
    known = {role.value: role for role in AxisRole}
    checked = []
    for role in roles:
        if role is None or isinstance(role, AxisRole):
            checked.append(role)
        elif isinstance(role, str) and role in known:
            checked.append(known[role])
        else:
            raise ValueError(f"{where}: unknown axis role {role!r}; known: {sorted(known)} or None")
    return tuple(checked)


def is_batch(role: Optional[AxisRole]) -> bool:
    """Whether an axis of this role is the batch axis (free at run time)."""
    return role is AxisRole.BATCH


def is_kernel(role: Optional[AxisRole]) -> bool:
    """Whether an axis of this role is a kernel axis (sliced about its centre)."""
    return role is AxisRole.KERNEL
