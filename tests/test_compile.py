"""fit_supernet(compile=True): compiled equals eager (in a subprocess: inductor is slow on a small
CPU), and the searches it cannot help are refused up front."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from search import fit_supernet
from search.settings import ExecutionSettings

from helpers import threshold_data, resume_space

SCRIPT = Path(__file__).with_name("compile_equals_eager.py")


def search(**overrides):
    settings = dict(epochs=1, batch_size=16, seed=0, progress=False, on_undecided="ignore", compile=True)
    settings.update(overrides)
    return fit_supernet(resume_space(), threshold_data(), **settings)


@pytest.mark.parametrize("strategy", ["gdas", "spos", "proxyless", "fairnas"])
def test_a_strategy_sampling_a_path_per_step_is_refused(strategy):
    with pytest.raises(ValueError, match=rf"compile=True: strategy '{strategy}' samples a new path every step"):
        search(strategy=strategy)


def test_compile_without_a_c_compiler_is_refused(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match=r"compile=True on CPU needs a C compiler"):
        search(strategy="darts")


def test_compile_must_be_a_bool():
    with pytest.raises(ValueError, match="compile must be True or False, got 'yes'"):
        ExecutionSettings(compile="yes")


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler")
def test_the_compiled_search_equals_the_eager_one_within_float_tolerance():
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(SCRIPT.parents[1]), str(SCRIPT.parent), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "darts", "32"], env=env, capture_output=True, text=True, timeout=500
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["config"] is True and report["same_architecture"]
    assert report["probabilities"] < 1e-5 and report["weights"] < 1e-5 and report["losses"] < 1e-5
