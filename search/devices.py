"""Devices: the `device=` a search asks for, checked before anything runs, and data that has none.

`check_device` turns `device=` into a torch.device, refusing a name torch does not know, a CUDA or
MPS device this machine lacks and the `meta` device, each time saying which devices there are.
`refuse_meta` refuses tensors on the `meta` device (shapes without values: nothing to train on).
"""

from __future__ import annotations

from typing import Optional, Union

import torch


def available_devices() -> list[str]:
    """The devices a search can run on here: "cpu", every "cuda:<i>", "mps" where it works."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def check_device(device: Union[str, torch.device, None]) -> Optional[torch.device]:
    """`device` as a torch.device (None stays None: the default), or a ValueError naming it."""
    if device is None:
        return None
    available = ", ".join(available_devices())
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a torch device ({err}); available here: {available}") from None
    if resolved.type == "meta":
        raise ValueError(
            f"device={device!r}: the meta device holds no values, a search cannot run on it; "
            f"available here: {available}"
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            build = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device={device!r} asks for CUDA, but {build}; available here: {available}")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r}: there is no CUDA device {resolved.index}; available here: {available}"
            )
    if resolved.type == "mps" and "mps" not in available_devices():
        raise ValueError(f"device={device!r} asks for MPS, which is not available here; available here: {available}")
    return resolved


def refuse_meta(tensor: torch.Tensor, what: str) -> None:
    """Raise a ValueError naming `what` when `tensor` is on the meta device."""
    if isinstance(tensor, torch.Tensor) and tensor.is_meta:
        raise ValueError(
            f"{what}: a tensor on the meta device (shape {tuple(tensor.shape)}) has no values to train on; "
            "load the real data (or weights) first"
        )
