"""Benchmark: does the latency table predict the measured latency of exported architectures?

For each space (NB201 1-D cells on MNIST-1D-shaped inputs; the MobileNetV2-style 1-D chain) and
each summary statistic over rounds (the median; and the minimum, which on a machine shared with
other jobs is the most repeatable estimate of the unloaded latency): a `LatencyTable` is measured (per-op times, then
the executor overheads fitted on 8 calibration architectures, seed 0); then `--archs` other random
architectures (seed 1) are exported (`export_module`, what `SearchResult.export()` gives) and measured end to
end, all of them in interleaved rounds in this process. Reported: Kendall's tau and the median
relative error of the table's prediction against the measurement, the same for the bare sum of
per-op times (no overhead correction), Kendall's tau of FLOPs against the measurement, and, as the ceiling
the machine's noise sets, the agreement of a second end-to-end measurement with the first.

    python benchmarks/latency.py            # 60 architectures per space, a few minutes
    python benchmarks/latency.py --quick    # 12 architectures, smoke run

Results: benchmarks/results/latency.json (--quick: latency_quick.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torchmetrics.functional import kendall_rank_corrcoef

from search.spaces import mobilenet_space, nb201_1d_space
from supernet import Tensor, discretize
from supernet.export_module import export_module
from supernet.cost import architecture_cost
from supernet.latency import (
    LatencyTable,
    MeasureSettings,
    device_name,
    example_input,
    measure_modules,
    random_architectures,
)

RESULTS = Path(__file__).resolve().parent / "results"
SPACES = {
    "nb201_1d": lambda: nb201_1d_space(),
    "mobilenet_1d": lambda: mobilenet_space(Tensor("x", (1, 1, 40), ("N", "C", "L"))),
}


def tau(a: list[float], b: list[float]) -> float:
    return float(kendall_rank_corrcoef(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)))


def median_relative_error(predicted: list[float], measured: list[float]) -> float:
    return statistics.median(abs(p - m) / m for p, m in zip(predicted, measured))


def run(name: str, quantile: float, archs: int, batch_size: int, rounds: int) -> dict[str, Any]:
    space = SPACES[name]()
    settings = MeasureSettings(rounds=rounds, quantile=quantile, calibration=8, seed=0)
    start = time.perf_counter()
    table = LatencyTable.measure(space, batch_size=batch_size, settings=settings, progress=False)
    table_seconds = time.perf_counter() - start
    fixed = [discretize(space, a) for a in random_architectures(space, archs, seed=1)]
    predicted = [table.predict(f) for f in fixed]
    unfitted = dataclasses.replace(table, constant_ms=0.0, per_op_ms=0.0, per_weight_ms=0.0)  # measured terms only
    op_sums = [unfitted.op_sum_ms(f) for f in fixed]  # op forwards only
    flops = [architecture_cost(f, "flops") for f in fixed]
    modules = [export_module(f, seed=0) for f in fixed]
    start = time.perf_counter()
    measured = measure_modules(modules, example_input(space, batch_size), settings=settings, progress=False)
    measure_seconds = time.perf_counter() - start
    again = measure_modules(modules, example_input(space, batch_size), settings=settings, progress=False)
    result = {
        "space": name,
        "quantile": quantile,
        "architectures": archs,
        "batch_size": batch_size,
        "rounds": rounds,
        "table_entries": len(table.entries),
        "table_seconds": round(table_seconds, 1),
        "end_to_end_seconds": round(measure_seconds, 1),
        "constant_ms": table.constant_ms,
        "per_op_ms": table.per_op_ms,
        "per_weight_ms": table.per_weight_ms,
        "kendall_tau": tau(predicted, measured),
        "median_relative_error": median_relative_error(predicted, measured),
        "kendall_tau_op_sum_only": tau(op_sums, measured),
        "median_relative_error_op_sum_only": median_relative_error(op_sums, measured),
        "kendall_tau_flops": tau(flops, measured),
        "kendall_tau_remeasured": tau(again, measured),
        "median_relative_error_remeasured": median_relative_error(again, measured),
        "load_average": os.getloadavg(),
        "predicted_ms": predicted,
        "measured_ms": measured,
        "measured_again_ms": again,
        "op_sum_ms": op_sums,
        "flops": flops,
    }
    print(
        f"{name:13s} q={quantile:.1f}: tau {result['kendall_tau']:.3f}, median rel. error {result['median_relative_error']:.3f} "
        f"| op sum only: tau {result['kendall_tau_op_sum_only']:.3f}, error {result['median_relative_error_op_sum_only']:.3f} "
        f"| FLOPs tau {result['kendall_tau_flops']:.3f} | measured again: tau {result['kendall_tau_remeasured']:.3f}, "
        f"error {result['median_relative_error_remeasured']:.3f} | load {result['load_average'][0]:.1f} | table {len(table.entries)} entries, {table_seconds:.0f} s; "
        f"overheads: {table.constant_ms * 1e3:.1f} us + {table.per_op_ms * 1e3:.2f} us/op + {table.per_weight_ms * 1e3:.2f} us/weight",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="12 architectures, fewer rounds: a smoke run")
    parser.add_argument("--archs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--spaces", default=",".join(SPACES), help=f"comma-separated, of {sorted(SPACES)}")
    parser.add_argument("--quantiles", default="0.5,0.0", help="summary statistics over rounds (0.5: median)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    archs = args.archs or (12 if args.quick else 60)
    rounds = 7 if args.quick else 21
    setup = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "device": device_name("cpu"),
        "batch_size": args.batch_size,
        "architectures": archs,
        "rounds": rounds,
        "quick": args.quick,
    }
    print("setup:", json.dumps(setup), flush=True)
    unknown = [n for n in args.spaces.split(",") if n not in SPACES]
    if unknown:
        parser.error(f"unknown space(s) {unknown}; known: {sorted(SPACES)}")
    runs = [
        run(name, float(q), archs, args.batch_size, rounds)
        for name in args.spaces.split(",")
        for q in args.quantiles.split(",")
    ]
    out = Path(args.out) if args.out else RESULTS / ("latency_quick.json" if args.quick else "latency.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"setup": setup, "runs": runs}, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()
