"""Measured latency: a table of per-op forward times on the device at hand.

`LatencyTable.measure(space)` runs every op of the space (every option of every ChoiceOp) alone,
through its public `Op.forward`, on random inputs of its concrete shapes, once for each value of the
parameters that size it (kernel, width, expansion, upstream switches that change its input), in
eval mode without autograd. Ops of equal signature (type, attributes, operand shapes) are timed
once. Timing uses `torch.utils.benchmark.Timer` (its timer synchronises the accelerator, so CUDA
kernels are waited for), after a warm-up, in rounds that take turns over all signatures so that the
machine's load weighs on all alike; an entry is the median over rounds (`MeasureSettings.quantile`).

The sum of op times misses what the exported module does around each op and per call (reading
its weights, the shape check of its inputs). `calibration` random architectures of the space are
measured end to end as the modules `SearchResult.export()` gives (`export_module`: generated
straight-line torch code), in the same interleaved rounds as the ops, and a per-network constant,
a per-op and a per-weight overhead are fitted to the residual by non-negative least squares; they are stored and added to
predictions (the per-op and per-weight terms to each op's entry, so expected costs include them).

A table is keyed by device name, torch version, thread count, batch size and the space's structure;
with a cache directory a table measured with the same key is loaded instead of measured again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import platform
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils import benchmark
from tqdm import tqdm

from .axis_role import AxisRole, is_batch
from .basic_executor import BasicExecutor
from .choice import ChoiceOp, active_subgraph
from .discretize import discretize
from .export_module import export_module
from .expression import Expression, lazy, walk
from .graph import topological_order
from .node import Node, Op, Tensor
from .parameters import CategoricalParameter, IntScalarParameter, Parameter
from .parametrization import current_values, set_parametrization

FORMAT_VERSION = 2  # 2: calibrated on export_module (generated code), no weight-fetch term
CLOCKS = ("auto", "wall", "process")
MAX_ASSIGNMENTS = 4096  # per op: more joint values than this is a space the table cannot enumerate


@dataclass(frozen=True)
class LatencyKey:
    """What a measured table depends on; a cached table is reused only when all fields match."""

    device: str
    torch_version: str
    threads: int
    batch_size: int
    structure: str

    def file_name(self) -> str:
        """A file name unique to this key."""
        digest = hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()[:16]
        return f"latency-{digest}.json"


@dataclass
class MeasureSettings:
    """How latencies are timed: `rounds` interleaved rounds of a block of at least `block_seconds`
    per callable, summarised by the `quantile` over rounds (0.5: the median; on a machine shared
    with other jobs, where more than half of the blocks of a millisecond-long call are slowed by
    them, a low quantile, down to 0.0, the minimum, estimates the unloaded latency more repeatably); `calibration` end-to-end
    architectures (0: none) sampled with `seed` fit the executor overheads. `clock`: "wall"
    (`torch.utils.benchmark`'s default timer, which synchronises CUDA), "process" (the process's
    CPU time: on a single-threaded CPU run, the wall time minus the time other jobs held the
    core), or "auto": "process" for one CPU thread, else "wall"."""

    rounds: int = 15
    block_seconds: float = 3e-4
    calibration: int = 8
    seed: int = 0
    quantile: float = 0.5
    clock: str = "auto"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {CLOCKS}, got {self.clock!r}")
        if not 0.0 <= self.quantile <= 1.0:
            raise ValueError(f"quantile must be in [0, 1] (0.5: the median), got {self.quantile}")
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.block_seconds <= 0:
            raise ValueError(f"block_seconds must be > 0, got {self.block_seconds}")
        if self.calibration < 0:
            raise ValueError(f"calibration must be >= 0, got {self.calibration}")


@dataclass
class LatencyTable:
    """Per-op latencies (milliseconds per forward pass of `key.batch_size` samples) by op
    signature, and the fitted overheads of the exported module: `constant_ms` once per forward pass,
    `per_op_ms` per op and `per_weight_ms` per weight the exported module runs."""

    key: LatencyKey
    entries: dict[str, float]
    constant_ms: float = 0.0
    per_op_ms: float = 0.0
    per_weight_ms: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    #: signature -> (lower, upper) quartile over the measuring rounds, ms: the spread behind each entry
    spreads: dict[str, tuple[float, float]] = field(default_factory=dict)
    from_cache: bool = field(default=False, compare=False)
    _lookups: "weakref.WeakKeyDictionary[Node, Expression]" = field(
        default_factory=weakref.WeakKeyDictionary, init=False, repr=False, compare=False
    )

    # -- measuring -------------------------------------------------------------------------------
    @classmethod
    def measure(
        cls,
        space: Node,
        batch_size: int = 1,
        device: Union[str, torch.device, None] = None,
        threads: Optional[int] = None,
        *,
        cache_dir: Union[str, Path, None] = None,
        settings: Optional[MeasureSettings] = None,
        progress: bool = True,
    ) -> "LatencyTable":
        """Time every op of `space` (output node) for every value of the parameters sizing it, on
        `device` (default: CUDA when available, else CPU) with `threads` CPU threads (default: the
        current torch setting). With `cache_dir`, a table saved there under the same key is loaded
        instead, and a new one is saved there."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {threads!r}")
        device = _device(device)
        threads = threads if threads is not None else torch.get_num_threads()
        settings = settings if settings is not None else MeasureSettings()
        key = LatencyKey(device_name(device), torch.__version__, threads, batch_size, space_structure(space))
        path = Path(cache_dir).expanduser() / key.file_name() if cache_dir is not None else None
        if path is not None and path.exists():
            cached = cls.load(path)
            if cached.key == key:
                cached.from_cache = True
                return cached
        table = cls._measured(space, key, device, settings, progress)
        if path is not None:
            table.save(path)
        return table

    @classmethod
    def _measured(
        cls, space: Node, key: LatencyKey, device: torch.device, settings: MeasureSettings, progress: bool
    ) -> "LatencyTable":
        saved = current_values(space)
        modes = {node: node.training for node in topological_order(space) if isinstance(node, Op)}
        # calibration architectures are timed in the same interleaved rounds as the ops, so that
        # the fitted overheads and the op times see the same load
        fixed = [discretize(space, a) for a in random_architectures(space, settings.calibration, settings.seed)]
        modules = module_calls(
            [export_module(f, seed=settings.seed) for f in fixed], example_input(space, key.batch_size), device
        )
        try:
            executor = BasicExecutor(space, seed=0).to(device)
            calls = _op_calls(space, executor, key.batch_size, device)
            rounds = interleaved_samples(
                [*calls.values(), *modules], key.threads, settings, progress, "latency table", device
            )
        finally:
            set_parametrization(space, saved)
            for node, training in modes.items():
                node.training = training
        ms = [float(np.quantile(r, settings.quantile)) * 1e3 for r in rounds]
        spreads = {k: spread_ms(r) for k, r in zip(calls, rounds)}
        table = cls(key, dict(zip(calls, ms)), settings=dataclasses.asdict(settings), spreads=spreads)
        if fixed:
            table._calibrate(fixed, ms[len(calls) :])
        return table

    def _calibrate(self, fixed: list[Node], measured: list[float]) -> None:
        """Fit `constant_ms`, `per_op_ms`, `per_weight_ms` (all >= 0) to the end-to-end times of
        fixed architectures: what their measured terms leave unexplained."""
        residual = np.array([m - self.op_sum_ms(f) for m, f in zip(measured, fixed)])
        design = np.array([[1.0, *executed_nodes(f)] for f in fixed])
        self.constant_ms, self.per_op_ms, self.per_weight_ms = nonnegative_least_squares(design, residual)

    # -- predicting ------------------------------------------------------------------------------
    def node_latency(self, node: Node) -> Any:
        """The latency of `node` in ms as an expression of the parameters sizing it (0 for Tensors
        and ChoiceOps), the executor's per-node overhead included. Raises KeyError naming the node
        if the table has no entry for one of its values (a table of another space or batch size)."""
        if not isinstance(node, Op) or isinstance(node, ChoiceOp):
            return 0.0
        weights = owned_weights(node)
        fitted = self.per_op_ms + self.per_weight_ms * len(weights)  # read now: calibration sets it after measuring
        lookup = self._lookups.get(node)
        if lookup is None:
            lookup = self._measured_latency(node, weights)
            self._lookups[node] = lookup
        return lookup + fitted if fitted else lookup

    def _measured_latency(self, node: Op, weights: list[Tensor]) -> "LatencyLookup":
        """The node's measured op forward time at every value of its parameters."""
        params = cost_parameters(node)
        values: dict[tuple, float] = {}
        for assignment in assignments(params, node.id):
            signature = op_signature(node, self.key.batch_size)
            if signature not in self.entries:
                at = {p.id: v for p, v in zip(params, assignment)}
                raise KeyError(
                    f"the latency table has no entry for node {node.id} at {at} ({signature}); it was measured "
                    "for another space or batch size: measure a table for this space"
                )
            values[assignment] = self.entries[signature]
        return LatencyLookup(node.id, params, values)

    def op_sum_ms(self, output: Node) -> float:
        """The sum of the table's op latencies (with per-op and per-weight overheads) over the architecture the
        current parametrization of `output` selects, without the per-network constant."""
        return float(sum(lazy(self.node_latency(n)) for n in active_subgraph(output, topological_order(output))))

    def predict(self, output: Node) -> float:
        """Predicted end-to-end latency (ms) of the architecture `output` currently selects."""
        return self.constant_ms + self.op_sum_ms(output)

    def predict_spread(self, output: Node) -> Optional[tuple[float, float]]:
        """The prediction's spread over the measuring rounds: (lower, upper) latency in ms, each op
        at the lower / upper quartile of its rounds (overheads added as in `predict`); None for a
        table that recorded no spreads (loaded from an older file)."""
        low = high = self.constant_ms
        for node in active_subgraph(output, topological_order(output)):
            if not isinstance(node, Op) or isinstance(node, ChoiceOp):
                continue
            spread = self.spreads.get(op_signature(node, self.key.batch_size))
            if spread is None:
                return None
            fitted = self.per_op_ms + self.per_weight_ms * len(owned_weights(node))
            low, high = low + spread[0] + fitted, high + spread[1] + fitted
        return low, high

    def rows(self) -> list[dict[str, Any]]:
        """The entries as plain rows (op type, operand shapes, ms), slowest first: for display."""
        rows = []
        for signature, ms in self.entries.items():
            kind, attributes, operands = json.loads(signature)
            rows.append(
                {
                    "op": kind.rpartition(".")[2],
                    "operands": [shape for _, shape in operands],
                    "attributes": attributes,
                    "ms": ms,
                }
            )
        return sorted(rows, key=lambda r: -r["ms"])

    # -- files -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "key": dataclasses.asdict(self.key),
            "constant_ms": self.constant_ms,
            "per_op_ms": self.per_op_ms,
            "per_weight_ms": self.per_weight_ms,
            "settings": self.settings,
            "entries": self.entries,
            "spreads": self.spreads,
        }

    def save(self, path: Union[str, Path]) -> Path:
        """Write the table as JSON (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Union[str, Path]) -> "LatencyTable":
        """Read a table written by `save`."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"latency table {path} is not valid JSON: {err}") from err
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"latency table {path} has format {payload.get('format') if isinstance(payload, dict) else None!r}, "
                f"expected {FORMAT_VERSION}: measure it again"
            )
        try:
            key = LatencyKey(**payload["key"])
            return cls(
                key,
                {str(k): float(v) for k, v in payload["entries"].items()},
                float(payload["constant_ms"]),
                float(payload["per_op_ms"]),
                float(payload["per_weight_ms"]),
                dict(payload.get("settings", {})),
                {str(k): (float(v[0]), float(v[1])) for k, v in payload.get("spreads", {}).items()},
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"latency table {path} lacks or mistypes a field: {err}") from err


class LatencyLookup(Expression):
    """A node's latency at the current values of the parameters sizing it (a table lookup), as an
    expression, so costs can average it over architecture distributions like FLOPs."""

    def __init__(self, node_id: str, params: Sequence[Parameter], values: dict[tuple, float]) -> None:
        self.node_id, self.params, self.values = node_id, list(params), values

    def evaluate(self) -> float:
        assignment = tuple(p.current_value for p in self.params)
        if assignment not in self.values:
            raise KeyError(
                f"no latency for node {self.node_id} at {dict(zip((p.id for p in self.params), assignment))}"
            )
        return self.values[assignment]

    def bounds(self) -> tuple[float, float]:
        return min(self.values.values()), max(self.values.values())

    def children(self) -> Sequence[Any]:
        return tuple(self.params)

    def __repr__(self) -> str:
        return f"LatencyLookup({self.node_id})"


# -- end-to-end measurement ----------------------------------------------------------------------
def measure_module(
    module: torch.nn.Module,
    example_input: Union[torch.Tensor, Sequence[torch.Tensor]],
    *,
    device: Union[str, torch.device, None] = None,
    threads: Optional[int] = None,
    settings: Optional[MeasureSettings] = None,
) -> float:
    """Latency (ms; the `settings.quantile` over interleaved rounds, the median by default) of
    `module(example_input)` end to end, in eval mode without autograd, on `device` (default: the
    module's device). On CUDA the wall clock is used and the device synchronised around each
    block (written for, not measured here: no GPU was available)."""
    return measure_modules([module], example_input, device=device, threads=threads, settings=settings, progress=False)[
        0
    ]


def measure_modules(
    modules: Sequence[torch.nn.Module],
    example_input: Union[torch.Tensor, Sequence[torch.Tensor]],
    *,
    device: Union[str, torch.device, None] = None,
    threads: Optional[int] = None,
    settings: Optional[MeasureSettings] = None,
    progress: bool = True,
) -> list[float]:
    """Latencies (ms, the `settings.quantile` over rounds: the median by default) of several
    modules on one input, in eval mode without autograd, measured in interleaved rounds so that
    changes in the machine's load weigh on all of them alike. Modules are moved to `device`
    (default: each stays on its own)."""
    settings = settings if settings is not None else MeasureSettings()
    threads = threads if threads is not None else torch.get_num_threads()
    devices = {torch.device(device) if device is not None else _module_device(m) for m in modules}
    on = devices.pop() if len(devices) == 1 else torch.device("cuda")  # mixed devices: time as for CUDA
    calls = module_calls(modules, example_input, device)
    return [s * 1e3 for s in interleaved_times(calls, threads, settings, progress, "end-to-end latency", on)]


def module_calls(
    modules: Sequence[torch.nn.Module],
    example_input: Union[torch.Tensor, Sequence[torch.Tensor]],
    device: Union[str, torch.device, None] = None,
) -> list["Call"]:
    """For `interleaved_times`: each module run on the input in eval mode without autograd."""
    inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    calls = []
    for module in modules:
        target = torch.device(device) if device is not None else _module_device(module)
        module = module.to(target).eval()
        calls.append(Call(_no_grad_call(module, tuple(x.to(target) for x in inputs))))
    return calls


def interleaved_times(
    calls: Sequence["Call"],
    threads: int,
    settings: MeasureSettings,
    progress: bool,
    description: str,
    device: torch.device,
) -> list[float]:
    """Seconds per call of each zero-argument callable on `device`: the `settings.quantile` (the
    median by default) over the rounds of `interleaved_samples`."""
    rounds = interleaved_samples(calls, threads, settings, progress, description, device)
    return [float(np.quantile(r, settings.quantile)) for r in rounds]


def interleaved_samples(
    calls: Sequence["Call"],
    threads: int,
    settings: MeasureSettings,
    progress: bool,
    description: str,
    device: torch.device,
) -> list[list[float]]:
    """Seconds per call of each zero-argument callable in every round: a warm-up, then
    `settings.rounds` rounds taking turns over all callables, each a `torch.utils.benchmark`
    block of at least `settings.block_seconds`."""
    clock = _clock(settings.clock, device, threads)
    timers = [
        benchmark.Timer(
            stmt="call()",
            setup="setup()",
            globals={"call": c.function, "setup": c.setup},
            num_threads=threads,
            **({"timer": clock} if clock is not None else {}),
        )
        for c in calls
    ]
    numbers = []
    for timer in timers:  # the warm-up block also sizes the blocks
        single = timer.timeit(number=3).median
        numbers.append(max(1, math.ceil(settings.block_seconds / max(single, 1e-9))))
    samples: list[list[float]] = [[] for _ in timers]
    bar = tqdm(total=settings.rounds * len(timers), desc=description, disable=not progress, leave=False)
    for _ in range(settings.rounds):
        for i, (timer, number) in enumerate(zip(timers, numbers)):
            samples[i].append(timer.timeit(number=number).median)
            bar.update()
    bar.close()
    return samples


def spread_ms(seconds: Sequence[float]) -> tuple[float, float]:
    """(lower, upper) quartile of per-round times in seconds, in ms."""
    return float(np.quantile(seconds, 0.25)) * 1e3, float(np.quantile(seconds, 0.75)) * 1e3


def example_input(space: Node, batch_size: int = 1) -> tuple[torch.Tensor, ...]:
    """Random inputs for every input Tensor of `space`, its batch axis (`AxisRole.BATCH`) at `batch_size`."""
    inputs = [n for n in topological_order(space) if isinstance(n, Tensor) and n.role != "weight"]
    return tuple(_random(_batched(lazy(t.shape()), t, batch_size, t.id), t.dtype, torch.device("cpu")) for t in inputs)


def random_architectures(space: Node, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` architectures drawn uniformly from the space's discrete searchable parameters
    (switches and value choices), seeded; the space's current values are left as they were."""
    saved = current_values(space)
    rng = np.random.default_rng(seed)
    params = {
        pid: p
        for pid, p in space.parametrization().items()
        if p.searchable and isinstance(p, (CategoricalParameter, IntScalarParameter))
    }
    try:
        return [{pid: params[pid].sample(rng) for pid in sorted(params)} for _ in range(count)]
    finally:
        set_parametrization(space, saved)


def executed_nodes(output: Node) -> tuple[int, int]:
    """How many ops and how many weights of the selected architecture an exported module runs
    (what the executor overheads are counted in)."""
    ops = [
        n
        for n in active_subgraph(output, topological_order(output))
        if isinstance(n, Op) and not isinstance(n, ChoiceOp)
    ]
    return len(ops), sum(len(owned_weights(n)) for n in ops)


# -- keys and signatures -------------------------------------------------------------------------
def device_name(device: Union[str, torch.device, None] = None) -> str:
    """A readable name of the device: the GPU model, or the CPU model for CPU."""
    device = _device(device)
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{device.type}:{model}"


def space_structure(space: Node) -> str:
    """A digest of the space's structure: node ids, types, operands, symbolic shapes and attributes,
    parameter domains. Independent of the parameters' current values."""
    spec = []
    for node in topological_order(space):
        entry: list[Any] = [node.id, _type_name(node), [o.id for o in node.operands], _symbolic(node.shape())]
        if isinstance(node, Op):
            entry.append({k: _symbolic(v) for k, v in sorted(node.attributes.items())})
        if isinstance(node, Tensor):
            entry.extend([node.role, node.trainable, str(node.dtype)])
        spec.append(entry)
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def cost_parameters(node: Node) -> list[Parameter]:
    """The discrete parameters that change `node`'s cost: those in its attributes, in the shapes of
    its operands (including upstream switches that change an input's shape) and in its own shape.
    Continuous parameters are left out (the op is timed at their current value)."""
    found, seen = [], set()
    sources = [
        list(node.attributes.values()) if isinstance(node, Op) else [],
        [o.shape() for o in node.operands],
        node.shape(),
    ]
    for item in walk(sources):
        if isinstance(item, (CategoricalParameter, IntScalarParameter)) and id(item) not in seen:
            seen.add(id(item))
            found.append(item)
    return found


def assignments(params: Sequence[Parameter], node_id: str) -> Iterator[tuple]:
    """Every joint value of `params`, made current in turn (restored afterwards)."""
    count = math.prod(len(p.values()) for p in params)
    if count > MAX_ASSIGNMENTS:
        raise ValueError(
            f"node {node_id}: its cost depends on {len(params)} parameters with {count} joint values "
            f"(more than {MAX_ASSIGNMENTS}): {[p.id for p in params]}"
        )
    saved = [p.current_value for p in params]
    try:
        for assignment in itertools.product(*(p.values() for p in params)):
            for p, value in zip(params, assignment):
                p.current_value = value
            yield assignment
    finally:
        for p, value in zip(params, saved):
            p.current_value = value


def owned_weights(node: Node) -> list[Tensor]:
    """The weight Tensors `node` owns."""
    return [t for t in node.operands if isinstance(t, Tensor) and t.owner is node]


def op_signature(node: Op, batch_size: int) -> str:
    """What an op's latency depends on, at the current parameter values: its type, attributes and
    operand shapes (data operands with the batch axis at `batch_size`), as a JSON string."""
    operands = []
    for operand in node.operands:
        shape = list(lazy(operand.shape()))
        is_weight = isinstance(operand, Tensor) and operand.owner is node
        if not is_weight:
            shape = list(_batched(shape, operand, batch_size, node.id))
        operands.append(["w" if is_weight else "x", shape])
    attributes = {k: _plain(lazy(v)) for k, v in sorted(node.attributes.items())}
    return json.dumps([_type_name(node), attributes, operands], sort_keys=True)


# -- helpers -------------------------------------------------------------------------------------
def _op_calls(space: Node, executor: BasicExecutor, batch_size: int, device: torch.device) -> dict[str, "Call"]:
    """One call per distinct op signature of the space: the op's forward on random inputs and the
    executor's weights, in eval mode without autograd, on `device`."""
    calls: dict[str, Call] = {}
    for node in topological_order(space):
        if not isinstance(node, Op) or isinstance(node, ChoiceOp):
            continue
        params = cost_parameters(node)
        for assignment in assignments(params, node.id):
            signature = op_signature(node, batch_size)
            if signature in calls:
                continue
            args = []
            for operand in node.operands:
                if isinstance(operand, Tensor) and operand.owner is node:
                    args.append(executor.weight(operand).detach().contiguous().clone())
                else:
                    shape = _batched(lazy(operand.shape()), operand, batch_size, node.id)
                    args.append(_random(shape, operand.dtype if isinstance(operand, Tensor) else None, device))
            calls[signature] = Call(_op_call(node, args), _evaluation_setup(node, params, assignment))
    return calls


class Call:
    """What `interleaved_times` times: `function()`, after `setup()` (untimed) before each block."""

    def __init__(self, function: Callable[[], Any], setup: Callable[[], None] = lambda: None) -> None:
        self.function, self.setup = function, setup


def _op_call(node: Op, args: list[torch.Tensor]) -> Callable[[], Any]:
    def call() -> Any:
        with torch.no_grad():
            return node.forward(*args)

    return call


def _evaluation_setup(node: Op, params: Sequence[Parameter], assignment: tuple) -> Callable[[], None]:
    """Eval mode and `assignment` made current (ops read attributes such as `groups` when they run)."""

    def setup() -> None:
        node.training = False
        for p, value in zip(params, assignment):
            p.current_value = value

    return setup


def _no_grad_call(module: torch.nn.Module, args: tuple) -> Any:
    def call() -> Any:
        with torch.no_grad():
            return module(*args)

    return call


def _batched(shape: Sequence[int], node: Node, batch_size: int, where: str) -> tuple[int, ...]:
    """`shape` with the batch axis at `batch_size`: a Tensor's axis of role `AxisRole.BATCH` (declared,
    or by the convention that "N" is the batch axis), an op output's first axis."""
    roles = node.axis_roles if isinstance(node, Tensor) else (AxisRole.BATCH,) + (None,) * (len(shape) - 1)
    if not any(map(is_batch, roles)):
        return tuple(shape)
    if not is_batch(roles[0]):  # only a Tensor can declare its batch axis elsewhere
        raise ValueError(f"{where}: latency tables need the batch axis (AxisRole.BATCH) first, got axes {node.axis}")
    return (batch_size, *shape[1:])


def _random(shape: Sequence[int], dtype: Any, device: torch.device) -> torch.Tensor:
    if dtype is not None and not torch.empty((), dtype=dtype).is_floating_point():
        return torch.zeros(tuple(shape), dtype=dtype, device=device)
    return torch.randn(tuple(shape), device=device, dtype=dtype)


def _clock(name: str, device: torch.device, threads: int) -> Optional[Callable[[], float]]:
    """The timer function for `benchmark.Timer`; None: its default (wall clock, accelerator synchronised)."""
    if name == "auto":
        name = "process" if device.type == "cpu" and threads == 1 else "wall"
    if name == "process":
        if device.type != "cpu":
            raise ValueError(
                f"clock='process' times CPU work only; {device} needs the wall clock (clock='wall' or 'auto')"
            )
        return time.process_time
    return None


def _device(device: Union[str, torch.device, None]) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _module_device(module: torch.nn.Module) -> torch.device:
    tensor = next(itertools.chain(module.parameters(), module.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _type_name(node: Node) -> str:
    return f"{type(node).__module__}.{type(node).__qualname__}"


def _symbolic(value: Any) -> Any:
    """A JSON-able form of a possibly symbolic value that does not depend on current values."""
    if isinstance(value, Parameter):
        return ["param", value.id, value.domain()]
    if isinstance(value, Expression):
        return [type(value).__name__, getattr(value, "symbol", ""), [_symbolic(c) for c in value.children()]]
    if isinstance(value, (tuple, list)):
        return [_symbolic(v) for v in value]
    return _plain(value)


def _plain(value: Any) -> Any:
    """JSON-able and stable across processes (no object addresses)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__name__)}"
    text = repr(value)
    return type(value).__name__ if " at 0x" in text else text


def nonnegative_least_squares(design: np.ndarray, target: np.ndarray) -> tuple[float, ...]:
    """argmin ||design @ c - target|| over c >= 0, exactly: the best unconstrained fit on every subset
    of the (few) columns, keeping the feasible one with the least residual."""
    columns = design.shape[1]
    best, best_error = np.zeros(columns), float(np.sum(target**2))
    for size in range(1, columns + 1):
        for subset in itertools.combinations(range(columns), size):
            solution, *_ = np.linalg.lstsq(design[:, subset], target, rcond=None)
            if np.any(solution < 0):
                continue
            coefficients = np.zeros(columns)
            coefficients[list(subset)] = solution
            error = float(np.sum((design @ coefficients - target) ** 2))
            if error < best_error - 1e-15:
                best, best_error = coefficients, error
    return tuple(float(c) for c in best)
