"""The README's main job and the quickstart notebook run end to end (on a tiny budget)."""

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from search import UndecidedWarning
from search.demo import main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_writes_architecture_plots_and_accuracy(tmp_path):
    with pytest.warns(UndecidedWarning, match="undecided after"):  # one epoch decides nothing, and the demo says so
        summary = main(
            ["--out", str(tmp_path), "--epochs", "1", "--retrain-epochs", "1", "--channels", "4", "--no-progress"]
        )
    for name in (
        "architecture.json",
        "alpha_trajectories.png",
        "alpha_heatmap.png",
        "architecture.png",
        "summary.json",
        "search/result.json",
        "search/supernet.pt",
    ):
        assert (tmp_path / name).stat().st_size > 0, name
    spec = json.loads((tmp_path / "architecture.json").read_text())
    assert len(spec["architecture"]) == 6 and not any(n["type"] == "ChoiceOp" for n in spec["nodes"])
    assert 0.0 <= summary["retrained_test_accuracy"] <= 1.0
    assert 0.0 <= summary["random_architecture_test_accuracy"] <= 1.0  # the baseline printed beside it
    assert set(summary["confidence"]) == set(spec["architecture"]) and len(summary["random_architecture"]) == 6
    assert json.loads((tmp_path / "summary.json").read_text())["chosen_options"] == summary["chosen_options"]


def execute_notebook(name, tmp_path, monkeypatch, **env):
    """Run notebooks/<name> in a kernel (env variables set); returns its code cells' outputs."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" and "image/png" in o.data for o in outputs)
    return outputs


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    execute_notebook("quickstart.ipynb", tmp_path, monkeypatch, QUICKSTART_EPOCHS="1")


def test_train_once_notebook_executes(tmp_path, monkeypatch):
    outputs = execute_notebook("train_once.ipynb", tmp_path, monkeypatch, TRAIN_ONCE_EPOCHS="1")
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "tight: budget" in text and "loose: budget" in text and "retrained test accuracy" in text
