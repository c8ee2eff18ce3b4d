"""The GPU path, checked end to end on a CUDA device.

    python benchmarks/gpu.py                  # NB201 C=16 N=5, 3 epochs per row
    python benchmarks/gpu.py --cells 1 --epochs 2 --samples 1024   # a shorter check

On a CUDA device it runs, and prints as one table (step time, peak `torch.cuda.max_memory_allocated`,
the architecture picked):
- the NB201 search (`fit_supernet`, the default strategy) for `--epochs` epochs in each precision
  ("32", "bf16-mixed", "16-mixed"), eager and compiled (`compile=True`);
- a 1-process DDP search with the nccl backend, launched with
  `torchrun --standalone --nproc_per_node=1` (this script with `--ddp-worker`);
- the latency table of the space measured on CUDA (synchronised around each block), its
  prediction for the fp32 pick against the exported module's measured latency;
- the exported fp32 pick in ONNX Runtime's CUDA execution provider, if onnxruntime has it.
The data are random CIFAR-shaped tensors (3x32x32, 10 classes): the rows measure the machinery,
not accuracy. The JSON goes to benchmarks/results/gpu.json. Without CUDA the script exits with
status 2 and says so, measuring nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import torch

NO_CUDA_STATUS = 2
HERE = Path(__file__).resolve().parent


def no_cuda_message() -> Optional[str]:
    """Why this script cannot run here, or None when a CUDA device is available."""
    if torch.cuda.is_available():
        return None
    return (
        f"benchmarks/gpu.py needs a CUDA device: torch.cuda.is_available() is False here (torch {torch.__version__}, "
        f"{platform.machine()}); nothing was measured. Run it on a machine with an NVIDIA GPU and a CUDA build of torch."
    )


def data(samples: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(samples, 3, 32, 32, generator=g), torch.randint(0, 10, (samples,), generator=g)


def space(cells: int):
    from search.spaces import nb201_space
    from supernet import Tensor

    return nb201_space(Tensor("x", (1, 3, 32, 32), ("N", "C", "H", "W")), channels=16, cells_per_stage=cells)


class EpochClock:
    """A callback timing each epoch on the device's clock (synchronised)."""

    def __init__(self) -> None:
        torch.cuda.synchronize()
        self.times = [time.perf_counter()]

    def __call__(self, state: dict[str, Any]) -> None:
        torch.cuda.synchronize()
        self.times.append(time.perf_counter())


def search_row(args: argparse.Namespace, precision: str, compiled: bool, **extra: Any) -> dict[str, Any]:
    """One search: seconds per step (epochs after the first: compilation excluded), peak memory, pick."""
    from search import fit_supernet

    torch.cuda.reset_peak_memory_stats()
    clock = EpochClock()
    start = time.perf_counter()
    result = fit_supernet(
        space(args.cells),
        data(args.samples),
        epochs=args.epochs,
        batch_size=args.batch,
        precision=precision,
        compile=compiled,
        progress=False,
        on_undecided="ignore",
        callbacks=[clock],
        **extra,
    )
    per_epoch = [b - a for a, b in zip(clock.times, clock.times[1:])]
    steps_per_epoch = (args.samples // 2) // args.batch
    later = per_epoch[1:] or per_epoch
    return {
        "precision": precision,
        "compiled": compiled,
        "first_epoch_s": round(per_epoch[0], 2),
        "step_s": round(sum(later) / len(later) / steps_per_epoch, 4),
        "peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "total_s": round(time.perf_counter() - start, 1),
        "pick": result.chosen_options,
        "result": result,
    }


def ddp_row(args: argparse.Namespace) -> dict[str, Any]:
    """The search on torch.distributed (nccl), one process, launched by torchrun."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=1",
            str(Path(__file__).resolve()),
            "--ddp-worker",
            str(out),
            "--cells",
            str(args.cells),
            "--epochs",
            str(args.epochs),
            "--samples",
            str(args.samples),
            "--batch",
            str(args.batch),
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
        if done.returncode != 0:
            return {"error": f"torchrun exited {done.returncode}: {done.stderr[-1500:]}"}
        return json.loads(out.read_text())


def ddp_worker(args: argparse.Namespace) -> None:
    import torch.distributed as dist

    row = search_row(args, "32", False, distributed=True)
    row.pop("result")
    row["backend"] = dist.get_backend() if dist.is_initialized() else None
    row["world_size"] = dist.get_world_size() if dist.is_initialized() else 1
    if not dist.is_initialized() or dist.get_rank() == 0:
        Path(args.ddp_worker).write_text(json.dumps(row))


def latency_row(args: argparse.Namespace, result: Any) -> dict[str, Any]:
    """The latency table on CUDA: its prediction for the pick against the exported module, measured."""
    from supernet.latency import LatencyTable, measure_module

    try:
        start = time.perf_counter()
        table = LatencyTable.measure(space(args.cells), batch_size=1, device="cuda", progress=False)
        seconds = time.perf_counter() - start
        module = result.export(inherit_weights=True).to("cuda")
        measured = measure_module(module, torch.randn(1, 3, 32, 32, device="cuda"), device="cuda")
        return {
            "device": table.key.device,
            "entries": len(table.rows()),
            "measure_s": round(seconds, 1),
            "predicted_ms": round(table.predict(result.discretized()), 4),
            "measured_ms": round(measured, 4),
        }
    except Exception as err:  # report, do not hide
        return {"error": f"{type(err).__name__}: {str(err)[:400]}"}


def onnx_row(result: Any) -> dict[str, Any]:
    """The exported pick in ONNX Runtime's CUDA execution provider (skipped without one)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"skipped": "onnxruntime is not installed"}
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return {"skipped": f"onnxruntime has no CUDAExecutionProvider ({ort.get_available_providers()})"}
    try:
        module = result.export(inherit_weights=True).eval()
        x = torch.randn(8, 3, 32, 32)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pick.onnx"
            torch.onnx.export(module, (x,), str(path), input_names=["x"], dynamo=False)
            session = ort.InferenceSession(str(path), providers=["CUDAExecutionProvider"])
            with torch.no_grad():
                expected = module(x).numpy()
            got = session.run(None, {"x": x.numpy()})[0]
            start = time.perf_counter()
            for _ in range(20):
                session.run(None, {"x": x.numpy()})
            ms = (time.perf_counter() - start) / 20 * 1000
        return {
            "providers": session.get_providers(),
            "max_abs_diff": float(abs(got - expected).max()),
            "batch8_ms": round(ms, 3),
        }
    except Exception as err:  # report, do not hide
        return {"error": f"{type(err).__name__}: {str(err)[:400]}"}


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'run':<24} {'step s':>8} {'1st epoch s':>12} {'peak MB':>9}  pick")
    for row in rows:
        if "error" in row:
            print(f"{row.get('name', '?'):<24} error: {row['error'][:200]}")
            continue
        pick = ",".join(option for _, option in sorted(row["pick"].items())) if row.get("pick") else ""
        print(f"{row['name']:<24} {row['step_s']:>8} {row['first_epoch_s']:>12} {row['peak_mb']:>9}  {pick[:60]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=5, help="NB201 cells per stage")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=4096, help="random samples (half train, half val)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--timeout", type=int, default=900, help="seconds for the torchrun run")
    parser.add_argument("--ddp-worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "gpu.json"))
    args = parser.parse_args()
    message = no_cuda_message()
    if message is not None:
        print(message, file=sys.stderr)
        raise SystemExit(NO_CUDA_STATUS)
    sys.path.insert(0, str(HERE.parent))
    if args.ddp_worker:
        ddp_worker(args)
        return
    from search.precision import PRECISIONS

    setup = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0),
        "space": f"nb201_space(channels=16, cells_per_stage={args.cells}), batch {args.batch} of 3x32x32",
        "epochs": args.epochs,
        "samples": args.samples,
        "step_s": "mean seconds per search step (architecture + weight) over the epochs after the first",
    }
    print("setup:", json.dumps(setup, indent=1), flush=True)
    rows: list[dict[str, Any]] = []
    fp32: Any = None
    for compiled in (False,) if args.no_compile else (False, True):
        for precision in PRECISIONS:
            name = f"{precision} {'compiled' if compiled else 'eager'}"
            try:
                row = search_row(args, precision, compiled)
            except Exception as err:  # report, do not hide
                row = {"error": f"{type(err).__name__}: {str(err)[:400]}"}
            result = row.pop("result", None)
            if precision == "32" and not compiled:
                fp32 = result
            rows.append({"name": name, **row})
            print_table(rows[-1:])
    rows.append({"name": "32 eager ddp nccl x1", **ddp_row(args)})
    print_table(rows[-1:])
    report = {"setup": setup, "searches": rows}
    if fp32 is not None:
        report["latency"] = latency_row(args, fp32)
        report["onnxruntime_cuda"] = onnx_row(fp32)
    print()
    print_table(rows)
    print("latency:", json.dumps(report.get("latency")))
    print("onnxruntime:", json.dumps(report.get("onnxruntime_cuda")))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
