"""benchmarks/gpu.py without CUDA: a clear message and exit status 2, nothing measured."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is here: the script would run")
def test_without_cuda_the_gpu_script_exits_with_a_clear_message(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "benchmarks/gpu.py needs a CUDA device" in done.stderr and "nothing was measured" in done.stderr
    assert not out.exists()
