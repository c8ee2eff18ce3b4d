"""Constrained evolutionary search over a trained supernet (aging evolution, Real et al. 2019).

`evolve` scores architectures with the weights they inherit from a search result's supernet
(`PathEvaluator`: BatchNorm statistics re-estimated per candidate) on validation data. It starts
from `population` random architectures, then runs `generations * population` cycles: a tournament
of `sample_size` members picks the best as parent, a mutation (every switch and value choice
redrawn with probability `mutation`, at least one changed) gives the child, the child joins and
the oldest member leaves (regularised evolution). Constraints (`flops`, `params`, `latency`: upper
bounds) are checked on the discretized architecture before anything is evaluated: a candidate
over a bound is redrawn and never evaluated. Architectures already scored are not scored again.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from typing import Any, Mapping, Optional, Union

import torch
from tqdm import tqdm

from supernet import discretize
from supernet.conditions import satisfies
from supernet.cost import architecture_cost
from supernet.seeds import as_seed

from .connectivity import is_connected
from .evaluate import PathEvaluator
from .loaders import Data
from .result import SearchResult
from .zero_cost.prefilter import Prefilter

CONSTRAINT_KINDS = ("flops", "params", "latency")
_DRAWS = 1000  # redraws of a candidate over a constraint before giving up


@dataclasses.dataclass
class Candidate:
    """An evaluated architecture: its choices, validation metrics and costs (plain data)."""

    architecture: dict[str, Any]
    accuracy: float
    loss: float
    costs: dict[str, float]
    order: int  # when it was first evaluated


class ConstrainedSpace:
    """The architectures of a supernet that satisfy upper bounds on their costs."""

    def __init__(
        self,
        result: SearchResult,
        values: Mapping[str, list],
        constraints: Mapping[str, Optional[float]],
        latency_table: Any = None,
    ) -> None:
        self.space, self.values = result.space, {k: list(v) for k, v in values.items()}
        self.bounds = _check_constraints(constraints, latency_table)
        self.latency_table = latency_table
        self._costs: dict[tuple, dict[str, float]] = {}

    def key(self, architecture: Mapping[str, Any]) -> tuple:
        return tuple(architecture[k] for k in self.values)

    def costs(self, architecture: Mapping[str, Any]) -> dict[str, float]:
        """The bounded costs of `architecture` (priced once per architecture)."""
        key = self.key(architecture)
        if key not in self._costs:
            fixed = discretize(self.space, architecture)
            self._costs[key] = {kind: self._price(fixed, kind) for kind in self.bounds}
        return self._costs[key]

    def _price(self, fixed: Any, kind: str) -> float:
        if kind == "latency":  # the latency issue's table-based model
            return float(architecture_cost(fixed, kind, table=self.latency_table))
        return float(architecture_cost(fixed, kind))

    def admits(self, architecture: Mapping[str, Any]) -> bool:
        if not is_connected(self.space, architecture):  # a dead network (no path from the input) is never a candidate
            return False
        if not satisfies(self.space, architecture):  # the space's own conditions (`cond`), redrawn like a bound
            return False
        costs = self.costs(architecture)
        return all(costs[kind] <= bound for kind, bound in self.bounds.items())

    def random(self, rng: random.Random) -> dict[str, Any]:
        return {k: rng.choice(v) for k, v in self.values.items()}

    def mutate(self, parent: Mapping[str, Any], rate: float, rng: random.Random) -> dict[str, Any]:
        """Each choice redrawn among its other values with probability `rate`; at least one is."""
        mutable = [k for k, v in self.values.items() if len(v) > 1]
        if not mutable:
            raise ValueError(
                "evolve: every switch and value choice of the supernet has a single option; there is nothing to mutate"
            )
        child = dict(parent)
        changed = [k for k in mutable if rng.random() < rate] or [rng.choice(mutable)]
        for k in changed:
            child[k] = rng.choice([v for v in self.values[k] if v != parent[k]])
        return child

    def draw(self, make: Any, what: str) -> dict[str, Any]:
        """The first of up to `_DRAWS` candidates `make()` draws that satisfies every bound."""
        seen: dict[str, float] = {}
        for _ in range(_DRAWS):
            candidate = make()
            if self.admits(candidate):
                return candidate
            for kind, cost in self.costs(candidate).items():
                seen[kind] = min(seen.get(kind, cost), cost)
        raise ValueError(
            f"evolve: no {what} within the constraints {self.bounds} in {_DRAWS} draws "
            f"(the least costs drawn: {seen}); loosen the constraints"
        )


def evolve(
    result: SearchResult,
    val: Data,
    *,
    population: int = 50,
    generations: int = 20,
    mutation: float = 0.1,
    constraints: Optional[Mapping[str, Optional[float]]] = None,
    seed: int = 0,
    sample_size: int = 10,
    top: int = 5,
    train: Optional[Data] = None,
    recalibrate_bn: bool = True,
    batches: Optional[int] = 10,
    latency_table: Any = None,
    batch_size: int = 256,
    device: Union[str, torch.device, None] = None,
    progress: bool = True,
    prefilter: Optional[tuple[str, int]] = None,
) -> list[SearchResult]:
    """Search the architectures of `result`'s trained supernet by aging evolution; returns the
    `top` best distinct ones found within `constraints`, ranked by validation accuracy (ties: lower
    loss, then found first), each a SearchResult that exports, saves and evaluates like any other.

    `constraints`: upper bounds {"flops": ..., "params": ..., "latency": ...} (None or missing:
    unbounded), priced by `supernet.cost.architecture_cost` on the discretized architecture
    (latency with `latency_table`); candidates over a bound are never evaluated. Each candidate is
    scored on `val` after BatchNorm recalibration on `batches` batches of `train` (None: of `val`'s
    inputs; see `SearchResult.evaluate`). `population * (generations + 1)` candidates are drawn
    in all. Same seed, same result. Each returned result's `config["evolution"]` holds its rank,
    validation metrics, costs and the evolution's settings.

    `prefilter=(proxy, k)` (e.g. ("synflow", 10)): every candidate evaluated is the best, by that
    zero-cost proxy at initialisation (`search.zero_cost`; data-dependent proxies score a batch of
    `train`, else of `val`), of k admissible ones drawn the usual way; the cycles stay as many (a
    pick already evaluated is not evaluated again, so fewer distinct candidates may be).
    """
    _check_settings(population, generations, mutation, sample_size, top)
    seed = as_seed(seed)
    rng = random.Random(seed)
    evaluator = PathEvaluator(result, device)
    space = ConstrainedSpace(result, evaluator.values, constraints or {}, latency_table)
    scored: dict[tuple, Candidate] = {}
    chooser = Prefilter.of(result.space, prefilter, train if train is not None else val, seed)
    pick = chooser.pick if chooser is not None else lambda draw: draw()

    def score(architecture: dict[str, Any]) -> Candidate:
        key = space.key(architecture)
        if key not in scored:
            metrics = evaluator.evaluate(
                val,
                architecture,
                recalibrate_bn=recalibrate_bn,
                batches=batches,
                train=train,
                batch_size=batch_size,
                seed=seed,
            )
            scored[key] = Candidate(
                dict(architecture), metrics["accuracy"], metrics["loss"], space.costs(architecture), len(scored)
            )
        return scored[key]

    members: collections.deque[Candidate] = collections.deque()
    total = population * (generations + 1)
    with tqdm(total=total, desc="evolve", disable=not progress, leave=False) as bar:
        for _ in range(population):
            members.append(score(pick(lambda: space.draw(lambda: space.random(rng), "random architecture"))))
            bar.update()
        for _ in range(population * generations):
            tournament = rng.sample(list(members), min(sample_size, len(members)))
            parent = max(tournament, key=_fitness)
            child = pick(lambda: space.draw(lambda: space.mutate(parent.architecture, mutation, rng), "mutation"))
            members.append(score(child))
            members.popleft()
            bar.update()
            bar.set_postfix(best=round(max(c.accuracy for c in scored.values()), 4))
    ranked = sorted(scored.values(), key=_fitness, reverse=True)[:top]
    settings = {
        "population": population,
        "generations": generations,
        "mutation": mutation,
        "sample_size": sample_size,
        "seed": seed,
        "constraints": dict(space.bounds),
        "evaluated": len(scored),
        "recalibrate_bn": recalibrate_bn,
        "batches": batches,
        "prefilter": list(prefilter) if prefilter is not None else None,
    }
    return [_as_result(result, c, rank, settings) for rank, c in enumerate(ranked, start=1)]


def _fitness(candidate: Candidate) -> tuple:
    return (candidate.accuracy, -candidate.loss, -candidate.order)


def _as_result(result: SearchResult, candidate: Candidate, rank: int, settings: dict[str, Any]) -> SearchResult:
    chosen = result.with_architecture(candidate.architecture)
    info = {
        "rank": rank,
        "val_accuracy": candidate.accuracy,
        "val_loss": candidate.loss,
        "costs": dict(candidate.costs),
        **settings,
    }
    return dataclasses.replace(chosen, config={**result.config, "evolution": info})


def _check_constraints(constraints: Mapping[str, Optional[float]], latency_table: Any) -> dict[str, float]:
    if not isinstance(constraints, Mapping):
        raise TypeError(f"constraints must be a dict like {{'flops': 1e6}}, got {type(constraints).__name__}")
    unknown = sorted(set(constraints) - set(CONSTRAINT_KINDS))
    if unknown:
        raise ValueError(f"unknown constraint(s) {unknown}; known: {list(CONSTRAINT_KINDS)}")
    bounds = {}
    for kind, bound in constraints.items():
        if bound is None:
            continue
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0:
            raise ValueError(f"constraint {kind!r} must be a positive number (an upper bound), got {bound!r}")
        bounds[kind] = float(bound)
    if latency_table is not None and "latency" not in bounds:
        raise ValueError("latency_table is given but no 'latency' constraint uses it")
    return bounds


def _check_settings(population: Any, generations: Any, mutation: Any, sample_size: Any, top: Any) -> None:
    for name, value, least in (
        ("population", population, 2),
        ("generations", generations, 0),
        ("sample_size", sample_size, 1),
        ("top", top, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    if isinstance(mutation, bool) or not isinstance(mutation, (int, float)) or not 0.0 <= mutation <= 1.0:
        raise ValueError(f"mutation must be a probability in [0, 1], got {mutation!r}")
