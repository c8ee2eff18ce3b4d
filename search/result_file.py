"""The saved form of a SearchResult: `result.json` + `supernet.pt` in a directory.

Format versions: 1, the files written before the version was recorded (read as they are); 2 adds
`format_version` and `weights` (the byte size of `supernet.pt`, so that a result.json is never
read with weights another save left). A file of a newer version is refused with a clear message.

Writing is atomic: both files are written into a temporary folder beside the target, then moved
into place (weights first, result.json last), so a failure (a full disk, an interrupted process)
leaves the previous result intact and nothing partial; the error names the path and the cause.

Reading checks what a hand edit can break: the chosen option names must agree with the indices,
the spec with the architecture; with the search space given, the indices and values must be ones
the space allows and the option labels are taken from the space.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch

FORMAT_VERSION = 2
REQUIRED = ("architecture", "probabilities", "history", "metrics", "option_names", "config")


def write_result(directory: Path, payload: dict[str, Any], state: Optional[dict[str, torch.Tensor]]) -> Path:
    """Write `payload` (JSON) and `state` (torch) into `directory` atomically; returns it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".saving-", dir=directory))
    except OSError as error:
        raise OSError(error.errno, f"cannot save the result to {directory}: {error.strerror or error}") from error
    try:
        payload = {"format_version": FORMAT_VERSION, **payload}
        if state is not None:
            _write(staging / "supernet.pt", lambda f: torch.save(state, f), directory)
            payload["weights"] = {"file": "supernet.pt", "bytes": (staging / "supernet.pt").stat().st_size}
        _write(staging / "result.json", lambda f: f.write(json.dumps(payload, indent=1).encode()), directory)
        if state is not None:
            os.replace(staging / "supernet.pt", directory / "supernet.pt")
        elif (directory / "supernet.pt").exists():  # a stale weight file would be read with this result
            (directory / "supernet.pt").unlink()
        os.replace(staging / "result.json", directory / "result.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _write(file: Path, write: Callable[[Any], Any], directory: Path) -> None:
    try:
        with open(file, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as a RuntimeError
        free = shutil.disk_usage(file.parent).free
        cause = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0][:200]
        code = getattr(error, "errno", None) or (errno.ENOSPC if free < 1 << 20 else errno.EIO)
        raise OSError(
            code,
            f"cannot save the result to {directory}: writing {file.name} failed ({cause}; "
            f"{free} bytes free there); nothing was changed in {directory}",
        ) from error


def read_payload(directory: Path) -> dict[str, Any]:
    """The payload of `directory/result.json`, migrated to the current format; raises ValueError
    naming the file when it is not a saved SearchResult, was written by a newer version, or holds
    names, indices or a spec that disagree."""
    file = directory / "result.json"
    try:
        payload = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is corrupt (not valid JSON: {err}); save the result again") from None
    missing = [key for key in REQUIRED if key not in payload] if isinstance(payload, dict) else list(REQUIRED)
    if missing:
        raise ValueError(f"{file} is corrupt or not a saved SearchResult (it lacks {missing}); save the result again")
    version = payload.get("format_version", 1)
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"{file} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{file} was written by a newer version of supernet (result format {version}; this one reads "
            f"formats up to {FORMAT_VERSION}): upgrade supernet to read it"
        )
    _check_names_agree(file, payload)
    _check_spec(file, payload)
    return payload


def check_weights_file(directory: Path, payload: Mapping[str, Any]) -> None:
    """Refuse weights that are not the ones saved with this result.json (format 2 records their size)."""
    recorded = payload.get("weights")
    weights = directory / "supernet.pt"
    if recorded is None:
        return
    if not weights.exists():
        raise ValueError(f"{directory / 'result.json'} was saved with weights, but {weights} is missing")
    if weights.stat().st_size != recorded.get("bytes"):
        raise ValueError(
            f"{weights} is corrupt or not the weight file saved with {directory / 'result.json'} "
            f"({weights.stat().st_size} bytes, {recorded.get('bytes')} recorded); save the result again"
        )


def read_weights(file: Path) -> dict[str, torch.Tensor]:
    """The saved supernet weights; a file torch cannot read as a state dict raises ValueError."""
    try:
        state = torch.load(file, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:  # torch's own message suggests weights_only=False: unsafe, and no help here
        raise ValueError(f"{file} is corrupt (not a file of tensors torch.save wrote); save the result again") from None
    except Exception as err:  # RuntimeError, EOFError... depending on the damage
        raise ValueError(
            f"{file} is corrupt (torch.load failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            "save the result again"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(
            f"{file} is corrupt or not saved supernet weights (expected a dict of tensors, got {type(state).__name__})"
        )
    return state


def _labels(payload: Mapping[str, Any], sid: str, choice: Any) -> Optional[str]:
    names, values = payload["option_names"].get(sid), payload.get("option_values", {}).get(sid)
    if names is None:
        return None
    position = list(values).index(choice) if values is not None and choice in values else choice
    return names[position] if isinstance(position, int) and 0 <= position < len(names) else None


def _check_names_agree(file: Path, payload: Mapping[str, Any]) -> None:
    saved = payload.get("chosen_options")
    if saved is None:
        return
    for sid, choice in payload["architecture"].items():
        label = _labels(payload, sid, choice)
        if label is not None and saved.get(sid) != label:
            raise ValueError(
                f"{file}: switch {sid} chooses {choice!r}, which is option {label!r}, but chosen_options "
                f"says {saved.get(sid)!r}; the names and indices disagree (edited by hand?): fix one of them"
            )
    extra = sorted(set(saved) - set(payload["architecture"]))
    if extra:
        raise ValueError(f"{file}: chosen_options names {extra[:3]}, which the architecture does not choose")


def _check_spec(file: Path, payload: Mapping[str, Any]) -> None:
    spec = payload.get("spec")
    if spec is None:
        return
    if (
        not isinstance(spec, dict)
        or not isinstance(spec.get("nodes"), list)
        or spec.get("architecture") != payload["architecture"]
    ):
        raise ValueError(
            f"{file}: its spec does not describe its architecture (a spec holds the architecture and its node "
            "list); save the result again"
        )


def check_architecture_labels(file: Path, payload: Mapping[str, Any], labels: Mapping[str, list[str]]) -> None:
    """Refuse a file whose option labels differ from the space's (`labels`: switch id -> label per
    option value of the file); the space's labels are then the ones used."""
    for sid, names in payload["option_names"].items():
        if sid in labels and list(names) != list(labels[sid]):
            raise ValueError(
                f"{file}: the option names of {sid} are {list(names)}, the space's are {list(labels[sid])}; "
                "the file was edited or comes from another space"
            )
