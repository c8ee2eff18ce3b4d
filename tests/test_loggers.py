"""The built-in loggers read back: CSV files and TensorBoard event files, and resume without duplicates."""

import csv

import numpy as np
import torch
import pytest

from search.plots import search_phases
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


def test_csv_logger_refuses_a_step_that_goes_back(tmp_path):
    log = CSVLogger(tmp_path)
    log.log_metrics(5, {"loss": 1.0})
    with pytest.raises(ValueError, match=r"got step 2 after step 5: steps only go forward"):
        log.log_metrics(2, {"loss": 1.0})


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


# through fit_supernet: a tiny search logged by both loggers, read back

EPOCHS, STEPS_PER_EPOCH = 4, 3  # 48 training samples in batches of 16


def logged_search(directory, record_every=1, resume=False, callbacks=(), images=True, **settings):
    from search import fit_supernet
    from search.strategies.drnas import DrNAS

    from helpers import resume_space, threshold_data

    return fit_supernet(
        resume_space(),
        threshold_data(),
        strategy=DrNAS(warmup_epochs=1),  # epoch 0 warm-up, 1 search, 2-3 the decision phase
        epochs=EPOCHS,
        batch_size=16,
        seed=3,
        progress=False,
        on_undecided="ignore",
        record_every=record_every,
        cost="params",
        cost_weight=0.1,
        checkpoint_dir=directory / "checkpoints",
        resume=resume,
        callbacks=list(callbacks),
        loggers=[TensorBoardLogger(directory / "tb", images=images), CSVLogger(directory / "csv", images=images)],
        **settings,
    )


def texts(accumulator, tag):
    return [(e.step, e.tensor_proto.string_val[0].decode()) for e in accumulator.Tensors(f"{tag}/text_summary")]


def test_a_search_logs_steps_epochs_texts_and_images_to_both_loggers(tmp_path):
    pytest.importorskip("tensorboard")
    result = logged_search(tmp_path, record_every=2)
    options = result.option_names
    events = scalars(tmp_path / "tb")
    expected_keys = {"train_loss", "val_loss", "lr/weight", "lr/arch", "expected_params", "phase/warmup"}
    expected_keys |= {f"prob/{sid}/{label}" for sid, labels in options.items() for label in labels}
    expected_keys |= {f"margin/{sid}" for sid in options}
    assert expected_keys <= set(events.Tags()["scalars"])
    recorded = list(range(2, EPOCHS * STEPS_PER_EPOCH + 1, 2))  # every record_every-th step
    for key in expected_keys:
        assert [e.step for e in events.Scalars(key)] == recorded, key
    sid, labels = next(iter(options.items()))
    for i, event in enumerate(events.Scalars(f"prob/{sid}/{labels[0]}")):
        at = result.history["steps"].index(event.step)
        assert event.value == pytest.approx(result.history["probabilities"][sid][at][0])
    epoch_ends = [STEPS_PER_EPOCH * (e + 1) for e in range(EPOCHS)]
    assert [e.step for e in events.Scalars("epoch/val_accuracy")] == epoch_ends
    assert [e.value for e in events.Scalars("epoch/train_loss")] == pytest.approx(
        [row["train_loss"] for row in result.metrics]
    )
    assert [e.value for e in events.Scalars("phase/warmup")] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert [e.value for e in events.Scalars("phase/decision")] == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert set(events.Tags()["images"]) == {"architecture", "alpha_heatmap"}
    assert [e.step for e in events.Images("alpha_heatmap")] == epoch_ends
    architecture = texts(events, "architecture")
    assert [step for step, _ in architecture] == epoch_ends
    chosen = result.chosen_options
    assert architecture[-1][1] == "\n".join(f"{sid}: {label}" for sid, label in chosen.items())
    assert texts(events, "events") == [
        (2, "warm-up: weights only in epoch 0"),
        (4, "searching from epoch 1"),
        (8, "decision phase from epoch 2"),
    ]
    rows = read_csv(tmp_path / "csv" / "metrics.csv")
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(recorded + epoch_ends))  # one row per step, in order
    assert expected_keys | {"epoch/val_accuracy", "epoch"} <= set(rows[0])
    assert [float(r["train_loss"]) for r in rows if int(r["step"]) in recorded] == pytest.approx(
        [e.value for e in events.Scalars("train_loss")]
    )
    assert sorted(int(p.stem) for p in (tmp_path / "csv" / "images" / "alpha_heatmap").glob("*.png")) == epoch_ends


class Crash(Exception):
    pass


def test_a_resumed_search_continues_its_logs_without_duplicate_steps(tmp_path):
    pytest.importorskip("tensorboard")
    uninterrupted = logged_search(tmp_path / "uninterrupted", images=False)

    def crash(state):  # in epoch 2's callback: epoch 2 was logged, its checkpoint never written
        if state["epoch"] == 2:
            raise Crash

    with pytest.raises(Crash):
        logged_search(tmp_path / "resumed", callbacks=[crash], images=False)
    logged_at_crash = read_csv(tmp_path / "resumed" / "csv" / "metrics.csv")
    assert int(logged_at_crash[-1]["step"]) == 3 * STEPS_PER_EPOCH  # the loggers were closed: nothing lost
    resumed = logged_search(tmp_path / "resumed", resume=True, images=False)
    checkpoint_step = 2 * STEPS_PER_EPOCH
    assert resumed == uninterrupted and resumed.history["resumed_at_step"] == [checkpoint_step]
    assert search_phases(resumed.history)["resumed"] == [checkpoint_step]  # the plots' resume marker

    rows = read_csv(tmp_path / "resumed" / "csv" / "metrics.csv")
    assert [r["step"] for r in rows] == [str(s) for s in range(1, EPOCHS * STEPS_PER_EPOCH + 1)]
    assert rows == read_csv(tmp_path / "uninterrupted" / "csv" / "metrics.csv")  # the same search, logged once
    resumed_events, uninterrupted_events = (
        scalars(tmp_path / "resumed" / "tb"),
        scalars(tmp_path / "uninterrupted" / "tb"),
    )
    for key in ("train_loss", "epoch/val_loss", "lr/arch"):
        got = [(e.step, e.value) for e in resumed_events.Scalars(key)]
        assert got == [(e.step, e.value) for e in uninterrupted_events.Scalars(key)], key
    resume_marks = [t for t in texts(resumed_events, "events") if t[1].startswith("resumed")]
    assert resume_marks == [(checkpoint_step, f"resumed from the checkpoint at step {checkpoint_step}")]
    text_rows = read_csv(tmp_path / "resumed" / "csv" / "text.csv")
    assert [int(r["step"]) for r in text_rows if r["tag"] == "architecture"] == [3, 6, 9, 12]


def test_only_rank_0_logs(tmp_path, monkeypatch):
    import search.fit
    from search.distributed import DistributedContext

    def rank_1(distributed, device):
        return DistributedContext(enabled=False, rank=1, world_size=2), torch.device("cpu")

    monkeypatch.setattr(search.fit, "setup_distributed", rank_1)
    logger = Recording()
    tiny_search([logger])
    assert logger.calls == []  # another rank's logger is left alone (a TensorBoardLogger opens no file)
    monkeypatch.undo()
    tiny_search([logger])
    assert {"log_metrics", "log_text", "log_image"} <= set(logger.calls)


class Recording(Logger):
    """A logger that notes which of its methods were called (and so shows the interface suffices)."""

    def __init__(self):
        self.calls = []

    def log_metrics(self, step, metrics):
        self.calls.append("log_metrics")

    def log_text(self, step, tag, text):
        self.calls.append("log_text")

    def log_image(self, step, tag, image):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        self.calls.append("log_image")

    def close(self):
        self.calls.append("close")


def tiny_search(loggers):
    """One epoch of a tiny search, logged to `loggers`."""
    from search import fit_supernet

    from helpers import resume_space, threshold_data

    settings = dict(epochs=1, batch_size=16, progress=False, on_undecided="ignore")
    return fit_supernet(resume_space(), threshold_data(48), loggers=loggers, **settings)


def test_a_logger_without_images_gets_none_drawn(tmp_path, monkeypatch):
    import search.live_log

    def no_drawing(self, snapshot):
        raise AssertionError("no logger wants images: nothing is drawn")

    monkeypatch.setattr(search.live_log.LiveLog, "_images", no_drawing)
    tiny_search([CSVLogger(tmp_path, images=False)])
    assert (tmp_path / "metrics.csv").exists() and not (tmp_path / "images").exists()


def test_tensorboard_logger_without_tensorboard_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(ImportError, match=r"pip install 'supernet\[tensorboard\]'"):
        TensorBoardLogger(tmp_path)


def test_the_demo_logs_its_search_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from search import UndecidedWarning
    from search.demo import main

    arguments = ["--out", str(tmp_path / "demo"), "--epochs", "1", "--retrain-epochs", "1", "--channels", "4"]
    with pytest.warns(UndecidedWarning):  # one epoch decides nothing
        main([*arguments, "--no-progress", "--tensorboard", str(tmp_path / "tb")])
    events = scalars(tmp_path / "tb")
    probabilities = [tag for tag in events.Tags()["scalars"] if tag.startswith("prob/")]
    assert len(probabilities) == 6 * 5  # the six edges of the NB201 cell, five options each
    assert {"train_loss", "epoch/val_accuracy", "lr/arch"} <= set(events.Tags()["scalars"])


def test_in_a_distributed_search_only_rank_0_writes(tmp_path):
    """torchrun with 2 CPU processes (gloo), each given loggers: one event file, one CSV log."""
    pytest.importorskip("tensorboard")
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("ddp_logging.py")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(script.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(variable, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    done = subprocess.run([*command, str(tmp_path)], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert len(list((tmp_path / "tb").glob("events.out.tfevents.*"))) == 1  # rank 1 opened no event file
    assert [e.step for e in scalars(tmp_path / "tb").Scalars("train_loss")] == [1, 2]  # 32 samples a side, batch 16
    assert (tmp_path / "csv0" / "metrics.csv").exists()
    assert not any((tmp_path / "csv1").iterdir())  # rank 1's logger was never written to
