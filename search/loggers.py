"""Loggers: where a search writes what it does while it runs (Lightning's conventions).

A logger is any object with four methods (`Logger`): `log_metrics(step, metrics)` (a dict of
floats), `log_text(step, tag, text)`, `log_image(step, tag, image)` (an H x W x 3 uint8 array) and
`close()`; its `images` attribute (True by default) says whether the search draws its pictures
for it (drawing takes a moment each epoch: `CSVLogger(dir, images=False)` skips it).
`resume(step)`, if it has one, is called instead of starting afresh when a search resumes from a
checkpoint taken at `step`: what was logged after that step is dropped, so the run continues
without duplicate steps. Two are built in:

- `CSVLogger(dir)`: `metrics.csv` (one row per logged step, a column per key, as Lightning's
  CSVLogger writes it), `text.csv` (step, tag, text) and images as `images/<tag>/<step>.png`;
  no dependency.
- `TensorBoardLogger(dir)`: an event file through `torch.utils.tensorboard` (needs the
  `tensorboard` package: `pip install supernet[tensorboard]`).

Any other service is a few lines, for example Weights & Biases::

    class WandbLogger(Logger):
        def __init__(self, **init):
            import wandb
            self.run = wandb.init(**init)
        def log_metrics(self, step, metrics):
            self.run.log(metrics, step=step)
        def log_text(self, step, tag, text):
            self.run.log({tag: text}, step=step)
        def log_image(self, step, tag, image):
            import wandb
            self.run.log({tag: wandb.Image(image)}, step=step)
        def close(self):
            self.run.finish()
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np

PathLike = Union[str, Path]


class Logger:
    """The interface a search logs through; subclass it or write the four methods yourself."""

    #: whether the search draws the architecture diagram and the alpha heatmap for this logger
    images: bool = True

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Scalars at search step `step` (keys such as `train_loss`, `prob/<switch id>/<option>`)."""
        raise NotImplementedError

    def log_text(self, step: int, tag: str, text: str) -> None:
        """A text (e.g. the current architecture) at `step`."""
        raise NotImplementedError

    def log_image(self, step: int, tag: str, image: np.ndarray) -> None:
        """An H x W x 3 uint8 RGB image (e.g. the alpha heatmap) at `step`."""
        raise NotImplementedError

    def resume(self, step: int) -> None:
        """Continue a run resumed from a checkpoint at `step` (drop what was logged after it)."""

    def close(self) -> None:
        """Flush and release files; called once when the search ends."""


def check_loggers(loggers: object) -> list[Logger]:
    """The `loggers=` argument as a list, refusing objects that lack a logger's methods."""
    if loggers is None:
        return []
    if not isinstance(loggers, (list, tuple)):
        raise TypeError(
            f"loggers must be a list of loggers (e.g. [CSVLogger('runs/csv')]), got {type(loggers).__name__}"
        )
    for i, logger in enumerate(loggers):
        missing = [
            m for m in ("log_metrics", "log_text", "log_image", "close") if not callable(getattr(logger, m, None))
        ]
        if missing:
            raise TypeError(
                f"loggers[{i}] ({type(logger).__name__}) has no {', '.join(missing)} method: "
                "a logger implements search.loggers.Logger"
            )
    return list(loggers)


class CSVLogger(Logger):
    """Metrics to `<dir>/metrics.csv`, texts to `<dir>/text.csv`, images to `<dir>/images/`
    (`images=False`: none)."""

    def __init__(self, directory: PathLike, images: bool = True) -> None:
        self.images = images
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.directory / "metrics.csv"
        self.text_path = self.directory / "text.csv"
        self.rows: list[dict[str, float]] = []
        self.texts: list[tuple[int, str, str]] = []
        # a log already there is continued by a resumed search (`resume`) and never overwritten by a new one
        self._previous = self.metrics_path.exists() or self.text_path.exists()

    def __repr__(self) -> str:
        return f"CSVLogger({str(self.directory)!r})"

    def _check_fresh(self) -> None:
        if self._previous:
            raise FileExistsError(
                f"CSVLogger: {self.directory} already holds a log (metrics.csv / text.csv) that "
                "this search would overwrite; resume that search, or log to another directory"
            )

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        self._check_fresh()
        row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        if self.rows and row["step"] < self.rows[-1]["step"]:
            raise ValueError(
                f"CSVLogger({str(self.directory)!r}) got step {row['step']} after step {self.rows[-1]['step']}: "
                "steps only go forward in one log (a new search needs a new CSVLogger and directory)"
            )
        if self.rows and self.rows[-1]["step"] == row["step"]:  # several calls at one step: one row
            self.rows[-1].update(row)
        else:
            self.rows.append(row)
        self._write_metrics()

    def log_text(self, step: int, tag: str, text: str) -> None:
        self._check_fresh()
        self.texts.append((int(step), tag, text))
        with open(self.text_path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["step", "tag", "text"])
            writer.writerows(self.texts)

    def log_image(self, step: int, tag: str, image: np.ndarray) -> None:
        import matplotlib.image

        folder = self.directory / "images" / tag.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        matplotlib.image.imsave(folder / f"{int(step)}.png", _rgb(image))

    def resume(self, step: int) -> None:
        self._previous = False
        self.rows = [r for r in _read_rows(self.metrics_path) if r["step"] <= step]
        self.texts = [t for t in _read_texts(self.text_path) if t[0] <= step]
        self._write_metrics()
        for folder in (self.directory / "images").glob("*"):
            for png in folder.glob("*.png"):
                if png.stem.isdigit() and int(png.stem) > step:
                    png.unlink()

    def _write_metrics(self) -> None:
        keys = ["step"] + sorted({k for r in self.rows for k in r} - {"step"})
        with open(self.metrics_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)

    def close(self) -> None:
        self._write_metrics()


class TensorBoardLogger(Logger):
    """An event file in `directory`, read by TensorBoard (`tensorboard --logdir directory`);
    `images=False`: no architecture diagram or heatmap (scalars and texts only)."""

    def __init__(self, directory: PathLike, images: bool = True) -> None:
        self.images = images
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:  # torch's module imports the tensorboard package
            raise ImportError(
                "TensorBoardLogger needs the tensorboard package: pip install 'supernet[tensorboard]' "
                "(or pip install tensorboard)"
            ) from error
        self.directory = Path(directory)
        self._writer_class = SummaryWriter
        # opened at the first event: a process that never logs (rank > 0) leaves no empty event file
        self._writer: Optional[SummaryWriter] = None
        self._purge_step: Optional[int] = None

    @property
    def writer(self) -> Any:
        """The SummaryWriter of the run (opened on first use)."""
        if self._writer is None:
            self._writer = self._writer_class(str(self.directory), purge_step=self._purge_step)
        return self._writer

    def __repr__(self) -> str:
        return f"TensorBoardLogger({str(self.directory)!r})"

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, float(value), int(step))

    def log_text(self, step: int, tag: str, text: str) -> None:
        self.writer.add_text(tag, text, int(step))

    def log_image(self, step: int, tag: str, image: np.ndarray) -> None:
        self.writer.add_image(tag, _rgb(image), int(step), dataformats="HWC")

    def resume(self, step: int) -> None:
        # purge_step: TensorBoard hides the events at or after it that an interrupted run wrote
        self.close()
        self._purge_step = int(step) + 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def figure_image(figure: object) -> np.ndarray:
    """A matplotlib figure as an H x W x 3 uint8 array (and the figure closed)."""
    import matplotlib.pyplot as plt

    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return image


def _rgb(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
        raise ValueError(f"log_image takes an H x W x 3 uint8 array, got shape {array.shape} and dtype {array.dtype}")
    return array[..., :3]


def _read_rows(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
    for r in rows:
        r["step"] = int(r["step"])
    return rows


def _read_texts(path: Path) -> list[tuple[int, str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [(int(r["step"]), r["tag"], r["text"]) for r in csv.DictReader(f)]
