"""Build time of embedded_vision_net against its number of blocks (1 to 10): linear, not exponential.

    python benchmarks/evn_build.py              # blocks 1..10 (and 20, 40), median of 5 builds each
    python benchmarks/evn_build.py --repeats 1

HANNAH's space (`search.spaces.embedded_vision_net`, input 1 x 3 x 32 x 32, 10 classes, widths up to
512) built with `max_blocks = blocks - 1`; one thread. Besides the time: the graph's node and
parameter counts, and the time per node, which stays flat when construction is linear in the graph.
Two sizes beyond HANNAH's (20 and 40 blocks) show what is left: a small quadratic term (each op
walks the whole shape expression of its input when it registers parameters, and a pooling option
passes the input's channels through, so a block's channel expression reaches back to the stem).
Results: benchmarks/results/evn_build.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from search.spaces import embedded_vision_net  # noqa: E402
from supernet import Tensor, get_nodes  # noqa: E402


def build_seconds(blocks: int) -> tuple[float, int, int]:
    """(seconds to build, graph nodes, parameters) of embedded_vision_net with `blocks` blocks."""
    x = Tensor("input", (1, 3, 32, 32), ("N", "C", "H", "W"))
    gc.collect()  # the previous builds' garbage is not this build's time
    start = time.perf_counter()
    space = embedded_vision_net("evn", x, 10, max_blocks=blocks - 1)
    elapsed = time.perf_counter() - start
    return elapsed, len(list(get_nodes(space))), len(space.parametrization())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results" / "evn_build.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    setup = {
        "space": "embedded_vision_net(input 1x3x32x32, num_classes=10, max_channels=512)",
        "repeats": args.repeats,
        "statistic": "median",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
    }
    print("setup:", json.dumps(setup))
    build_seconds(1)  # warm-up: imports and first-call caches out of the first measurement
    rows = []
    print(f"{'blocks':>6} {'seconds':>8} {'nodes':>6} {'params':>6} {'ms/node':>8}")
    for blocks in (*range(1, 11), 20, 40):
        runs = [build_seconds(blocks) for _ in range(args.repeats)]
        seconds = statistics.median(r[0] for r in runs)
        _, nodes, params = runs[0]
        rows.append({"blocks": blocks, "seconds": seconds, "nodes": nodes, "parameters": params})
        print(f"{blocks:>6} {seconds:>8.3f} {nodes:>6} {params:>6} {1000 * seconds / nodes:>8.3f}")
    per_node = {r["blocks"]: 1000 * r["seconds"] / r["nodes"] for r in rows}
    summary = {f"ms_per_node_at_{b}_blocks": per_node[b] for b in (1, 10, 40)}
    print("time per node at 1, 10 and 40 blocks (ms):", ", ".join(f"{v:.3f}" for v in summary.values()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"setup": setup, "rows": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
