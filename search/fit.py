"""fit_supernet: the differentiable search, end to end (single process or distributed, resumable)."""
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
from supernet.cost import CostKind
from supernet.latency import LatencyTable
from supernet.node import Node

from .bilevel import BilevelConfig, BilevelOptimizer
from .bilevel_search import BilevelSearch, Callback
from .checkpoint import Checkpointer
from .confidence import ON_UNDECIDED, result_confidence, UndecidedError, UndecidedWarning, undecided_message
from .cost_penalty import CostPenalty
from .distributed import DistributedContext, average_gradients_before_step, setup_distributed, wrap_weights
from .guard import StepGuard
from .loaders import Data, batch_size_of, is_resumable, search_loader, split_in_halves
from .metrics import Metrics, metric_set
from .perturbation import PerturbationSettings, check_selection
from .result import SearchResult
from .strategies import DEFAULT_STRATEGY, Strategy, get_strategy
from .validation import ScalarLoss, check_first_batches

VAL_SEED_OFFSET = 1_000_003  # the validation stream's permutations never coincide with the training ones


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
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
    loss: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
    metrics: Optional[Metrics] = None,
    seed: int = 0,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    callbacks: Optional[Sequence[Callback]] = None,
    optim: Union[BilevelConfig, dict, None] = None,
    record_every: int = 1,
    distributed: Optional[bool] = None,
    checkpoint_dir: Union[str, Path, None] = None,
    resume: bool = False,
    max_bad_steps: Optional[int] = 5,
    cost: Optional[CostKind] = None,
    cost_weight: float = 0.0,
    cost_target: Optional[float] = None,
    latency_table: Optional[LatencyTable] = None,
    initial_state: Optional[dict[str, torch.Tensor]] = None,
    on_undecided: str = "warn",
    selection: str = "argmax",
    perturbation: Union[PerturbationSettings, dict, None] = None,
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

    Scale-out and resilience:
    - `distributed`: True runs the search on torch.distributed (launch with `torchrun`), None
      does so when launched by torchrun with more than one process. `batch_size` is the global
      batch, split between the processes; weights are synchronised by DistributedDataParallel,
      architecture gradients are averaged too; every process returns the same SearchResult and
      only rank 0 writes checkpoints. Runs agree, within float rounding, with a single-process
      search of the same global batch (spaces with BatchNorm aside: its statistics are per process).
    - `checkpoint_dir`: a checkpoint after every epoch (the newest two are kept), written
      atomically. `resume=True` continues from the newest one there (or starts afresh if there is
      none); the resumed search returns a SearchResult bit-identical to an uninterrupted one
      (for tensor or Dataset data). Without `resume`, a directory holding checkpoints is refused.
    - `max_bad_steps`: a step whose loss or gradients are NaN or inf is skipped with a warning;
      after this many consecutive skipped steps of one kind the search raises FloatingPointError,
      leaving the last good checkpoint intact. None turns the checks off.

    Hardware-aware search: `cost` ("flops", "params" or a callable node -> cost expression) adds
    `cost_weight * E[cost] / E[cost at the start]` to the architecture loss, E over the current
    architecture distribution (differentiable in the alphas); with `cost_target`, the term is
    `cost_weight * relu(E[cost] / cost_target - 1)` instead. The expected cost is logged per epoch.
    `cost="latency"` prices with `latency_table` (a `supernet.latency.LatencyTable`; measured for the
    space at batch size 1 when None), `cost_target` in ms per forward pass at the table's batch size.
    With `cost_target`, the selected architecture is brought within the target where the argmax
    exceeds it (`CostPenalty.within_target`: the cheapest-for-probability changes of choices).

    `initial_state`: a supernet state (e.g. `SearchResult.supernet_state`) to start from.

    Confidence: `result.confidence` and `result.summary()` say, per choice, how probable the
    selected option is, its margin over the runner-up, the entropy and since when it has led
    (`search.confidence`). A choice whose margin is below 0.1, or whose winner changed in the last
    quarter of the steps, is undecided: `on_undecided="warn"` (default) warns (UndecidedWarning),
    naming each such switch id, "raise" raises UndecidedError (its `.result` holds the result),
    "ignore" does neither.

    Selection: `selection="argmax"` (default) takes the strategy's rule (argmax for most);
    "perturbation" takes, per choice, the option whose removal from the trained supernet's mixture
    lowers its validation accuracy the most, deciding the choice of largest effect first and
    fixing it before measuring the others (DARTS-PT; `search.perturbation`). `perturbation`
    (`PerturbationSettings` or a dict of its fields) sets the validation batches it scores on and
    the fine-tuning steps between decisions; `result.perturbation` holds the drops it measured
    (shown by `summary()`). Strategies that learn no architecture (spos, fairnas) and distributed
    searches refuse it.

    Returns a SearchResult whose `export()` gives the selected architecture: the strategy's
    selection (argmax for most) or the perturbation one, never a dead network (if it leaves no path of non-Zero ops from
    the input to the output, the connected alternative of lowest regret is taken, with a warning).
    """
    _check_settings(epochs, batch_size, record_every, checkpoint_dir, resume)
    if on_undecided not in ON_UNDECIDED:
        raise ValueError(f"on_undecided must be one of {ON_UNDECIDED}, got {on_undecided!r}")
    if perturbation is not None and selection != "perturbation":
        check_selection(selection, True, "", False)  # an unknown selection is named first
        raise ValueError(f"perturbation= sets the perturbation selection; pass selection='perturbation' with it (got selection={selection!r})")
    perturbation_settings = PerturbationSettings.from_any(perturbation) if selection == "perturbation" else None
    context, device = setup_distributed(distributed, torch.device(device) if device is not None else None)
    seed_everything(seed)
    strategy = copy.deepcopy(get_strategy(strategy))  # schedules mutate it; the caller's stays as given
    check_selection(selection, strategy.learns_architecture, strategy.name, context.enabled)
    val_argument = "val"
    if val is None:
        train, val = split_in_halves(train, seed, batch_size)
        val_argument = "val (the half of train that val=None holds out)"
    rank, world = context.rank, context.world_size
    train_loader = search_loader(train, batch_size, seed, "train", rank, world)
    val_loader = search_loader(val, batch_size, seed + VAL_SEED_OFFSET, val_argument, rank, world)
    if len(train_loader) == 0:
        raise ValueError("train yields no batch")

    supernet = SupernetExecutor(space, mixture=strategy.mixture(), seed=seed).to(device)
    if initial_state is not None:
        supernet.load_state_dict(initial_state)
    if not supernet.arch_parameters():
        raise ValueError(f"the space ending at {space.id} has no ChoiceOp: there is no architecture to search "
                         "(train it as a fixed network, e.g. with BasicExecutor and search.retrain.train_classifier)")
    targets = context.agree(lambda: check_first_batches(supernet, train_loader, val_loader, loss, val_argument))
    config = BilevelConfig.from_any(optim)
    if config.arch_lr is None:  # the strategy's default for this search's number of steps
        strategy.plan(epochs, len(train_loader))
        config = dataclasses.replace(config, arch_lr=strategy.default_arch_lr(strategy.architecture_steps(epochs)))
    checkpoints = Checkpointer(checkpoint_dir) if checkpoint_dir is not None else None
    guard = StepGuard(max_bad_steps, context, lambda: _newest(checkpoints)) if max_bad_steps is not None else None
    loss_fn = ScalarLoss(loss if loss is not None else torch.nn.functional.cross_entropy)
    if cost is None and (cost_weight or cost_target is not None or latency_table is not None):
        raise ValueError("cost_weight, cost_target and latency_table need cost= ('flops', 'params', 'latency' or a callable)")
    if cost is not None and not strategy.learns_architecture:
        raise ValueError(f"strategy {strategy.name!r} learns no architecture, so cost= has nothing to steer; "
                         "train without it and apply the budget afterwards (search.evolve(constraints=...))")
    bilevel = BilevelOptimizer(
        supernet, guard.watch_loss(loss_fn) if guard is not None else loss_fn, config, epochs,
        model=wrap_weights(supernet, device) if context.enabled else None,
        penalty=CostPenalty(supernet, cost, cost_weight, cost_target, latency_table, progress and context.is_main) if cost is not None else None,
    )
    if context.enabled:
        average_gradients_before_step(bilevel.arch_optimizer, context)  # before the guard's check
    if guard is not None:
        guard.attach(bilevel.weight_optimizer)
        guard.attach(bilevel.arch_optimizer)
    settings = {
        "strategy": strategy.config(), "epochs": epochs, "seed": seed, "optim": vars(config),
        "batch_size": batch_size_of(train_loader, world), "val_batch_size": batch_size_of(val_loader, world),
        "record_every": record_every, "train_samples": _size(train_loader), "val_samples": _size(val_loader),
        "cost": cost if cost is None or isinstance(cost, str) else getattr(cost, "__name__", repr(cost)),
        "cost_weight": cost_weight, "cost_target": cost_target,
    }
    search = BilevelSearch(supernet, bilevel, strategy, train_loader, val_loader, settings=settings,
                           meters=metric_set(metrics, targets), val_argument=val_argument,
                           record_every=record_every, callbacks=list(callbacks or []), guard=guard,
                           checkpoints=checkpoints, context=context, device=device,
                           perturbation=perturbation_settings, targets=targets)
    loaded = _load_checkpoint(checkpoints, resume, context)
    if loaded is not None:
        path, state = loaded
        _check_same_settings(path, state["settings"], settings)
        if not (is_resumable(train_loader) and is_resumable(val_loader)):
            warnings.warn("resuming with a DataLoader as data: the batches after the checkpoint follow that loader, "
                          "so the search is not bit-identical to an uninterrupted one (pass tensors or a Dataset)", RuntimeWarning)
        search.load_state_dict(state, path)
    search.run(epochs, progress)
    result = search.result(space)
    result.config["selection"] = {"mode": "perturbation", **dataclasses.asdict(perturbation_settings)} if perturbation_settings else {"mode": "argmax"}
    if bilevel.penalty is not None:
        within = bilevel.penalty.within_target(result.architecture)
        if within != result.architecture:  # the confidence must describe what is handed out
            result.architecture = within
            result.confidence = result_confidence(within, result.probabilities, result.option_values, result.option_names, result.history)
    message = undecided_message(result.confidence, strategy.name, search.step) if on_undecided != "ignore" else None
    if message is not None and on_undecided == "raise":
        raise UndecidedError(message, result)
    if message is not None and context.is_main:
        warnings.warn(message, UndecidedWarning, stacklevel=2)
    return result


def _check_settings(epochs: Any, batch_size: Any, record_every: Any, checkpoint_dir: Any, resume: bool) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(record_every, bool) or not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"record_every must be a positive int, got {record_every!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir= (the directory the interrupted search wrote its checkpoints to)")


def _size(loader: Any) -> Optional[int]:
    try:
        return len(loader.dataset)
    except TypeError:
        return None


def _newest(checkpoints: Optional[Checkpointer]) -> Optional[str]:
    if checkpoints is None:
        return None
    latest = checkpoints.latest()
    return str(latest) if latest is not None else None


def _load_checkpoint(checkpoints: Optional[Checkpointer], resume: bool, context: DistributedContext) -> Optional[tuple[Path, dict[str, Any]]]:
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
    differing = [f"{k}: {saved.get(k)!r} in the checkpoint, {current.get(k)!r} now" for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    if differing:
        raise ValueError(f"checkpoint {path} was written by a search with other settings ({'; '.join(differing)}); "
                         "resume with the same settings, or start afresh in another checkpoint_dir")
