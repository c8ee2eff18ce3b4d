"""`import search` stays light: plotting, metrics and statistics libraries load when first used."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# matplotlib comes with torchmetrics (its plotting module) and with search.plots; scipy.stats takes ~2 s
HEAVY = ("matplotlib", "torchmetrics", "scipy")


def test_import_search_loads_no_plotting_metrics_or_statistics_library():
    probe = f"import sys, search; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [], f"`import search` loaded {done.stdout.strip()}"
