"""Early stopping of a search: a `fit_supernet(callbacks=[...])` callback.

`EarlyStopping(criterion)` stops the search (returns True) once the criterion has held for
`patience` consecutive epochs. Criteria are callables of the callback state (`epoch`, `metrics`,
`probabilities`, `supernet`, `strategy`) or names:

- "parameter_free" (DARTS+): at least `max_parameter_free` switches select a parameter-free option
  (an option without trainable weights: skip, pooling; `Zero` only with `count_zero=True`), the
  sign of the skip-connection collapse;
- "stable": the selected architecture is the same as at the previous epoch (DARTS+'s "stable
  ranking", with `patience` epochs).
The selection is the strategy's (`strategy.select`), so FairDARTS's threshold rule counts.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from supernet import Op, SupernetExecutor, Tensor

State = dict[str, Any]


def parameter_free_winners(
    supernet: SupernetExecutor, architecture: dict[str, int], count_zero: bool = False
) -> list[str]:
    """The switch ids whose selected option has no trainable weight (Zero only if `count_zero`)."""
    winners, seen = [], set()
    for choice in supernet.choices:
        sid = choice.switch.id
        if sid in seen or sid not in architecture:
            continue
        seen.add(sid)
        index = architecture[sid]
        nodes = supernet.option_subgraphs(choice)[1][index]
        option = choice.operands[index]
        if nodes is None or (isinstance(option, Op) and option.traits.zero and not count_zero):
            continue
        if not any(isinstance(n, Tensor) and n.role == "weight" and n.trainable for n in nodes):
            winners.append(sid)
    return winners


class EarlyStopping:
    """Stop the search when `criterion` has held for `patience` consecutive epochs.

    `stopped_epoch` is the epoch after which it stopped (None while running); `history` holds the
    criterion's value at each epoch.
    """

    def __init__(
        self,
        criterion: Union[str, Callable[[State], bool]] = "parameter_free",
        *,
        max_parameter_free: int = 2,
        count_zero: bool = False,
        patience: int = 1,
        min_epochs: int = 0,
    ) -> None:
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if isinstance(criterion, str) and criterion not in ("parameter_free", "stable"):
            raise ValueError(f"unknown criterion {criterion!r}; known: 'parameter_free', 'stable' or a callable")
        self.criterion = criterion
        self.max_parameter_free, self.count_zero = max_parameter_free, count_zero
        self.patience, self.min_epochs = patience, min_epochs
        self.stopped_epoch: Optional[int] = None
        self.history: list[bool] = []
        self._streak = 0
        self._previous: Optional[dict[str, int]] = None

    def __call__(self, state: State) -> bool:
        hit = bool(self._evaluate(state))
        self.history.append(hit)
        self._streak = self._streak + 1 if hit else 0
        if self._streak >= self.patience and state["epoch"] + 1 >= self.min_epochs:
            self.stopped_epoch = state["epoch"]
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """The criterion's progress (for checkpoints: a resumed search stops where this one would)."""
        return {
            "stopped_epoch": self.stopped_epoch,
            "history": list(self.history),
            "streak": self._streak,
            "previous": dict(self._previous) if self._previous is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.stopped_epoch, self.history = state["stopped_epoch"], list(state["history"])
        self._streak = state["streak"]
        self._previous = dict(state["previous"]) if state["previous"] is not None else None

    def _evaluate(self, state: State) -> bool:
        if callable(self.criterion):
            return self.criterion(state)
        architecture = state["strategy"].select(state["supernet"])
        if self.criterion == "parameter_free":
            return (
                len(parameter_free_winners(state["supernet"], architecture, self.count_zero)) >= self.max_parameter_free
            )
        stable = architecture == self._previous
        self._previous = architecture
        return stable
