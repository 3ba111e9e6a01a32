"""How each way of choosing the ensemble fares on test, over several pools: selection method ×
objective × candidate floor, raw and temperature-scaled, against the best single member
(chosen on validation) and the entire pool, measured in the same run on the same pools.

    python benchmarks/team_choice.py runs/demo0/pool runs/demo1/pool runs/digits/pool

Prints one JSON line: per variant, the mean over pools of test accuracy, NLL and ECE (raw and
calibrated), and the ratios of the calibrated NLL and ECE to the best single member's
(calibrated too). A human-readable table goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from lrensemble.ensemble import EnsembleConfig, choose_ensemble, prediction_metrics
from lrensemble.pool import Pool

METHODS = ("greedy", "focal", "brute_force")
OBJECTIVES = ("accuracy", "nll")


def variants(num_classes: int) -> dict[str, EnsembleConfig]:
    out = {}
    for method in METHODS:
        for objective in OBJECTIVES:
            for floor in ("relative", "chance"):
                extra = (
                    {"min_relative_accuracy": 0.9}
                    if floor == "relative"
                    else {"min_accuracy": 1.5 / num_classes, "min_relative_accuracy": 0.0}
                )
                name = f"{method}/{objective}/{floor}"
                out[name] = EnsembleConfig(method=method, objective=objective, **extra)
    return out


def evaluate(pool_dir: str) -> dict[str, dict[str, float]]:
    pool = Pool.open(pool_dir)
    ids = pool.member_ids()
    pv, yv = pool.probs("val", ids), pool.labels("val")
    pt, yt = pool.probs("test", ids), pool.labels("test")
    rows: dict[str, dict[str, float]] = {}

    def score(name: str, team, seconds: float = 0.0) -> None:
        idx = [ids.index(m) for m in team.members]
        raw = prediction_metrics(team.combine(pt[idx], calibrated=False), yt)
        cal = prediction_metrics(team.combine(pt[idx]), yt)
        rows[name] = {
            "accuracy": raw["accuracy"],
            "nll": raw["nll"],
            "ece": raw["ece"],
            "nll_cal": cal["nll"],
            "ece_cal": cal["ece"],
            "size": len(team.members),
            "seconds": seconds,
        }

    val_acc = (pv.argmax(2) == yv).mean(1)
    val_nll = [prediction_metrics(p, yv)["nll"] for p in pv]
    best = min(range(len(ids)), key=lambda i: (-val_acc[i], val_nll[i]))
    score("best single", choose_ensemble(pv, yv, ids, members=[ids[best]]))
    score("entire pool", choose_ensemble(pv, yv, ids, members=ids))
    for name, cfg in variants(pool.num_classes).items():
        t0 = time.perf_counter()
        team = choose_ensemble(pv, yv, ids, cfg, max_candidates=20)
        score(name, team, time.perf_counter() - t0)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pools", nargs="+")
    args = parser.parse_args()
    per_pool = {p: evaluate(p) for p in args.pools}
    names = list(next(iter(per_pool.values())))
    summary = {}
    for name in names:
        rows = [per_pool[p][name] for p in args.pools]
        summary[name] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        summary[name].update({f"{k}_std": float(np.std([r[k] for r in rows])) for k in rows[0]})
    base = summary["best single"]
    for row in summary.values():
        row["nll_cal_ratio_to_best_single"] = row["nll_cal"] / base["nll_cal"]
        row["ece_cal_ratio_to_best_single"] = row["ece_cal"] / max(base["ece_cal"], 1e-12)
    print(
        f"{'variant':<32} {'acc %':>6} {'NLL':>6} {'NLL cal':>7} {'ECE':>6} {'ECE cal':>7} "
        f"{'size':>5}",
        file=sys.stderr,
    )
    for name, r in summary.items():
        print(
            f"{name:<32} {100 * r['accuracy']:6.2f} {r['nll']:6.3f} {r['nll_cal']:7.3f} "
            f"{r['ece']:6.3f} {r['ece_cal']:7.3f} {r['size']:5.1f}   "
            f"(std: acc {100 * r['accuracy_std']:.2f}, NLL cal {r['nll_cal_std']:.3f})",
            file=sys.stderr,
        )
    per_pool_acc = {
        p: {n: round(r["accuracy"], 4) for n, r in rows.items()} for p, rows in per_pool.items()
    }
    print(
        json.dumps(
            {
                "benchmark": "team_choice",
                "pools": args.pools,
                "summary": summary,
                "per_pool_test_accuracy": per_pool_acc,
            }
        )
    )


if __name__ == "__main__":
    main()
