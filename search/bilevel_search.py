"""BilevelSearch: the epoch loop of a search and the state a checkpoint captures.

`fit_supernet` checks the user's input and builds the parts (supernet, bilevel optimizer, strategy,
loaders, guard, checkpointer); this object runs them: per epoch, the strategy's schedules, then per
training batch an architecture step on the next validation batch and a weight step, the alpha
history, the epoch metrics, the callbacks and the checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Optional, Sequence

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from supernet import SupernetExecutor
from supernet.node import Node

from .bilevel import Batch, BilevelOptimizer, frozen_buffers
from .checkpoint import Checkpointer, callback_states, capture_rng_state, load_callback_states, restore_rng_state
from .distributed import SINGLE_PROCESS, DistributedContext
from .generators import SearchGenerators
from .guard import StepGuard
from .history import AlphaHistory
from .live_log import LiveLog
from .loaders import BatchStream, move, set_pass
from .perturbation import PerturbationSelection
from .result import SearchResult
from .selection import select_architecture
from .settings import SelectionSettings
from .strategies import Strategy
from .validation import Targets

if TYPE_CHECKING:  # pragma: no cover
    import torchmetrics  # not at run time: it loads matplotlib, and `import search` stays fast

Callback = Callable[[dict[str, Any]], Optional[bool]]

RESULT_SETTINGS = (
    "strategy",
    "epochs",
    "batch_size",
    "val_batch_size",
    "seed",
    "optim",
    "cost",
    "cost_weight",
    "cost_target",
    "precision",
    "compile",
)


class BilevelSearch:
    """Runs `epochs` epochs of bilevel steps over `train_loader` (weights) and an endless stream of
    `val_loader` batches (architecture), and holds the counters a checkpoint restores.

    `meters` are the epoch metrics (torchmetrics objects, cloned for the train and val sides);
    `settings` are the run's settings, saved in checkpoints (a resume must match them) and partly
    in the result. `callbacks` are called after every epoch; one returning True stops the search.
    `selection`: how the result's architecture is selected (`search.selection`; the perturbation
    selection scores with `targets`, what the labels are). `live`: where the recorded steps and
    the epochs are logged while the search runs (search.live_log).
    """

    def __init__(
        self,
        supernet: SupernetExecutor,
        bilevel: BilevelOptimizer,
        strategy: Strategy,
        train_loader: DataLoader,
        val_loader: DataLoader,
        *,
        settings: dict[str, Any],
        meters: Optional[dict[str, torchmetrics.Metric]] = None,
        val_argument: str = "val",
        record_every: int = 1,
        callbacks: Sequence[Callback] = (),
        guard: Optional[StepGuard] = None,
        checkpoints: Optional[Checkpointer] = None,
        context: DistributedContext = SINGLE_PROCESS,
        device: torch.device = torch.device("cpu"),
        selection: SelectionSettings = SelectionSettings(),
        targets: Targets = Targets(),
        generators: Optional[SearchGenerators] = None,
        live: Optional[LiveLog] = None,
    ) -> None:
        self.supernet, self.bilevel, self.strategy = supernet, bilevel, strategy
        self.train_loader, self.val_loader, self.val_argument = train_loader, val_loader, val_argument
        self.settings, self.record_every = settings, record_every
        self.callbacks, self.guard, self.checkpoints = list(callbacks), guard, checkpoints
        self.context, self.device = context, device
        self.selection, self.targets, self.live = selection, targets, live
        self.generators = generators  # the search's own random streams (search.generators), checkpointed
        self.train_meters = {k: m.clone().to(device) for k, m in (meters or {}).items()}
        self.val_meters = {k: m.clone().to(device) for k, m in (meters or {}).items()}
        self.history = AlphaHistory(supernet)
        self.step = 0  # steps done
        self.next_epoch = 0
        self.val_position = 0  # validation batches drawn
        self.finished = False  # the last epoch ran, or a callback stopped the search
        self.metrics: list[dict[str, float]] = []

    def run(self, epochs: int, progress: bool = True) -> None:
        """Run (or continue, after `load_state_dict`) the search up to `epochs` epochs (the
        strategy has been planned for them: `Strategy.plan`)."""
        self.history.decision_epoch = self.strategy.decision_start(epochs)
        if not self.history.steps:
            self.history.record(0, 0, self.supernet)
        val_stream = BatchStream(self.val_loader, self.val_position, self.val_argument)
        bar = tqdm(
            range(self.next_epoch, epochs),
            desc="search",
            disable=not (progress and self.context.is_main),
            leave=False,
            initial=self.next_epoch,
            total=epochs,
        )
        for epoch in [] if self.finished else bar:
            row = self.run_epoch(epoch, epochs, val_stream)
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "epoch"})
            if self.finished:
                break
        bar.close()

    def run_epoch(self, epoch: int, epochs: int, val_stream: BatchStream) -> dict[str, float]:
        """One epoch: its steps, then its metrics row, the callbacks and the checkpoint. Returns the row."""
        self.strategy.on_epoch_start(epoch, epochs, self.supernet)
        set_pass(self.train_loader, epoch)
        losses = _EpochLosses()
        for batch in self.train_loader:
            self.train_step(epoch, move(batch, self.device), move(next(val_stream), self.device), losses)
        self.bilevel.end_epoch()
        if self.guard is not None:
            self.guard.end_epoch(epoch)
        row = self._epoch_row(epoch, losses)
        self.metrics.append(row)
        if self.live is not None:
            self.live.epoch_end(self.step, row, self.history)
        state = {
            "epoch": epoch,
            "metrics": row,
            "probabilities": self.supernet.probabilities(),
            "supernet": self.supernet,
            "strategy": self.strategy,
            "rank": self.context.rank,
            "world_size": self.context.world_size,
        }
        stop = self.context.any(any(callback(state) for callback in self.callbacks))
        self.next_epoch, self.val_position = epoch + 1, val_stream.position
        self.finished = stop or epoch == epochs - 1
        if self.finished and self.history.steps[-1] != self.step:  # the final state, whatever record_every
            self.history.record(self.step, epoch, self.supernet)
        if self.checkpoints is not None:
            checkpoint = self.state_dict()  # collective: gathers every process's random state
            if self.context.is_main:
                self.checkpoints.save(checkpoint, epoch)
        return row

    def train_step(self, epoch: int, train_batch: Batch, val_batch: Batch, losses: "_EpochLosses") -> None:
        """One search step: the architecture on `val_batch` (or only its loss, during warm-up),
        then the weights on `train_batch`; skipped (non-finite) steps count in no metric."""
        supernet, guard = self.supernet, self.guard
        skipped, logged = False, {}
        if self.strategy.learns_architecture and self.strategy.searches_architecture(epoch):
            with _guarded(guard, "architecture", epoch, self.step, supernet):
                val_loss, val_logits = self.strategy.architecture_step(self.bilevel, train_batch, val_batch)
            skipped = guard is not None and guard.skipped
        else:
            with torch.no_grad(), frozen_buffers(supernet):
                supernet.train()
                with self.bilevel.precision.autocast():
                    val_logits = supernet(val_batch[0]).float()
                val_loss = self.bilevel.loss(val_logits, val_batch[1])
        if not skipped:
            _update(self.val_meters, val_logits, val_batch[1])
            losses.add("val_loss", val_loss)
            logged["val_loss"] = val_loss
        with _guarded(guard, "weight", epoch, self.step, supernet):
            train_loss, train_logits = self.strategy.weight_step(self.bilevel, train_batch)
        if not (guard is not None and guard.skipped):
            _update(self.train_meters, train_logits, train_batch[1])
            losses.add("train_loss", train_loss)
            logged["train_loss"] = train_loss
        self.step += 1
        if self.step % self.record_every == 0:
            self.history.record(self.step, epoch, supernet)
            if self.live is not None:
                self.live.record(self.step, epoch, logged)

    def _epoch_row(self, epoch: int, losses: "_EpochLosses") -> dict[str, float]:
        row = {"epoch": epoch, **losses.means(self.context, self.device)}
        row.update({f"train_{k}": float(m.compute()) for k, m in self.train_meters.items()})
        row.update({f"val_{k}": float(m.compute()) for k, m in self.val_meters.items()})
        if self.bilevel.penalty is not None:
            with torch.no_grad():
                row[f"expected_{self.settings['cost']}"] = float(self.bilevel.penalty.expected())
        for m in (*self.train_meters.values(), *self.val_meters.values()):
            m.reset()
        return row

    def result(self, space: Node) -> SearchResult:
        """The SearchResult of the search so far, complete: the selection (search.selection), the
        distribution, the history and metrics, the settings and the supernet's weights."""
        supernet, history = self.supernet, self.history.as_dict()
        selection = select_architecture(
            supernet,
            self.strategy,
            self.selection,
            history=history,
            perturb=self._perturb,
            penalty=self.bilevel.penalty,
            warn=self.context.is_main,
        )
        config = {key: self.settings[key] for key in RESULT_SETTINGS if key in self.settings}
        return SearchResult(
            architecture=selection.architecture,
            probabilities=supernet.probabilities(),
            history=history,
            metrics=self.metrics,
            option_names=supernet.option_names(),
            option_values=supernet.option_values(),
            config={**config, "selection": selection.record},
            confidence=selection.confidence,
            supernet_state={k: v.detach().cpu().clone() for k, v in supernet.state_dict().items()},
            space=space,
            perturbation=selection.perturbation,
        )

    def _perturb(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The perturbation selection on the trained supernet, fine-tuning on the training batches
        that follow the search's."""
        return PerturbationSelection(
            self.supernet,
            self.selection.perturbation,
            self.val_loader,
            targets=self.targets,
            loss=self.bilevel.loss,
            train_loader=self.train_loader,
            train_position=self.next_epoch * len(self.train_loader),
            weight_step=lambda batch: self.strategy.weight_step(self.bilevel, batch),
            weight_optimizer=self.bilevel.weight_optimizer,
            device=self.device,
        ).select()

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint of the search at the end of epoch `next_epoch - 1`; a collective call
        (the random states of every process are gathered), meant to be saved by rank 0."""
        return {
            "epoch": self.next_epoch - 1,
            "finished": self.finished,
            "step": self.step,
            "val_position": self.val_position,
            "settings": self.settings,
            "world_size": self.context.world_size,
            "metrics": list(self.metrics),
            "supernet": {k: v.detach().cpu() for k, v in self.supernet.state_dict().items()},
            "bilevel": self.bilevel.state_dict(),
            "strategy": self.strategy.state_dict(),
            "mixture": self.supernet.mixture.state_dict(),
            "callbacks": callback_states(self.callbacks),
            "history": self.history.state_dict(),
            "guard": self.guard.state_dict() if self.guard is not None else None,
            "rng": self.context.all_gather_object(capture_rng_state(self.device, self.generators)),
        }

    def load_state_dict(self, state: dict[str, Any], path: Path) -> None:
        """Continue from the checkpoint read from `path`: the states of every part, the counters,
        then the random states."""
        self.supernet.load_state_dict(state["supernet"])
        self.bilevel.load_state_dict(state["bilevel"])
        self.strategy.load_state_dict(state["strategy"])
        self.supernet.mixture.load_state_dict(state["mixture"])
        load_callback_states(self.callbacks, state["callbacks"], path)
        self.history.load_state_dict(state["history"])
        if not state["finished"]:
            self.history.resumed(state["step"])
        if self.live is not None:
            self.live.resume(state["step"])
        if self.guard is not None and state["guard"] is not None:
            self.guard.load_state_dict(state["guard"])
        self.step, self.next_epoch, self.val_position = state["step"], state["epoch"] + 1, state["val_position"]
        self.finished, self.metrics = state["finished"], list(state["metrics"])
        rng, rank = state["rng"], self.context.rank
        if state["world_size"] != self.context.world_size:
            warnings.warn(
                f"checkpoint {path} was written by {state['world_size']} process(es), this search runs on "
                f"{self.context.world_size}: it continues with the same global batches, but is not bit-identical "
                "to an uninterrupted run",
                RuntimeWarning,
            )
        restore_rng_state(rng[rank] if rank < len(rng) else rng[0], self.device, self.generators)


class _EpochLosses:
    """Sums and counts of the epoch's train and val losses (skipped steps left out)."""

    def __init__(self) -> None:
        self.sums = {"train_loss": 0.0, "val_loss": 0.0}
        self.counts = {"train_loss": 0, "val_loss": 0}

    def add(self, key: str, loss: torch.Tensor) -> None:
        self.sums[key] += float(loss)
        self.counts[key] += 1

    def means(self, context: DistributedContext, device: torch.device) -> dict[str, float]:
        """Epoch means over every process's steps (NaN when every step was skipped)."""
        keys = list(self.sums)
        totals = torch.tensor(
            [self.sums[k] for k in keys] + [float(self.counts[k]) for k in keys],
            dtype=torch.float64,
            device=device if context.enabled else "cpu",
        )
        context.all_reduce_sum(totals)
        values = totals.tolist()
        n = len(keys)
        return {k: (values[i] / values[n + i] if values[n + i] else math.nan) for i, k in enumerate(keys)}


def _guarded(
    guard: Optional[StepGuard], kind: str, epoch: int, step: int, module: torch.nn.Module
) -> ContextManager[None]:
    """`guard.step(...)`, or nothing when the steps are not guarded."""
    return guard.step(kind, epoch, step, module) if guard is not None else contextlib.nullcontext()


def _update(meters: dict[str, torchmetrics.Metric], logits: torch.Tensor, target: torch.Tensor) -> None:
    for meter in meters.values():
        meter.update(logits, target)
