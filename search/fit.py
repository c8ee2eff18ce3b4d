"""fit_supernet: the differentiable search, end to end (single process or distributed, resumable).

`fit_supernet` composes named pieces: the setting groups (search.settings), the loaders
(search.loaders), the supernet, the bilevel optimizer with its guard, cost term and distributed
hooks, the epoch loop (search.bilevel_search), the checkpoints, the selection (search.selection).
"""

from __future__ import annotations

import copy
import dataclasses
import random
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch

from supernet import SupernetExecutor
from supernet.node import Node
from supernet.seeds import as_seed, draw_seed

from .bilevel import BilevelConfig, BilevelOptimizer
from .bilevel_search import BilevelSearch, Callback
from .checkpoint import Checkpointer, interrupted_message
from .cost_penalty import CostPenalty
from .devices import check_device, refuse_meta
from .distributed import DistributedContext, average_gradients_before_step, setup_distributed, wrap_weights
from .generators import SearchGenerators
from .guard import StepGuard
from .live_log import LiveLog
from .loaders import Data, SearchLoaders, batch_size_of, dataset_size, is_resumable, search_loaders
from .loggers import Logger
from .metrics import Metrics, metric_set
from .compiled_step import check_compilable, compile_supernet
from .perturbation import check_selection
from .precision import MixedPrecision, check_precision
from .result import SearchResult
from .selection import report_undecided
from .settings import (
    CostSettings,
    ExecutionSettings,
    FitSettings,
    LoggingSettings,
    ResilienceSettings,
    SelectionSettings,
    resolve_settings,
)
from .strategies import DEFAULT_STRATEGY, Strategy, get_strategy
from .validation import ScalarLoss, check_first_batches

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators (`seed`: any integer, `supernet.seeds`)."""
    seed = as_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit_supernet(
    space: Node,
    train: Data,
    val: Optional[Data] = None,
    *,
    strategy: Union[str, Strategy] = DEFAULT_STRATEGY,
    epochs: int,
    batch_size: int = 64,
    loss: Optional[Loss] = None,
    metrics: Optional[Metrics] = None,
    seed: Optional[int] = 0,
    device: Union[str, torch.device, None] = None,
    progress: Optional[bool] = None,
    loggers: Optional[Sequence[Logger]] = None,
    callbacks: Optional[Sequence[Callback]] = None,
    optim: Union[BilevelConfig, dict, None] = None,
    budget: Optional[CostSettings] = None,
    resilience: Optional[ResilienceSettings] = None,
    selection: Union[SelectionSettings, str, None] = None,
    logging: Optional[LoggingSettings] = None,
    execution: Optional[ExecutionSettings] = None,
    **keywords: Any,
) -> SearchResult:
    """Search the architecture of `space` (its output node) by bilevel optimisation.

    `strategy`: a name of `search.strategies.STRATEGIES` or a Strategy object; the default, DrNAS
    (Dirichlet mixtures), sets its architecture learning rate from the number of steps
    (`3e-4 * 20000 / steps` over the steps before its decision phase, between 3e-4 and 0.05) and
    ends with that phase (the last 30% of the epochs: alphas frozen, the mixture sharpened to
    temperature 0.02 while the weights train), so a short search still commits.

    `train`/`val` are (x, y) tensor pairs, Datasets or DataLoaders; `val=None` splits `train` in two
    halves. Each step updates the alphas on a validation batch, then the weights on a training
    batch. Each epoch's order of (x, y) tensors (or NumPy arrays) and Datasets is a pure function
    of (seed, epoch), in batches of `batch_size`; a DataLoader is used as it is, with its own
    batching (with val=None, each half of its dataset is batched and shuffled as it batches;
    `result.config` records the batch sizes that ran). `metrics` are torchmetrics objects, a list
    or a dict name -> metric (default: accuracy when the labels are class indices or class
    probabilities; metrics of probabilities see their argmax). `callbacks` are called after every
    epoch with a dict of the run's state; one returning True stops the search. The first batches
    are checked against the space (input shape and dtype, finite values; class-index labels within
    the classes, whatever the loss) before the search starts. The loss must return a scalar.

    Settings come in groups (search.settings), each a dataclass that can be built and passed alone;
    every keyword fit_supernet took before the groups still works and sets its group's field
    (`LEGACY_KEYWORDS`): `progress`, `loggers` -> `logging`, and in `**keywords`: `cost`,
    `cost_weight`, `cost_target`, `latency_table` -> `budget`; `checkpoint_dir`, `resume`,
    `max_bad_steps` -> `resilience`; `perturbation` -> `selection`; `record_every`,
    `on_undecided` -> `logging`; `distributed`, `initial_state`, `precision`, `compile` -> `execution`. A keyword and its
    group with another value for that field is an error.

    - `seed`: any integer (int, numpy.int64...) in [0, 2**63); the search's draws, data order and
      initial weights follow it alone (`search.generators`). None draws a seed from the system's
      entropy and records it in `result.config["seed"]` (pass it to repeat the search).
    - `optim` (`BilevelConfig` or a dict of its fields): the optimizers; `arch_lr=None` lets the
      strategy decide it for the search's step count (`search.bilevel.architecture_lr`).
    - `execution` (`ExecutionSettings`): `distributed=True` runs on torch.distributed (launch with
      `torchrun`), None does so when torchrun started more than one process; `batch_size` is the
      global batch, split between the processes; weights are synchronised by
      DistributedDataParallel, architecture gradients are averaged too; every process returns the
      same SearchResult and only rank 0 writes checkpoints. Runs agree, within float rounding, with
      a single-process search of the same global batch (BatchNorm statistics aside: per process).
      `initial_state`: a supernet state (e.g. `SearchResult.supernet_state`) to start from.
      `precision` ("32", "bf16-mixed", "16-mixed"; keyword `precision=`): the forward passes of both
      steps under autocast, "16-mixed" with gradient scalers (search.precision; docs/precision.md).
      `compile=True`: both steps run the supernet through torch.compile (search.compiled_step;
      strategies sampling a path per step refuse it).
    - `resilience` (`ResilienceSettings`): `checkpoint_dir` gets a checkpoint after every epoch (the
      newest two kept), written atomically; `resume=True` continues from the newest one there (or
      starts afresh if there is none), and the resumed search returns a SearchResult bit-identical
      to an uninterrupted one (for tensor or Dataset data); without `resume`, a directory holding
      checkpoints is refused. `max_bad_steps`: a step whose loss or gradients are NaN or inf is
      skipped with a warning; after this many consecutive skipped steps of one kind the search
      raises FloatingPointError, leaving the last good checkpoint intact; None turns the checks off.
    - `budget` (`CostSettings`): hardware-aware search. `kind` ("flops", "params", "latency" or a
      callable node -> cost expression) adds `weight * E[cost] / E[cost at the start]` to the
      architecture loss, E over the current architecture distribution (differentiable in the
      alphas); with `target`, `weight * relu(E[cost] / target - 1)` instead, and the selected
      architecture is brought within the target where it exceeds it (`CostPenalty.within_target`).
      "latency" prices with `latency_table` (measured for the space at batch size 1 when None),
      `target` in ms per forward pass at the table's batch size. The expected cost is logged per epoch.
    - `selection` (`SelectionSettings`, or its mode as a str): "argmax" (default) takes the
      strategy's rule (argmax for most); "perturbation" takes, per choice, the option whose removal
      from the trained supernet's mixture lowers its validation accuracy the most, deciding the
      choice of largest effect first (DARTS-PT; `search.perturbation`), tuned by `perturbation`
      (`PerturbationSettings` or a dict); `result.perturbation` holds the drops it measured.
      Strategies that learn no architecture (spos, fairnas) and distributed searches refuse it.
      The whole pipeline, to the confidence, is `search.selection`.
    - `logging` (`LoggingSettings`): `progress` bars, `record_every` (the alpha history keeps every
      n-th step) and `on_undecided`: `result.confidence` and `result.summary()` say, per choice, how
      probable the selected option is, its margin over the runner-up, the entropy and since when it
      has led (`search.confidence`); a choice whose margin is below 0.1, or whose winner changed in
      the last quarter of the steps, is undecided: "warn" (default) warns (UndecidedWarning) naming
      each such switch id, "raise" raises UndecidedError (its `.result` holds the result), "ignore"
      does neither. `loggers` (search.loggers: `TensorBoardLogger(dir)`, `CSVLogger(dir)` or any
      `Logger`) get every `record_every`-th step's losses, learning rates, probabilities
      (`prob/<switch id>/<option>`), margins, expected cost and phase, and every epoch's metrics,
      architecture text and pictures (search.live_log); rank 0 alone logs, and a resumed search
      continues the same logs without duplicate steps.

    Returns a SearchResult whose `export()` gives the selected architecture: the strategy's
    selection (argmax for most) or the perturbation one, never a dead network (if it leaves no path of non-Zero ops from
    the input to the output, the connected alternative of lowest regret is taken, with a warning).
    """
    groups = dict(budget=budget, resilience=resilience, selection=selection, logging=logging, execution=execution)
    plain = {k: v for k, v in (("progress", progress), ("loggers", loggers)) if v is not None}
    settings = resolve_settings(optim, groups, {**keywords, **plain})
    _check_run(epochs, batch_size)
    context, device = setup_distributed(settings.execution.distributed, _device(device))
    seed = _search_seed(seed, context)
    precision = MixedPrecision(check_precision(settings.execution.precision, device), device.type)
    seed_everything(seed)
    strategy = _strategy(strategy, settings, context, device)
    pinned = device.type == "cuda"  # page-locked batches, copied with non_blocking (loaders.move)
    loaders = search_loaders(train, val, batch_size, seed, context.rank, context.world_size, pinned)
    strategy.plan(epochs, len(loaders.train))
    supernet = _supernet(space, strategy, seed, device, settings.execution.initial_state)
    first = (supernet, loaders.train, loaders.val, loss, loaders.val_argument)
    targets = context.agree(lambda: check_first_batches(*first))
    checkpoints, guard = _resilience(settings.resilience, context)
    bilevel = _optimizer(supernet, strategy, loss, settings, epochs, context, device, guard, precision)
    parts = _SearchParts(space, supernet, bilevel, strategy, loaders, settings, epochs, seed, context, device)
    search = _search(parts, metric_set(metrics, targets), targets, callbacks, guard, checkpoints)
    _run(search, parts, checkpoints)
    result = search.result(space)
    report_undecided(result, settings.logging.on_undecided, strategy.name, search.step, context.is_main)
    return result


def _search_seed(seed: Any, context: DistributedContext) -> int:
    """`seed` as a plain int; None draws one, once, on rank 0, so that every process searches with it."""
    if seed is not None:
        return as_seed(seed)
    return context.broadcast_object(draw_seed() if context.is_main else None)


@dataclasses.dataclass(frozen=True)
class _SearchParts:
    """What `fit_supernet` has built before the search loop: the pieces the loop is made of."""

    space: Node
    supernet: SupernetExecutor
    bilevel: BilevelOptimizer
    strategy: Strategy
    loaders: SearchLoaders
    settings: FitSettings
    epochs: int
    seed: int
    context: DistributedContext
    device: torch.device


def _search(
    parts: _SearchParts,
    meters: dict,
    targets: Any,
    callbacks: Optional[Sequence[Callback]],
    guard: Optional[StepGuard],
    checkpoints: Optional[Checkpointer],
) -> BilevelSearch:
    """The search loop over the built pieces, drawing from its own generators (search.generators)."""
    p = parts
    generators = SearchGenerators(p.seed)  # from here on, the mixture draws from the search's own streams
    p.supernet.mixture.draw_from(generators)
    return BilevelSearch(
        p.supernet,
        p.bilevel,
        p.strategy,
        p.loaders.train,
        p.loaders.val,
        settings=_recorded(p.strategy, p.epochs, p.seed, p.bilevel, p.loaders, p.settings, p.context),
        meters=meters,
        val_argument=p.loaders.val_argument,
        record_every=p.settings.logging.record_every,
        callbacks=list(callbacks or []),
        guard=guard,
        checkpoints=checkpoints,
        context=p.context,
        device=p.device,
        selection=p.settings.selection,
        targets=targets,
        generators=generators,
        live=_live_log(p.settings, p.supernet, p.bilevel, p.strategy, p.space, p.epochs, p.context),
    )


def _run(search: BilevelSearch, parts: _SearchParts, checkpoints: Optional[Checkpointer]) -> None:
    """Resume if asked, run the epochs; Ctrl-C names the checkpoint to resume from, the logs are closed."""
    try:
        _resume(search, checkpoints, parts.settings.resilience.resume, parts.context, parts.loaders)
        search.run(parts.epochs, parts.settings.logging.progress)
    except KeyboardInterrupt as interrupt:  # Ctrl-C: say which checkpoint a resume continues from
        raise KeyboardInterrupt(interrupted_message(checkpoints, search.next_epoch)) from interrupt
    finally:  # a search that stops with an error keeps what it logged
        search.live.close()


def _live_log(
    settings: FitSettings,
    supernet: SupernetExecutor,
    bilevel: BilevelOptimizer,
    strategy: Strategy,
    space: Node,
    epochs: int,
    context: DistributedContext,
) -> LiveLog:
    """What the search sends to `settings.logging.loggers` (rank 0 alone logs)."""
    loggers = settings.logging.loggers
    return LiveLog(loggers, supernet, bilevel, strategy, space, settings.budget.label(), epochs, context.is_main)


def _check_run(epochs: Any, batch_size: Any) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def _strategy(
    strategy: Union[str, Strategy], settings: FitSettings, context: DistributedContext, device: torch.device
) -> Strategy:
    """A copy of the strategy (schedules mutate it; the caller's stays as given), checked against
    what the settings ask of it."""
    strategy = copy.deepcopy(get_strategy(strategy))
    check_selection(settings.selection.mode, strategy.learns_architecture, strategy.name, context.enabled)
    if settings.execution.precision == "16-mixed" and not strategy.scaled_gradients:
        raise ValueError(
            f"precision='16-mixed' needs a gradient scaler, and strategy {strategy.name!r} computes its architecture "
            "gradient by hand (no scaled backward); use precision='bf16-mixed' or '32' with it"
        )
    if settings.execution.compile:
        check_compilable(strategy.name, strategy.fixed_graph, device, context.enabled)
    if settings.budget.kind is not None and not strategy.learns_architecture:
        raise ValueError(
            f"strategy {strategy.name!r} learns no architecture, so cost= has nothing to steer; "
            "train without it and apply the budget afterwards (search.evolve(constraints=...))"
        )
    return strategy


def _supernet(
    space: Node, strategy: Strategy, seed: int, device: torch.device, initial_state: Optional[dict[str, torch.Tensor]]
) -> SupernetExecutor:
    """The supernet of `space` with the strategy's mixture, on `device`, from `initial_state` if given."""
    supernet = SupernetExecutor(space, mixture=strategy.mixture(), seed=seed).to(device)
    if initial_state is not None:
        for key, value in initial_state.items():
            refuse_meta(value, f"initial_state[{key!r}]")
        supernet.load_state_dict(initial_state)
    if not supernet.arch_parameters():
        raise ValueError(
            f"the space ending at {space.id} has no ChoiceOp: there is no architecture to search "
            "(train it as a fixed network, e.g. with BasicExecutor and search.retrain.train_classifier)"
        )
    return supernet


def _device(device: Union[str, torch.device, None]) -> Optional[torch.device]:
    return check_device(device)  # a device this machine lacks is named before anything runs


def _resilience(
    resilience: ResilienceSettings, context: DistributedContext
) -> tuple[Optional[Checkpointer], Optional[StepGuard]]:
    """The checkpoints (None without checkpoint_dir) and the bad-step guard (None with max_bad_steps=None)."""
    checkpoints = Checkpointer(resilience.checkpoint_dir) if resilience.checkpoint_dir is not None else None
    if checkpoints is not None:
        context.agree(lambda: checkpoints.check_writable() if context.is_main else None)  # before any training
    if resilience.max_bad_steps is None:
        return checkpoints, None
    return checkpoints, StepGuard(resilience.max_bad_steps, context, lambda: _newest(checkpoints))


def _optimizer(
    supernet: SupernetExecutor,
    strategy: Strategy,
    loss: Optional[Loss],
    settings: FitSettings,
    epochs: int,
    context: DistributedContext,
    device: torch.device,
    guard: Optional[StepGuard],
    precision: MixedPrecision,
) -> BilevelOptimizer:
    """The bilevel optimizer: the guarded loss, the cost term, DDP around the weights and averaged
    architecture gradients in a distributed search, the guard's checks on both optimizers."""
    loss_fn = ScalarLoss(loss if loss is not None else torch.nn.functional.cross_entropy)
    budget = settings.budget
    penalty = (
        CostPenalty(
            supernet,
            budget.kind,
            budget.weight,
            budget.target,
            budget.latency_table,
            settings.logging.progress and context.is_main,
        )
        if budget.kind is not None
        else None
    )
    watched = guard.watch_loss(loss_fn) if guard is not None else loss_fn
    bilevel = BilevelOptimizer(
        supernet,
        watched,
        settings.optim,
        epochs,
        penalty=penalty,
        strategy=strategy,
        model=wrap_weights(supernet, device) if context.enabled else None,
        precision=precision,
        forward=compile_supernet(supernet) if settings.execution.compile else None,
    )
    if context.enabled:
        average_gradients_before_step(bilevel.arch_optimizer, context)  # before the guard's check
    if guard is not None:
        guard.attach(bilevel.weight_optimizer)
        guard.attach(bilevel.arch_optimizer)
    return bilevel


def _recorded(
    strategy: Strategy,
    epochs: int,
    seed: int,
    bilevel: BilevelOptimizer,
    loaders: SearchLoaders,
    settings: FitSettings,
    context: DistributedContext,
) -> dict[str, Any]:
    """The run's settings as checkpoints record them (a resume must match) and results show them."""
    world = context.world_size
    return {
        "strategy": strategy.config(),
        "epochs": epochs,
        "seed": seed,
        "optim": vars(bilevel.config),
        "batch_size": batch_size_of(loaders.train, world),
        "val_batch_size": batch_size_of(loaders.val, world),
        "record_every": settings.logging.record_every,
        "train_samples": dataset_size(loaders.train),
        "val_samples": dataset_size(loaders.val),
        "cost": settings.budget.label(),
        "cost_weight": settings.budget.weight,
        "cost_target": settings.budget.target,
        "precision": settings.execution.precision,
        "compile": settings.execution.compile,
    }


def _resume(
    search: BilevelSearch,
    checkpoints: Optional[Checkpointer],
    resume: bool,
    context: DistributedContext,
    loaders: SearchLoaders,
) -> None:
    """Continue `search` from the newest checkpoint (resume), after checking it was written with
    the same settings; without resume, refuse a directory that holds checkpoints."""
    loaded = _load_checkpoint(checkpoints, resume, context)
    if loaded is None:
        return
    path, state = loaded
    _check_same_settings(path, state["settings"], search.settings)
    if not (is_resumable(loaders.train) and is_resumable(loaders.val)):
        warnings.warn(
            "resuming with a DataLoader as data: the batches after the checkpoint follow that loader, "
            "so the search is not bit-identical to an uninterrupted one (pass tensors or a Dataset)",
            RuntimeWarning,
        )
    search.load_state_dict(state, path)


def _newest(checkpoints: Optional[Checkpointer]) -> Optional[str]:
    if checkpoints is None:
        return None
    latest = checkpoints.latest()
    return str(latest) if latest is not None else None


def _load_checkpoint(
    checkpoints: Optional[Checkpointer], resume: bool, context: DistributedContext
) -> Optional[tuple[Path, dict[str, Any]]]:
    """Rank 0 reads the newest checkpoint (resume) or makes sure there is none to overwrite; every
    process gets what rank 0 read."""
    if checkpoints is None:
        return None

    def refuse_to_overwrite() -> None:
        if context.is_main and not resume and checkpoints.latest() is not None:
            raise FileExistsError(
                f"checkpoint_dir {checkpoints.directory} already holds checkpoints ({checkpoints.latest().name}); "
                "pass resume=True to continue that search, or choose an empty directory"
            )

    context.agree(refuse_to_overwrite)
    if not resume:
        return None
    return context.broadcast_object(checkpoints.load_latest() if context.is_main else None)


def _check_same_settings(path: Path, saved: dict[str, Any], current: dict[str, Any]) -> None:
    differing = [
        f"{k}: {saved.get(k)!r} in the checkpoint, {current.get(k)!r} now"
        for k in sorted(set(saved) | set(current))
        if saved.get(k) != current.get(k)
    ]
    if differing:
        raise ValueError(
            f"checkpoint {path} was written by a search with other settings ({'; '.join(differing)}); "
            "resume with the same settings, or start afresh in another checkpoint_dir"
        )
