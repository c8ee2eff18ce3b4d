"""The built-in loggers read back: CSV files and TensorBoard event files, and resume without duplicates."""

import csv

import numpy as np
import pytest

from search.loggers import CSVLogger, Logger, TensorBoardLogger, check_loggers

IMAGE = np.zeros((8, 12, 3), dtype=np.uint8)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_logger_writes_a_row_per_step_with_a_column_per_key(tmp_path):
    log = CSVLogger(tmp_path)
    log.log_metrics(0, {"train_loss": 2.0})
    log.log_metrics(0, {"prob/s/a": 0.5})  # the same step: one row
    log.log_metrics(3, {"train_loss": 1.0, "prob/s/a": 0.75})
    log.log_text(3, "architecture", "s: a")
    log.log_image(3, "alpha/heatmap", IMAGE)
    log.close()
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == ["0", "3"]
    assert rows[0]["train_loss"] == "2.0" and rows[0]["prob/s/a"] == "0.5" and rows[1]["prob/s/a"] == "0.75"
    assert read_csv(tmp_path / "text.csv") == [{"step": "3", "tag": "architecture", "text": "s: a"}]
    assert (tmp_path / "images" / "alpha_heatmap" / "3.png").exists()


def test_csv_logger_resume_drops_what_followed_the_checkpoint_and_a_new_run_is_refused(tmp_path):
    log = CSVLogger(tmp_path)
    for step in range(6):
        log.log_metrics(step, {"loss": float(step)})
        log.log_image(step, "heatmap", IMAGE)
    log.close()
    with pytest.raises(FileExistsError, match="already holds a log"):
        CSVLogger(tmp_path).log_metrics(0, {"loss": 0.0})
    again = CSVLogger(tmp_path)
    again.resume(3)
    again.log_metrics(4, {"loss": 40.0})
    again.close()
    rows = read_csv(tmp_path / "metrics.csv")
    assert [(r["step"], r["loss"]) for r in rows] == [
        ("0", "0.0"),
        ("1", "1.0"),
        ("2", "2.0"),
        ("3", "3.0"),
        ("4", "40.0"),
    ]
    assert sorted(p.stem for p in (tmp_path / "images" / "heatmap").glob("*.png")) == ["0", "1", "2", "3"]


def test_log_image_refuses_what_is_not_an_rgb_uint8_array(tmp_path):
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        CSVLogger(tmp_path).log_image(0, "x", np.zeros((4, 4)))


def test_check_loggers_names_the_missing_methods():
    class Half:
        def log_metrics(self, step, metrics):
            pass

    with pytest.raises(TypeError, match=r"loggers\[1\] \(Half\) has no log_text, log_image, close"):
        check_loggers([Logger(), Half()])
    with pytest.raises(TypeError, match="must be a list"):
        check_loggers(CSVLogger)
    assert check_loggers(None) == []


def scalars(directory):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_logger_event_file_reads_back_and_resume_purges_later_steps(tmp_path):
    pytest.importorskip("tensorboard")
    log = TensorBoardLogger(tmp_path)
    for step in range(5):
        log.log_metrics(step, {"train_loss": 1.0 / (step + 1), "prob/s/a": 0.1 * step})
    log.log_text(4, "architecture", "s: a")
    log.log_image(4, "alpha_heatmap", IMAGE)
    log.close()
    events = scalars(tmp_path)
    assert set(events.Tags()["scalars"]) == {"train_loss", "prob/s/a"}
    assert [e.step for e in events.Scalars("train_loss")] == [0, 1, 2, 3, 4]
    assert events.Tags()["images"] == ["alpha_heatmap"]
    resumed = TensorBoardLogger(tmp_path)
    resumed.resume(2)
    for step in (3, 4):
        resumed.log_metrics(step, {"train_loss": 10.0 + step})
    resumed.close()
    steps = [(e.step, e.value) for e in scalars(tmp_path).Scalars("train_loss")]
    assert [s for s, _ in steps] == [0, 1, 2, 3, 4] and steps[3][1] == 13.0
