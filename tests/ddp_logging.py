"""A distributed search with loggers on every rank, launched by tests/test_loggers.py:

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_logging.py OUT_DIR

Every rank passes a TensorBoardLogger on OUT_DIR/tb (one directory for all) and a CSVLogger on
OUT_DIR/csv<rank>; only rank 0's should be written to.
"""

import os
import sys
from pathlib import Path

import torch

from search import CSVLogger, TensorBoardLogger, fit_supernet

from helpers import resume_space, threshold_data  # the script's folder is first on sys.path


def main(out: Path) -> None:
    torch.set_num_threads(1)
    loggers = [TensorBoardLogger(out / "tb"), CSVLogger(out / f"csv{os.environ['RANK']}")]
    fit_supernet(
        resume_space(),
        threshold_data(64),
        epochs=1,
        batch_size=16,
        progress=False,
        on_undecided="ignore",
        distributed=True,
        loggers=loggers,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
