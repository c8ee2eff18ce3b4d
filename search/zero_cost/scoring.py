"""`score` one architecture of a space by a zero-cost proxy, or `rank` many (one executor for all).

Proxies (higher = better): data-free `params`, `flops`, `synflow`, `zen`; on one batch of data
`jacov`, `nwot` (inputs only) and `snip`, `grad_norm`, `fisher` (inputs and labels, cross-entropy
by default); `ensemble`, the mean rank of `ENSEMBLE` members (in `rank` only: a rank needs
several architectures). Definitions: `search.zero_cost.proxies`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch
from tqdm import tqdm

from supernet import Node
from supernet.seeds import as_seed

from ..loaders import Data, as_loader
from . import proxies
from .architectures import Architecture, applied, count, enumerate_all, resolve, sample, space_choices
from .probe import Probe

ProxyFunction = Callable[[Probe, proxies.Sample], float]


@dataclasses.dataclass(frozen=True)
class Proxy:
    """A proxy's function and what it needs: inputs (`data`), labels too (`labels`)."""

    function: ProxyFunction
    data: bool = False
    labels: bool = False


PROXIES: dict[str, Proxy] = {
    "params": Proxy(proxies.params),
    "flops": Proxy(proxies.flops),
    "synflow": Proxy(proxies.synflow),
    "zen": Proxy(proxies.zen),
    "jacov": Proxy(proxies.jacov, data=True),
    "nwot": Proxy(proxies.nwot, data=True),
    "snip": Proxy(proxies.snip, data=True, labels=True),
    "grad_norm": Proxy(proxies.grad_norm, data=True, labels=True),
    "fisher": Proxy(proxies.fisher, data=True, labels=True),
}
DATA_FREE = tuple(name for name, p in PROXIES.items() if not p.data)
#: the ensemble's default members: the "vote" of Abdelfattah et al. 2021 (synflow, jacov, snip)
ENSEMBLE = ("synflow", "jacov", "snip")
ENUMERABLE = 100_000  # `rank(architectures=None)` refuses larger spaces


def check_proxy(proxy: Any, data: Any, members: Sequence[str] = ENSEMBLE) -> list[str]:
    """The proxies `proxy` runs (the members for "ensemble"); raise on an unknown one, or on a
    data-dependent one without data."""
    known = [*PROXIES, "ensemble"]
    if not isinstance(proxy, str) or proxy not in known:
        raise ValueError(f"unknown zero-cost proxy {proxy!r}; known: {known}")
    names = list(members) if proxy == "ensemble" else [proxy]
    for name in names:
        if name not in PROXIES:
            raise ValueError(f"unknown ensemble member {name!r}; known proxies: {list(PROXIES)}")
        if PROXIES[name].data and data is None:
            what = "inputs and labels" if PROXIES[name].labels else "inputs"
            raise ValueError(
                f"proxy {name!r} needs data (a batch of {what}: pass data=(x, y)); "
                f"the data-free proxies are {list(DATA_FREE)}"
            )
    return names


def first_batch(data: Data, batch_size: int, seed: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """`batch_size` samples of `data` drawn by a generator of `seed`: (x, y), or (x, None)."""
    if isinstance(data, torch.Tensor):
        data = (data,)
    if isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        order = torch.randperm(len(data[0]), generator=torch.Generator().manual_seed(seed))[:batch_size]
        return data[0][order], (data[1][order] if len(data) > 1 else None)
    batch = next(iter(as_loader(data, batch_size, shuffle=True, seed=seed)), None)
    if batch is None:
        raise ValueError("data yields no batch for the zero-cost proxy")
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


class Scorer:
    """Scores architectures of `space` by proxies, through one executor built once."""

    def __init__(
        self,
        space: Node,
        data: Optional[Data] = None,
        *,
        batch_size: int = 64,
        seed: int = 0,
        loss: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2:
            raise ValueError(f"batch_size must be an int >= 2 (correlations across a batch), got {batch_size!r}")
        self.space, self.seed, self.batch_size = space, as_seed(seed), batch_size
        self.choices = space_choices(space)
        self.probe = Probe(space, self.seed)
        self.data, self.x, self.y = data, None, None
        if data is not None:
            self.x, self.y = first_batch(data, batch_size, self.seed)
        self.loss = loss if loss is not None else torch.nn.functional.cross_entropy

    def resolve(self, architecture: Optional[Mapping[str, Any]]) -> Architecture:
        return resolve(self.choices, architecture)

    def score(self, proxy: str, architecture: Optional[Mapping[str, Any]] = None) -> float:
        """The `proxy` score of `architecture` (None: the space's current choices)."""
        names = check_proxy(proxy, self.data, ())
        if proxy == "ensemble" or not names:
            raise ValueError("the ensemble is a mean rank over architectures: use rank(space, 'ensemble', ...)")
        spec = PROXIES[proxy]
        if spec.labels and self.y is None:
            raise ValueError(f"proxy {proxy!r} needs labels: pass data=(x, y), not inputs alone")
        chosen = self.resolve(architecture)
        generator = torch.Generator().manual_seed(self.seed)  # the same draws for every architecture
        sample_ = proxies.Sample(self.x, self.y, self.batch_size, generator, self.loss)
        with applied(self.choices, chosen):
            return float(spec.function(self.probe, sample_))

    def architectures(self, architectures: Union[None, int, Sequence[Mapping[str, Any]]]) -> list[Architecture]:
        """Every architecture (None), `n` sampled with the seed (an int), or the given ones, resolved."""
        if architectures is None:
            total = count(self.choices)
            if total > ENUMERABLE:
                raise ValueError(
                    f"the space has {total} architectures (more than {ENUMERABLE}); "
                    "pass architectures=<n> to rank n of them drawn at random"
                )
            return enumerate_all(self.choices)
        if isinstance(architectures, int) and not isinstance(architectures, bool):
            if architectures < 1:
                raise ValueError(f"architectures must be >= 1 (how many to sample), got {architectures}")
            return sample(self.choices, architectures, self.seed, ENUMERABLE)
        if isinstance(architectures, (Mapping, str)) or not isinstance(architectures, Sequence):
            raise TypeError(
                "architectures must be None (all), an int (how many to sample) or a list of architectures, "
                f"got {type(architectures).__name__}"
            )
        return [self.resolve(a) for a in architectures]


def score(
    space: Node,
    proxy: str,
    architecture: Optional[Mapping[str, Any]] = None,
    data: Optional[Data] = None,
    *,
    batch_size: int = 64,
    seed: int = 0,
    loss: Optional[Callable] = None,
) -> float:
    """The zero-cost `proxy` score (higher = better) of `architecture` of `space`: switch id ->
    option index or option name, value-parameter id -> value; ids left out (or None) keep the
    space's current choices. `data` ((x, y) tensors, a Dataset or a DataLoader; `batch_size`
    samples of it drawn with `seed`) is needed by all but the data-free proxies (`DATA_FREE`).
    Weights are initialised from `seed`: same seed, same score. The space is left as it was."""
    check_proxy(proxy, data, ())
    return Scorer(space, data, batch_size=batch_size, seed=seed, loss=loss).score(proxy, architecture)


def rank(
    space: Node,
    proxy: str,
    architectures: Union[None, int, Sequence[Mapping[str, Any]]] = None,
    data: Optional[Data] = None,
    *,
    batch_size: int = 64,
    seed: int = 0,
    loss: Optional[Callable] = None,
    members: Sequence[str] = ENSEMBLE,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Score architectures of `space` by `proxy` through one executor and rank them, best first.

    `architectures`: None = every architecture of the space (refused past `ENUMERABLE`), an int n
    = n distinct ones drawn with `seed`, or a list of architectures (as `score` takes them).
    `proxy="ensemble"`: each of `members` ranks the architectures (average ranks for ties, the
    worst for NaN), and the score is the mean of those ranks (higher = better). Returns plain
    dicts: {"rank": 1 = best, "score", "architecture": id -> option index or value, "options":
    id -> option name, "ms": milliseconds to score it (all members), "scores": member -> score
    (ensemble only)}; ties keep the order architectures were listed in. A tqdm bar unless
    `progress=False`. Same seed, same ranking; the space is left as it was.
    """
    names = check_proxy(proxy, data, members)
    if proxy == "ensemble" and len(names) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {list(members)}")
    scorer = Scorer(space, data, batch_size=batch_size, seed=seed, loss=loss)
    chosen = scorer.architectures(architectures)
    table: list[dict[str, float]] = []
    times: list[float] = []
    for architecture in tqdm(chosen, desc=f"zero-cost {proxy}", disable=not progress, leave=False):
        start = time.perf_counter()
        table.append({name: scorer.score(name, architecture) for name in names})
        times.append(1000 * (time.perf_counter() - start))
    if proxy == "ensemble":
        ranks = {name: _ranks([row[name] for row in table]) for name in names}
        values = [sum(ranks[name][i] for name in names) / len(names) for i in range(len(table))]
    else:
        values = [row[proxy] for row in table]
    order = sorted(range(len(values)), key=lambda i: (_finite(values[i]), i))
    entries = []
    for position, i in enumerate(order, start=1):
        options = {cid: scorer.choices[cid].label(v) for cid, v in chosen[i].items()}
        entry = {
            "rank": position,
            "score": values[i],
            "architecture": dict(chosen[i]),
            "options": options,
            "ms": round(times[i], 3),
        }
        if proxy == "ensemble":
            entry["scores"] = dict(table[i])
        entries.append(entry)
    return entries


def _finite(value: float) -> float:
    """Sort key: higher scores first, NaN last."""
    return math.inf if math.isnan(value) else -value


def _ranks(values: list[float]) -> list[float]:
    """Average ranks, 1 = the lowest score; NaN ranks below everything."""
    from scipy.stats import rankdata  # here, not with `search`: scipy.stats takes about 2 s to import

    cleaned = [-math.inf if math.isnan(v) else v for v in values]
    return [float(r) for r in rankdata(cleaned, method="average")]
