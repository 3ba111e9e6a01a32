"""Prune and Tune on MNIST-1D: the paper's Table 1 analogue and the ablations of its Figure 3
that fit on a CPU, all from `configs/pat_mnist1d.toml`'s setting (16-epoch budget: a parent of
8 epochs, 8 children of 1 epoch, 50% sparsity, AdamW).

    python benchmarks/pat.py [--runs 5] [--work runs/bench_pat]

Table 1: over `--runs` seeds, each method's ensemble test accuracy (mean ± standard error):
the independent model, the dropout model, the bagged ensemble (8 × 2 epochs), PAT random and
PAT anti-random; the ratio of each to the independent model (the baseline, same runs).
Ablations (seed 0, children of that run's parent): sparsity 0.25 / 0.5 / 0.75 (random masks);
random vs anti-random × constant vs one-cycle tuning; ensemble size 1 to 32 (random children,
the ensemble of the first k). Prints one JSON line; a summary goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from lrensemble.ensemble import prediction_metrics
from lrensemble.methods.pat import load_pat_config, run_pat
from lrensemble.pool import Pool

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pat_mnist1d.toml"
TABLE1 = ("independent", "dropout", "bagging", "pat-random", "pat-antirandom")


def ensemble_accuracy(pool: Pool, members: list[str]) -> float:
    probs = pool.probs("test", members).mean(axis=0)
    return prediction_metrics(probs, pool.labels("test"))["accuracy"]


def by_method(pool: Pool) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for member in pool.member_ids():
        groups.setdefault(pool.member(member)["method"], []).append(member)
    return groups


def table1(runs: int, work: Path) -> dict[str, list[float]]:
    scores: dict[str, list[float]] = {m: [] for m in TABLE1}
    for seed in range(runs):
        cfg = load_pat_config(CONFIG, seed=seed)
        run_pat(cfg, work / f"table1-seed{seed}", log=lambda _: None, progress=False)
        pool = Pool.open(work / f"table1-seed{seed}" / "pool")
        for method, members in by_method(pool).items():
            scores[method].append(ensemble_accuracy(pool, members))
    return scores


def ablation(work: Path, name: str, **pat: object) -> Pool:
    """Children of seed 0's parent under other settings (the parent is loaded, not trained)."""
    cfg = load_pat_config(CONFIG, seed=0)
    parent = work / "table1-seed0" / "parent" / "model.safetensors"
    spec = cfg.pat.model_copy(update={"baselines": False, "parent_checkpoint": str(parent), **pat})
    cfg = cfg.model_copy(update={"pat": spec})
    run_pat(cfg, work / name, log=lambda _: None, progress=False)
    return Pool.open(work / name / "pool")


def mean_se(values: list[float]) -> dict[str, float]:
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "se": se, "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("runs/bench_pat"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    scores = table1(args.runs, args.work)
    table1_seconds = time.perf_counter() - t0
    summary = {m: mean_se(v) for m, v in scores.items()}
    base = summary["independent"]["mean"]

    t0 = time.perf_counter()
    sparsity = {}
    for s in (0.25, 0.5, 0.75):
        pool = ablation(args.work, f"sparsity-{s}", strategy="random", sparsity=s)
        sparsity[str(s)] = ensemble_accuracy(pool, pool.member_ids())
    masks_x_tuning = {}
    for strategy in ("random", "antirandom"):
        for tune in ("constant", "onecycle"):
            pool = ablation(args.work, f"{strategy}-{tune}", strategy=strategy, tune=tune)
            masks_x_tuning[f"{strategy}/{tune}"] = ensemble_accuracy(pool, pool.member_ids())
    pool = ablation(args.work, "size-32", strategy="random", members=32)
    ids = sorted(pool.member_ids(), key=lambda m: pool.member(m)["pat"]["child"])
    sizes = {str(k): ensemble_accuracy(pool, ids[:k]) for k in (1, 2, 4, 8, 16, 32)}
    ablation_seconds = time.perf_counter() - t0

    result = {
        "benchmark": "pat",
        "runs": args.runs,
        "table1_test_accuracy": summary,
        "ratio_vs_independent": {m: s["mean"] / base for m, s in summary.items()},
        "pat_beats_independent": max(
            summary["pat-random"]["mean"], summary["pat-antirandom"]["mean"]
        )
        > base,
        "ablation_sparsity": sparsity,
        "ablation_masks_x_tuning": masks_x_tuning,
        "ablation_ensemble_size": sizes,
        "seconds": {"table1": table1_seconds, "ablations": ablation_seconds},
    }
    print(json.dumps(result))
    for method, s in summary.items():
        print(f"{method:15s} {100 * s['mean']:.2f} ± {100 * s['se']:.2f}%", file=sys.stderr)
    print(f"sparsity {sparsity}\nmasks x tuning {masks_x_tuning}\nsize {sizes}", file=sys.stderr)


if __name__ == "__main__":
    main()
