"""The 2-D exhaustive benchmark: every architecture of a small image cell space trained from scratch
(the table), then each search strategy's pick ranked in it; the same passes as `oracle.py`.

    python benchmarks/oracle2d.py table                      # 125 architectures x 2 seeds (resumable)
    python benchmarks/oracle2d.py strategies --seeds 5       # every strategy + random search
    python benchmarks/oracle2d.py strategies --strategies gdas,fairdarts --seeds 3

Space and data: see oracle2d_space.py (125 architectures; Fashion-MNIST at 14x14, 2000 train /
1000 val / 1000 test). Table recipe: `oracle.train_architecture` on `oracle2d_space()` (AdamW lr
0.01, one-cycle, batch 64) for `TABLE_EPOCHS` epochs; accuracy on test (and val); rank by mean
test accuracy over the seeds (`oracle_table.rank_percentile`). Strategies pass:
oracle_strategies.py (`fit_supernet(oracle2d_space(), train, val, strategy=..., epochs=15)`,
random search at the default strategy's wall time). Files: benchmarks/results/oracle2d_table.json,
benchmarks/results/oracle2d_strategies.json.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

sys.path.insert(
    0, str(Path(__file__).resolve().parent)
)  # the oracle_* helpers, also when imported as benchmarks.oracle2d

from oracle import BATCH_SIZE, main, train_architecture  # noqa: E402
from oracle2d_space import IMAGE_SIZE, TEST_SIZE, TRAIN_SIZE, VAL_SIZE, oracle2d_data, oracle2d_space  # noqa: E402
from oracle_benchmark import OracleBenchmark, Split  # noqa: E402
from oracle_space import all_architectures  # noqa: E402
from oracle_table import RESULTS  # noqa: E402

TABLE_EPOCHS = 4
TABLE_SEEDS = (0, 1)
TABLE_PATH = RESULTS / "oracle2d_table.json"
STRATEGIES_PATH = RESULTS / "oracle2d_strategies.json"


def train_architecture2d(
    architecture: Mapping[str, Any],
    seed: int,
    *,
    epochs: int = TABLE_EPOCHS,
    data: Optional[tuple[Split, Split, Split]] = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The table recipe on `oracle2d_space()`: `oracle.train_architecture` with its data (default `oracle2d_data(0)`)."""
    return train_architecture(
        architecture,
        seed,
        epochs=epochs,
        data=data if data is not None else oracle2d_data(0),
        progress=progress,
        space=oracle2d_space,
    )


def table_setup2d(epochs: int, seeds: Sequence[int]) -> dict[str, Any]:
    """The recipe a 2-D table was trained with; a partial table is resumed only under the same one."""
    return {
        "space": "oracle2d_space(): stem Conv3x3(16)+BN, 2 tied 3-edge cells (avg-pool 2x2 between), NB201 head; "
        "5 NB201 ops per edge",
        "architectures": len(all_architectures(oracle2d_space())),
        "data": f"Fashion-MNIST averaged to {IMAGE_SIZE}x{IMAGE_SIZE}: train {TRAIN_SIZE} / val {VAL_SIZE} of its training "
        f"set (oracle2d_data(0)) / its first {TEST_SIZE} test images",
        "recipe": f"train_classifier: AdamW lr 0.01, wd 5e-4, one-cycle, batch {BATCH_SIZE}, {epochs} epochs from scratch",
        "epochs": epochs,
        "seeds": list(seeds),
        "rank": "by mean test accuracy over the seeds (rank_percentile)",
    }


ORACLE2D = OracleBenchmark(
    name="oracle2d",
    space=oracle2d_space,
    data=lambda: oracle2d_data(0),
    train_architecture=train_architecture2d,
    table_epochs=TABLE_EPOCHS,
    setup=table_setup2d,
    table_path=TABLE_PATH,
    strategies_path=STRATEGIES_PATH,
    command="python benchmarks/oracle2d.py table",
)

if __name__ == "__main__":
    main(bench=ORACLE2D, seeds=TABLE_SEEDS, description=__doc__)
