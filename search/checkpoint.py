"""Search checkpoints: one file per finished epoch, written atomically, enough to resume exactly.

A checkpoint holds the weights and alphas, the optimizer and scheduler states, the `state_dict()`
of the strategy, of its mixture and of every callback that has one, the alpha history and epoch
metrics, the position of the validation stream, the Python, NumPy and torch random states and
those of the search's own generators (search.generators). Since each epoch's data order is a pure
function of (seed, epoch) (see `search.loaders`), restoring these at an epoch boundary makes the resumed search draw
and compute exactly what the uninterrupted one would have: its `SearchResult` is bit-identical.

Files are `epoch_0003.pt`, written to a temporary file in the same directory and renamed over
the final name (an interrupted write never leaves a truncated checkpoint). They load with
`torch.load(weights_only=True)`: no code is unpickled.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import uuid
import warnings
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from .generators import SearchGenerators

FORMAT = 2  # 2: strategies, mixtures and callbacks saved by their own state_dict()
_NAME = re.compile(r"^epoch_(\d+)\.pt$")


class Checkpointer:
    """The checkpoints of one search in `directory`; the newest `keep` are kept (None: all)."""

    def __init__(self, directory: Union[str, Path], keep: Optional[int] = 2) -> None:
        if keep is not None and keep < 1:
            raise ValueError(f"keep must be a positive int or None, got {keep!r}")
        self.directory = Path(directory)
        self.keep = keep

    def path(self, epoch: int) -> Path:
        """Where the checkpoint written after `epoch` lives."""
        return self.directory / f"epoch_{epoch:04d}.pt"

    def existing(self) -> list[Path]:
        """The checkpoint files in the directory, oldest epoch first."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def latest(self) -> Optional[Path]:
        """The newest checkpoint file, or None."""
        files = self.existing()
        return files[-1] if files else None

    def check_writable(self) -> None:
        """Make the directory and write a probe file there, before a search trains: a folder that
        cannot hold checkpoints is refused (naming it and the cause) at once, not after an epoch."""
        probe = self.directory / f".write_probe.{os.getpid()}.{uuid.uuid4().hex}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(probe, "xb"):
                pass
        except OSError as error:
            raise _named(error, f"checkpoint_dir {self.directory} is not writable") from error
        finally:
            with contextlib.suppress(OSError):  # no probe was made where the folder is not one
                probe.unlink()

    def save(self, state: dict[str, Any], epoch: int) -> Path:
        """Write `state` as the checkpoint of `epoch` (atomically), then drop the oldest beyond `keep`."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _named(error, f"cannot write checkpoint {self.path(epoch).name} in {self.directory}") from error
        target = self.path(epoch)
        atomic_save({"format": FORMAT, **state}, target)
        if self.keep is not None:
            for old in self.existing()[: -self.keep]:
                old.unlink(missing_ok=True)
        return target

    def load_latest(self) -> Optional[tuple[Path, dict[str, Any]]]:
        """The newest checkpoint that loads, with its path (a damaged one is skipped with a warning)."""
        for path in reversed(self.existing()):
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # a damaged file: fall back to the previous epoch
                warnings.warn(
                    f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); trying an older one",
                    RuntimeWarning,
                )
                continue
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise ValueError(f"{path} is not a search checkpoint of format {FORMAT}")
            return path, state
        return None


def atomic_save(obj: Any, path: Union[str, Path]) -> None:
    """torch.save `obj` to a temporary file next to `path`, flush it to disk, rename it to `path`.
    A failed write (a full disk...) leaves nothing behind and raises an OSError naming the file, its
    folder and the cause; an interrupted one (Ctrl-C) leaves nothing behind either."""
    path = Path(path)
    temporary = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "xb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as a RuntimeError
        Path(temporary).unlink(missing_ok=True)
        raise _named(
            error, f"cannot write checkpoint {path.name} in {path.parent}", "; nothing partial was left"
        ) from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _named(error: BaseException, what: str, after: str = "") -> OSError:
    """An OSError saying `what` failed and why (`error`'s errno kept)."""
    cause = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0][:200]
    message = f"{what}: {cause}{after}"
    errno = error.errno if isinstance(error, OSError) else None
    return OSError(errno, message) if errno is not None else OSError(message)


def interrupted_message(checkpoints: Optional["Checkpointer"], epoch: int) -> str:
    """What to tell a user who interrupted a search (Ctrl-C) in `epoch`: the checkpoint to resume from."""
    where = f"search interrupted in epoch {epoch}"
    if checkpoints is None:
        return (
            f"{where}; it had no checkpoint_dir, so there is nothing to resume from (pass checkpoint_dir=... next time)"
        )
    latest = checkpoints.latest()
    if latest is None:
        return (
            f"{where}, before its first checkpoint (written after epoch 0) in {checkpoints.directory}: "
            "nothing to resume from yet; run it again"
        )
    return (
        f"{where}; the last complete checkpoint is {latest}: run the same fit_supernet call with resume=True "
        f"(checkpoint_dir={str(checkpoints.directory)!r}) to continue from it"
    )


def capture_rng_state(
    device: Optional[torch.device] = None, generators: Optional[SearchGenerators] = None
) -> dict[str, Any]:
    """The Python, NumPy and torch (CPU, and CUDA of `device`) random states, and those of the
    search's own `generators`, as plain data."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, [int(k) for k in keys], int(position), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    if generators is not None:
        state["generators"] = generators.state_dict()
    return state


def restore_rng_state(
    state: dict[str, Any], device: Optional[torch.device] = None, generators: Optional[SearchGenerators] = None
) -> None:
    """Restore what `capture_rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    if generators is not None and "generators" in state:
        generators.load_state_dict(state["generators"])


def callback_states(callbacks: Sequence[Any]) -> list[Optional[dict[str, Any]]]:
    """Each callback's `state_dict()`, None for a callback without one (it keeps no state, or
    restarts from its initial state on resume)."""
    return [callback.state_dict() if _has_state(callback) else None for callback in callbacks]


def load_callback_states(callbacks: Sequence[Any], states: Sequence[Optional[dict[str, Any]]], path: Path) -> None:
    """Restore what `callback_states` captured, callback by callback; with another number of
    callbacks than the checkpoint's, those with state start afresh (with a warning)."""
    if len(states) != len(callbacks):
        if any(state is not None for state in states):
            warnings.warn(
                f"checkpoint {path} holds the state of {len(states)} callback(s), this search has "
                f"{len(callbacks)}: the callbacks start afresh",
                RuntimeWarning,
            )
        return
    for callback, state in zip(callbacks, states):
        if state is not None and _has_state(callback):
            callback.load_state_dict(state)
        elif state is not None:
            warnings.warn(
                f"checkpoint {path} holds a state for callback {callback!r}, which has no load_state_dict(): "
                "it starts afresh",
                RuntimeWarning,
            )


def _has_state(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))
