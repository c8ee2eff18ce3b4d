"""Why GDAS prefers parameter-free pooling on short budgets (issue 21), and FairDARTS's `none`:
ablations of our GDAS towards the reference (xautodl `exps/NAS-Bench-201-algos/GDAS.py`,
`TinyNetworkGDAS`), configured from outside the strategy modules, on three benchmarks.

    python benchmarks/gdas_ablation.py --variants before,relative_grad --benches oracle,maxpool --seeds 5

Benches: `oracle` (the 1-D oracle: rank percentile of the pick in oracle_table.json), `oracle2d` (the
2-D one, oracle2d_table.json; a benchmark the variants were not tuned on), `maxpool` (known optimum:
one choice, the target is a 3-wide max pooling of the input, so `maxpool3` is the only exact option;
conv1/conv3/conv5 (one channel), avgpool3, maxpool3, skip, none, then a 1x1 conv; MSE; 1024 samples, `val=None`).
Every search: `fit_supernet(..., strategy=<variant>, epochs=--epochs, seed=s)`, defaults otherwise.
Each row also counts, per switch, how often each option was the sampled path (weight and
architecture steps) before the first architecture step and in all.

Variants (`VARIANTS`), each a change of `before` (GDAS as it was before issue 21: only the sampled
option's gate gets a gradient, `GDAS(relative_gradient=False)`): `relative_grad` (today's GDAS(): in
architecture steps every option's gate gets its own output's gradient, the unsampled ones computed in the
backward pass only); `ref_lr` (the reference arch lr 3e-4 instead of
`step_scaled_lr`); `zero_sampled` (Zero options sampled like the others); `ref_grad` (unsampled
options get the reference's gradient: `weights[k]` added to the edge's output, 0 in the forward);
`reference` (all three: our closest to xautodl); `pair_grad` (the sampled option and one other
compared, `GDAS(compared=2)`, the default since); `pair_every2` (the same, the alphas updated on every 2nd step
only, the others measuring the val loss on one path without gradients: the step's cost against what the alphas learn); `baselineB` (no extra computation: an unsampled gate gets
the running mean (EMA factor B/100) of its option's own gate gradient from the steps that sampled it, a
stale baseline from other paths; measured on the known optimum: 1-4 of 5, so comparing needs the other
options' outputs on the same step); `warmupK` (K epochs of uniform single-path weight
training before the alphas learn; alphas start at 0, so the Gumbel samples are uniform over the
sampled options); `warmupK_ref_lr`; FairDARTS: `fairdarts` (defaults: an undecided gate keeps its edge), `fairdarts_paper`
(the paper's rule: every edge whose gate is below 0.85 dropped; the default before issue 21), `fairdarts_warmupK`; beta-DARTS
(item 4 of issue 21, its 2-D row): `beta_darts` (defaults), `beta_darts_run_ramp` (lambda ramped to 50 over the
run), `beta_darts_half_ramp` (to 25), `beta_darts_scaled_lr` (arch lr `step_scaled_lr`, as GDAS's and DrNAS's).
Rows merge into benchmarks/results/gdas_ablation.json (keyed by bench, variant, seed).
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from oracle import ORACLE  # noqa: E402
from oracle2d import ORACLE2D  # noqa: E402
from oracle_benchmark import OracleBenchmark  # noqa: E402
from oracle_strategies import _commit, ranked, search_pick  # noqa: E402
from oracle_table import RESULTS, load_table, save_table  # noqa: E402
from ops import AvgPooling, Identity, MaxPooling, Zero, conv1d  # noqa: E402
from search import fit_supernet  # noqa: E402
from search.bilevel import frozen_buffers  # noqa: E402
from search.strategies import GDAS, BetaDARTS, FairDARTS, Strategy  # noqa: E402
from search.strategies.gdas import GumbelMixture  # noqa: E402
from search.strategies.schedules import step_scaled_lr  # noqa: E402
from supernet.mixture import Phase  # noqa: E402
from supernet import ChoiceOp, Mixture, Node, SupernetExecutor, Tensor, search_space  # noqa: E402

ABLATION_PATH = RESULTS / "gdas_ablation.json"
MAXPOOL_OPTIONS = ["conv1", "conv3", "conv5", "avgpool3", "maxpool3", "skip", "none"]
REFERENCE_ARCH_LR = 3e-4


class CountingGumbelMixture(GumbelMixture):
    """GumbelMixture that counts the sampled option per switch, and optionally gives the unsampled
    options the reference's gradient (xautodl `forward_gdas`: `weights[k]` added to the edge's sum)."""

    def __init__(
        self,
        temperature: float,
        exclude_data_independent: bool,
        reference_gradient: bool,
        relative_gradient: bool,
        compared: Optional[int] = None,
        running_baseline: Optional[float] = None,
    ) -> None:
        super().__init__(
            temperature,
            hard=True,
            exclude_data_independent=exclude_data_independent,
            relative_gradient=relative_gradient,
            compared=compared,
        )
        self.reference_gradient = reference_gradient
        # EMA factor: an unsampled gate gets the running mean of its option's own gate gradient from the
        # steps that sampled it (no extra computation; the estimates are stale and from other paths)
        self.running_baseline = running_baseline
        self.estimates: dict[Any, torch.Tensor] = {}
        self.counts: dict[int, Counter] = {}
        self.names: dict[int, str] = {}
        self.counting_from_arch = False
        self.before_arch: dict[int, Counter] = {}

    def bind(self, supernet: SupernetExecutor) -> None:
        super().bind(supernet)
        self.names = {id(alpha): sid for sid, alpha in supernet.alphas.items()}

    def weights(self, alpha: torch.Tensor, training: bool, sid: Optional[str] = None, phase: Optional[Phase] = None):
        weights, indices = super().weights(alpha, training, sid, phase)
        if training and indices is not None:
            self.counts.setdefault(id(alpha), Counter())[int(indices[0])] += 1
            if self.running_baseline is not None and phase is Phase.ARCHITECTURE_STEP and weights.requires_grad:
                weights.register_hook(functools.partial(self._with_estimates, sid, int(indices[0])))
        return weights, indices

    def _with_estimates(self, sid: Any, sampled: int, grad: torch.Tensor) -> torch.Tensor:
        """The gate gradient with each unsampled option's running estimate in place of its zero."""
        known = self.estimates.get(sid)
        if known is None:
            known = self.estimates[sid] = torch.full_like(grad, float("nan"))
        g = grad[sampled].detach()
        beta = self.running_baseline
        known[sampled] = g if torch.isnan(known[sampled]) else beta * known[sampled] + (1 - beta) * g
        out = torch.where(torch.isnan(known), torch.zeros_like(grad), known).clone()
        mask = self.masks.get(sid)
        if mask is not None:
            out[mask.to(grad.device) != 0] = 0.0
        out[sampled] = grad[sampled]
        return out

    def combine(self, weights: torch.Tensor, outputs: dict[int, torch.Tensor]) -> torch.Tensor:
        total = super().combine(weights, outputs)
        if self.reference_gradient and len(outputs) < len(weights):
            # the options that did not run add their (zero-valued) gate: d loss / d gate_k = sum of d loss / d output
            total = total + sum(weights[k] for k in range(len(weights)) if k not in outputs)
        return total

    def snapshot(self) -> dict[str, dict[int, int]]:
        """Switch id -> option position -> times sampled (both steps; a tied switch counts each ChoiceOp)."""
        return {self.names.get(key, str(key)): dict(sorted(c.items())) for key, c in self.counts.items()}


class AblationGDAS(GDAS):
    """GDAS with the reference's choices switchable: arch lr, Zero sampled, unsampled gradient."""

    def __init__(
        self,
        warmup_epochs: int = 0,
        reference_lr: bool = False,
        zero_sampled: bool = False,
        reference_gradient: bool = False,
        relative_gradient: bool = False,
        compared: Optional[int] = None,
        running_baseline: Optional[float] = None,
        arch_every: int = 1,
    ) -> None:
        super().__init__(warmup_epochs=warmup_epochs, relative_gradient=relative_gradient, compared=compared)
        self.running_baseline = running_baseline
        # an architecture update on every `arch_every`-th step only (the others measure the val loss on
        # one sampled path without gradients, as warm-up steps do); lr scaled to the updates made
        self.arch_every, self.arch_calls = arch_every, 0
        self.reference_lr, self.zero_sampled, self.reference_gradient = reference_lr, zero_sampled, reference_gradient
        self.counting: Optional[CountingGumbelMixture] = None
        self.counts_at_arch_start: Optional[dict[str, dict[int, int]]] = None

    def mixture(self) -> Mixture:
        self.counting = CountingGumbelMixture(
            self.temperature,
            not self.zero_sampled,
            self.reference_gradient,
            self.relative_gradient,
            self.compared,
            self.running_baseline,
        )
        return self.counting

    def default_arch_lr(self, steps: int) -> float:
        return REFERENCE_ARCH_LR if self.reference_lr else super().default_arch_lr(steps)

    def architecture_steps(self, epochs: int) -> int:
        return super().architecture_steps(epochs) // self.arch_every

    def architecture_step(self, bilevel, train_batch, val_batch):
        self.arch_calls += 1
        if (self.arch_calls - 1) % self.arch_every == 0:
            return super().architecture_step(bilevel, train_batch, val_batch)
        x, y = val_batch
        with torch.no_grad(), frozen_buffers(bilevel.supernet):
            with bilevel.precision.autocast():
                logits = bilevel.supernet(x).float()
        return bilevel.loss(logits, y), logits

    def on_epoch_start(self, epoch: int, epochs: int, supernet: SupernetExecutor) -> None:
        super().on_epoch_start(epoch, epochs, supernet)
        if epoch == self.warmup_epochs and self.counting is not None:
            self.counts_at_arch_start = self.counting.snapshot()

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "reference_lr": self.reference_lr,
            "zero_sampled": self.zero_sampled,
            "reference_gradient": self.reference_gradient,
            "running_baseline": self.running_baseline,
            "arch_every": self.arch_every,
        }


class ScaledLrBetaDARTS(BetaDARTS):
    """beta-DARTS whose architecture lr follows the step count (`step_scaled_lr`), as GDAS's and DrNAS's do:
    at the reference 3e-4 a 15-epoch search ends with every top probability at 0.20-0.21 of 5 options."""

    def default_arch_lr(self, steps: int) -> float:
        return step_scaled_lr(steps)


def _gdas(**options: Any) -> Callable[[], Strategy]:
    return functools.partial(AblationGDAS, **options)


VARIANTS: dict[str, Callable[[], Strategy]] = {
    "before": _gdas(),
    "ref_lr": _gdas(reference_lr=True),
    "zero_sampled": _gdas(zero_sampled=True),
    "ref_grad": _gdas(reference_gradient=True),
    "relative_grad": _gdas(relative_gradient=True),
    "pair_grad": _gdas(relative_gradient=True, compared=2),
    "pair_every2": _gdas(relative_gradient=True, compared=2, arch_every=2),
    **{f"baseline{b}": _gdas(running_baseline=b / 100) for b in (50, 90, 99)},
    "reference": _gdas(reference_lr=True, zero_sampled=True, reference_gradient=True),
    **{f"warmup{k}": _gdas(warmup_epochs=k) for k in (3, 5, 7)},
    **{f"warmup{k}_ref_lr": _gdas(warmup_epochs=k, reference_lr=True) for k in (3, 5)},
    "fairdarts": FairDARTS,
    "fairdarts_paper": functools.partial(FairDARTS, undecided="drop"),
    **{f"fairdarts_warmup{k}": functools.partial(FairDARTS, warmup_epochs=k) for k in (3, 5)},
    "beta_darts": BetaDARTS,
    # the reference's schedule over any run length: its 100-epoch NB201 search ramps 50 * epoch / 100 over the run
    "beta_darts_run_ramp": functools.partial(BetaDARTS, ramp_epochs=None),
    "beta_darts_half_ramp": functools.partial(BetaDARTS, lambda_max=25.0, ramp_epochs=None),
    "beta_darts_scaled_lr": ScaledLrBetaDARTS,
}


def maxpool_space() -> Node:
    """One choice on (N, 1, 32) signals: conv1/conv3/conv5 (1 channel), avgpool3, maxpool3, skip, none; then a
    1x1 convolution."""
    x = Tensor("x", (1, 1, 32), ("N", "C", "L"))

    @search_space
    def maxpool_target(x: Node) -> Node:
        convs = [functools.partial(conv1d, out_channels=1, kernel_size=k) for k in (1, 3, 5)]
        chosen = ChoiceOp(*convs, AvgPooling(3, 1, 1), MaxPooling(3, 1, 1), Identity(), Zero(), names=MAXPOOL_OPTIONS)(
            x
        )
        # a learnable 1x1 read-out (identity at its optimum): a weight step whose sampled option has no
        # parameters would otherwise have nothing to train (fit_supernet raises on such a step)
        return conv1d(chosen, out_channels=1, kernel_size=1)

    return maxpool_target(x)


def maxpool_data(seed: int, n: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian signals and their 3-wide max pooling (stride 1, padded): only `maxpool3` fits exactly."""
    x = torch.randn(n, 1, 32, generator=torch.Generator().manual_seed(2000 + seed))
    return x, torch.nn.functional.max_pool1d(x, 3, 1, 1)


def _counts(strategy: Strategy) -> dict[str, Any]:
    if not isinstance(strategy, AblationGDAS) or strategy.counting is None:
        return {}
    return {"sampled": strategy.counting.snapshot(), "sampled_before_arch": strategy.counts_at_arch_start}


def run_oracle(
    variant: str, seed: int, epochs: int, bench: OracleBenchmark, table: dict, data: tuple
) -> dict[str, Any]:
    """One search of `bench`'s space by `variant`, ranked in its table."""
    strategy = VARIANTS[variant]()
    row = search_pick(strategy, seed, epochs, data, space=bench.space)
    out = ranked({"bench": bench.name, "variant": variant, "seed": seed, **row}, table)
    return {**out, **_counts(strategy)}


def run_maxpool(variant: str, seed: int, epochs: int) -> dict[str, Any]:
    """One search of the known-optimum space; the pick and the final probabilities."""
    strategy = VARIANTS[variant]()
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_supernet(
            maxpool_space(),
            maxpool_data(seed),
            epochs=epochs,
            loss=torch.nn.functional.mse_loss,
            strategy=strategy,
            seed=seed,
            progress=False,
        )
    (chosen,) = result.chosen_options.values()
    (probabilities,) = result.probabilities.values()
    return {
        "bench": f"maxpool{epochs}",
        "variant": variant,
        "seed": seed,
        "chosen": chosen,
        "right": chosen == "maxpool3",
        "probabilities": [round(p, 4) for p in probabilities],
        "search_time_s": round(time.perf_counter() - start, 2),
        "strategy_config": result.config["strategy"],
        "warnings": sorted({str(w.message)[:200] for w in caught}),
        **_counts(strategy),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per bench and variant: ranks per seed, mean / worst, top-10% count (oracle benches); maxpool wins."""
    out: dict[str, dict[str, Any]] = {}
    for bench, variant in dict.fromkeys((r["bench"], r["variant"]) for r in rows):
        mine = sorted((r for r in rows if r["bench"] == bench and r["variant"] == variant), key=lambda r: r["seed"])
        entry: dict[str, Any] = {
            "seeds": [r["seed"] for r in mine],
            "search_time_s": round(statistics.mean(r["search_time_s"] for r in mine), 1),
        }
        if bench.startswith("maxpool"):
            entry.update({"chosen": [r["chosen"] for r in mine], "right": sum(r["right"] for r in mine)})
        else:
            ranks = [r["rank_percentile"] for r in mine]
            entry.update(
                {
                    "ranks": ranks,
                    "mean_rank": round(statistics.mean(ranks), 2),
                    "worst_rank": max(ranks),
                    "top10": sum(rank <= 10 for rank in ranks),
                    "labels": [r["label"] for r in mine],
                }
            )
        out.setdefault(bench, {})[variant] = entry
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the asked variants x benches x seeds, merge into the JSON, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="before,ref_lr,zero_sampled,ref_grad,reference,warmup5")
    parser.add_argument("--benches", default="maxpool,oracle")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed-list", default=None, help="comma-separated seeds (overrides --seeds)")
    parser.add_argument("--epochs", type=int, default=15, help="oracle benches' search epochs")
    parser.add_argument("--maxpool-epochs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ABLATION_PATH)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    variants = [v for v in args.variants.split(",") if v]
    benches = [b for b in args.benches.split(",") if b]
    unknown = [v for v in variants if v not in VARIANTS] + [
        b for b in benches if b not in ("oracle", "oracle2d", "maxpool")
    ]
    if unknown:
        raise SystemExit(
            f"unknown variants/benches {unknown}; variants: {sorted(VARIANTS)}; benches: oracle, oracle2d, maxpool"
        )
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
    named = [f"maxpool{args.maxpool_epochs}" if b == "maxpool" else b for b in benches]
    replaced = {(b, v, s) for b in named for v in variants for s in seeds}
    rows = [r for r in previous["runs"] if (r["bench"], r["variant"], r["seed"]) not in replaced]
    oracles = {b.name: b for b in (ORACLE, ORACLE2D)}
    setup = {
        "search": "fit_supernet(space, ..., strategy=<variant>, epochs, seed), defaults otherwise",
        "epochs": args.epochs,
        "maxpool_epochs": args.maxpool_epochs,
        "threads": 1,
        "commit": _commit(),
    }
    for bench in benches:
        table = load_table(oracles[bench].table_path) if bench in oracles else None
        data = oracles[bench].data() if bench in oracles else None
        for variant in variants:
            for seed in seeds:
                if bench == "maxpool":
                    row = run_maxpool(variant, seed, args.maxpool_epochs)
                    print(
                        f"{bench} {variant:16s} seed {seed}: {row['chosen']} {row['probabilities']} {row['search_time_s']}s",
                        flush=True,
                    )
                else:
                    row = run_oracle(variant, seed, args.epochs, oracles[bench], table, data)
                    print(
                        f"{bench} {variant:16s} seed {seed}: rank {row['rank_percentile']:5.1f}% {row['label']} "
                        f"{row['search_time_s']}s",
                        flush=True,
                    )
                rows.append(row)
                # other sections of the file (the demo's picks, written by hand from its runs) are kept
                kept = {k: v for k, v in previous.items() if k not in ("setup", "summary", "runs")}
                save_table({**kept, "setup": setup, "summary": summary(rows), "runs": rows}, args.out)
    print(json.dumps(summary(rows), indent=1))


if __name__ == "__main__":
    main()
