"""Zero-cost proxies measured: how well each ranks the oracle benchmark at initialisation, how fast
it scores a whole NB201 network, and whether it helps a search at equal compute.

    python benchmarks/zero_cost.py                  # everything (about 10 min on one thread)
    python benchmarks/zero_cost.py --skip-study     # correlations and speed only (about 2 min)
    python benchmarks/zero_cost.py --speed-only     # the NB201 timing again, into the saved JSON

1. Correlation. Every proxy of `search.zero_cost` (and the ensemble, the mean rank of synflow,
   jacov and snip) ranks the 125 architectures of the oracle space (`benchmarks/oracle_space.py`)
   with `zero_cost.rank`, at initialisation seeds 0, 1, 2, the data-dependent ones on a batch of 64
   of the oracle training split (drawn with the seed). Against the oracle table's mean test
   accuracy (each architecture trained from scratch, 3 seeds): Kendall tau (tau-b) and Spearman
   rho over all 125 and over the connected ones (above chance; a dead network is ranked last by
   nearly any scorer, which flatters tau), the oracle rank (1 = best of 125) and rank percentile of
   the proxy's top-1 pick, and milliseconds per architecture. The oracle table is the project's
   only exhaustive benchmark so far (no second, 2-D one exists yet).
2. Speed. Each proxy on 8 sampled architectures of the whole NB201 network (`nb201_space`, 3x32x32,
   C=16, 5 cells per stage), batch 64 (synflow: its batch of 1), one thread; with the time of one
   plain forward pass of the same architecture at batch 64 (`BasicExecutor`, no grad) as the floor.
3. Use, at equal compute (same epochs, same evaluations; the proxies' own seconds reported):
   `fit_supernet(strategy, epochs=--warm-epochs)` from a cold start and from
   `initial_state=zero_cost.warm_start(space, proxy, ...)`; and `evolve` on an SPOS supernet
   (--spos-epochs) with and without `prefilter=(proxy, --prefilter-k)`, the same number of
   candidates evaluated. Reported: the oracle rank percentile of the pick (0 = best), per seed.
Results: benchmarks/results/zero_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402

from oracle_space import all_architectures, architecture_key, oracle_data, oracle_space  # noqa: E402
from oracle_table import load_table, rank_percentile  # noqa: E402
from search import evolve, fit_supernet, zero_cost  # noqa: E402
from search.spaces.nb201 import nb201_space  # noqa: E402
from supernet import Tensor  # noqa: E402

RESULTS = HERE / "results" / "zero_cost.json"
CHANCE = 0.15  # as benchmarks/ranking.py: MNIST-1D's 10 classes, a dead network scores about 0.1
PROXIES = [*zero_cost.PROXIES, "ensemble"]


def correlations(scores: Sequence[float], truth: Sequence[float]) -> dict[str, float]:
    return {
        "kendall_tau": round(float(kendalltau(scores, truth).statistic), 4),
        "spearman_rho": round(float(spearmanr(scores, truth).statistic), 4),
    }


def oracle_ranks(table: dict[str, Any]) -> dict[str, int]:
    """Key -> 1-based rank by mean test accuracy (1 = best)."""
    ordered = sorted(table["architectures"], key=lambda e: -e["mean"])
    return {e["key"]: i for i, e in enumerate(ordered, start=1)}


def correlate_proxy(proxy: str, seed: int, table: dict[str, Any], train: tuple) -> dict[str, Any]:
    entries = zero_cost.rank(oracle_space(), proxy, None, train, batch_size=64, seed=seed, progress=False)
    truth = {e["key"]: e["mean"] for e in table["architectures"]}
    keys = [architecture_key(e["architecture"]) for e in entries]
    scores = [e["score"] for e in entries]
    means = [truth[k] for k in keys]
    connected = [i for i, t in enumerate(means) if t > CHANCE]
    top = entries[0]["architecture"]
    return {
        "proxy": proxy,
        "seed": seed,
        "all": correlations(scores, means),
        "connected": correlations([scores[i] for i in connected], [means[i] for i in connected]),
        "top1": "|".join(entries[0]["options"][sid] for sid in sorted(top)),
        "top1_oracle_rank": oracle_ranks(table)[keys[0]],
        "top1_rank_percentile": round(rank_percentile(top, table), 2),
        "ms_per_architecture": round(statistics.mean(e["ms"] for e in entries), 2),
        "scores": dict(zip(keys, scores)),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out = {}
    for proxy in dict.fromkeys(r["proxy"] for r in runs):
        mine = [r for r in runs if r["proxy"] == proxy]
        mean = lambda f: round(statistics.mean(f(r) for r in mine), 4)  # noqa: E731
        out[proxy] = {
            "seeds": len(mine),
            "kendall_tau": mean(lambda r: r["all"]["kendall_tau"]),
            "kendall_tau_std": round(statistics.stdev(r["all"]["kendall_tau"] for r in mine), 4) if mine[1:] else 0,
            "spearman_rho": mean(lambda r: r["all"]["spearman_rho"]),
            "kendall_tau_connected": mean(lambda r: r["connected"]["kendall_tau"]),
            "spearman_rho_connected": mean(lambda r: r["connected"]["spearman_rho"]),
            "top1_oracle_rank_mean": mean(lambda r: r["top1_oracle_rank"]),
            "top1_rank_percentile_mean": mean(lambda r: r["top1_rank_percentile"]),
            "ms_per_architecture": mean(lambda r: r["ms_per_architecture"]),
        }
    return out


def nb201_speed(samples: int) -> dict[str, Any]:
    """Seconds per architecture of each proxy on the whole NB201 network, batch 64, one thread."""
    space = nb201_space(Tensor(name="input", shape=(1, 3, 32, 32), axis=("N", "C", "H", "W")))
    g = torch.Generator().manual_seed(0)
    data = (torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g))
    scorer = zero_cost.Scorer(space, data, batch_size=64, seed=0)
    architectures = scorer.architectures(samples)
    out: dict[str, Any] = {"architectures": samples, "batch_size": 64, "input": [3, 32, 32], "proxies": {}}
    for proxy in zero_cost.PROXIES:
        scorer.score(proxy, architectures[0])  # warm-up
        times = []
        for architecture in architectures:
            start = time.perf_counter()
            scorer.score(proxy, architecture)
            times.append(time.perf_counter() - start)
        out["proxies"][proxy] = {
            "mean_s": round(statistics.mean(times), 4),
            "max_s": round(max(times), 4),
            "data_free": proxy in zero_cost.DATA_FREE,
        }
    floor = []
    executor = scorer.probe.executor
    choices = zero_cost.architectures.space_choices(space)
    with torch.no_grad():
        for architecture in architectures:
            with zero_cost.architectures.applied(choices, architecture):
                start = time.perf_counter()
                executor(data[0])
                floor.append(time.perf_counter() - start)
    out["forward_batch64_mean_s"] = round(statistics.mean(floor), 4)
    out["mflops_per_sample_mean"] = round(statistics.mean(scorer.score("flops", a) for a in architectures) / 1e6, 1)
    return out


def warm_start_study(
    strategies: Sequence[str],
    proxies: Sequence[str],
    seeds: Sequence[int],
    epochs: int,
    table: dict[str, Any],
    data: tuple,
) -> list[dict[str, Any]]:
    train, val, _ = data
    rows = []
    for strategy in strategies:
        for seed in seeds:
            for proxy in [None, *proxies]:
                start = time.perf_counter()
                state = (
                    None
                    if proxy is None
                    else zero_cost.warm_start(oracle_space(), proxy, train, strategy=strategy, seed=seed)
                )
                proxy_seconds = time.perf_counter() - start
                start = time.perf_counter()
                result = fit_supernet(
                    oracle_space(),
                    train,
                    val,
                    strategy=strategy,
                    epochs=epochs,
                    seed=seed,
                    initial_state=state,
                    progress=False,
                    on_undecided="ignore",
                )
                rows.append(
                    {
                        "strategy": strategy,
                        "seed": seed,
                        "warm_start": proxy,
                        "epochs": epochs,
                        "pick": result.chosen_options,
                        "rank_percentile": round(rank_percentile(result.architecture, table), 2),
                        "search_seconds": round(time.perf_counter() - start, 1),
                        "proxy_seconds": round(proxy_seconds, 2),
                    }
                )
                print(
                    f"  warm start {strategy} seed {seed} {proxy or 'cold':<9} -> {rows[-1]['rank_percentile']:.2f}%",
                    flush=True,
                )
    return rows


def prefilter_study(
    proxies: Sequence[str],
    k: int,
    seeds: Sequence[int],
    spos_epochs: int,
    population: int,
    generations: int,
    table: dict[str, Any],
    data: tuple,
) -> list[dict[str, Any]]:
    train, val, _ = data
    rows = []
    for seed in seeds:
        trained = fit_supernet(
            oracle_space(), train, val, strategy="spos", epochs=spos_epochs, seed=seed, progress=False
        )
        for proxy in [None, *proxies]:
            start = time.perf_counter()
            picks = evolve(
                trained,
                val,
                population=population,
                generations=generations,
                sample_size=4,
                top=1,
                seed=seed,
                train=train,
                batches=5,
                progress=False,
                prefilter=(proxy, k) if proxy else None,
            )
            info = picks[0].config["evolution"]
            rows.append(
                {
                    "seed": seed,
                    "prefilter": [proxy, k] if proxy else None,
                    "evaluated": info["evaluated"],
                    "pick": picks[0].chosen_options,
                    "rank_percentile": round(rank_percentile(picks[0].architecture, table), 2),
                    "seconds": round(time.perf_counter() - start, 1),
                }
            )
            print(
                f"  evolve seed {seed} prefilter {proxy or 'none':<8} -> {rows[-1]['rank_percentile']:6.2f}% "
                f"({info['evaluated']} evaluated, {rows[-1]['seconds']} s)",
                flush=True,
            )
    return rows


def study_summary(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, float]]:
    out = {}
    for label in dict.fromkeys(str(r.get("strategy", "evolve")) + " / " + str(r[key]) for r in rows):
        mine = [r for r in rows if str(r.get("strategy", "evolve")) + " / " + str(r[key]) == label]
        out[label] = {
            "seeds": len(mine),
            "rank_percentile_mean": round(statistics.mean(r["rank_percentile"] for r in mine), 2),
            "rank_percentiles": [r["rank_percentile"] for r in mine],
        }
    return out


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="initialisation seeds of the proxies and the study's searches")
    parser.add_argument("--nb201-samples", type=int, default=8)
    parser.add_argument("--skip-study", action="store_true", help="correlations and speed only")
    parser.add_argument(
        "--speed-only", action="store_true", help="measure the NB201 speed again and update it in --out (the rest kept)"
    )
    parser.add_argument("--warm-strategies", default="darts,drnas")
    parser.add_argument("--warm-proxies", default="synflow,ensemble,params", help="params: the control (size alone)")
    parser.add_argument("--warm-epochs", type=int, default=3)
    parser.add_argument("--prefilter-proxies", default="synflow,nwot")
    parser.add_argument("--prefilter-k", type=int, default=5)
    parser.add_argument("--spos-epochs", type=int, default=10)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.speed_only:
        report = json.loads(args.out.read_text())
        report["nb201_speed"] = speed = nb201_speed(args.nb201_samples)
        print(json.dumps(speed, indent=1))
        args.out.write_text(json.dumps(report, indent=1))
        return report
    table = load_table()
    if len(table["architectures"]) != len(all_architectures()):
        raise SystemExit(
            f"the oracle table holds {len(table['architectures'])} of {len(all_architectures())} "
            "architectures; "
            "complete it first (python benchmarks/oracle.py table)"
        )
    setup = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.platform(),
        "processor": platform.processor(),
        "seeds": seeds,
        "batch_size": 64,
        "ensemble": list(zero_cost.ENSEMBLE),
        "truth": "oracle table mean test accuracy (3 training seeds)",
        "chance_threshold": CHANCE,
        "table_setup": table["setup"],
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    print(json.dumps({k: v for k, v in setup.items() if k != "table_setup"}), flush=True)
    data = oracle_data(0)
    runs = [correlate_proxy(proxy, seed, table, data[0]) for proxy in PROXIES for seed in seeds]
    summary = summarise(runs)
    print(f"{'proxy':<10} {'tau':>6} {'rho':>6} {'tau conn':>8} {'top-1 rank':>10} {'ms/arch':>8}")
    for proxy, s in summary.items():
        print(
            f"{proxy:<10} {s['kendall_tau']:6.3f} {s['spearman_rho']:6.3f} {s['kendall_tau_connected']:8.3f} "
            f"{s['top1_oracle_rank_mean']:10.1f} {s['ms_per_architecture']:8.1f}",
            flush=True,
        )
    speed = nb201_speed(args.nb201_samples)
    for proxy, s in speed["proxies"].items():
        print(f"NB201 {proxy:<10} {s['mean_s']:.3f} s (max {s['max_s']:.3f})", flush=True)
    print(f"NB201 one forward pass at batch 64: {speed['forward_batch64_mean_s']:.3f} s", flush=True)
    report: dict[str, Any] = {"setup": setup, "summary": summary, "nb201_speed": speed, "runs": runs}
    if not args.skip_study:
        start = time.perf_counter()
        warm = warm_start_study(
            args.warm_strategies.split(","), args.warm_proxies.split(","), seeds, args.warm_epochs, table, data
        )
        pre = prefilter_study(
            args.prefilter_proxies.split(","),
            args.prefilter_k,
            seeds,
            args.spos_epochs,
            args.population,
            args.generations,
            table,
            data,
        )
        report["study"] = {
            "warm_start": {"summary": study_summary(warm, "warm_start"), "runs": warm},
            "prefilter": {"summary": study_summary(pre, "prefilter"), "runs": pre},
            "seconds": round(time.perf_counter() - start, 1),
        }
        for part in ("warm_start", "prefilter"):
            for label, s in report["study"][part]["summary"].items():
                print(f"{part} {label:<32} rank percentile {s['rank_percentile_mean']:6.2f} {s['rank_percentiles']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
