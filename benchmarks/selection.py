"""Time the all-team computations of ensemble selection on a 16-member pool.

M = 16 members, N = 5,000 validation samples, C = 100 classes (65,535 teams):
- `team_accuracies` (soft-vote accuracy of every team) against the straightforward way (mean of
  the team's probabilities, argmax, compare; team by team), and
- FQ-GD of every team (`focal_diversity_all`) against per-team, per-focal loops
  (`focal_diversity`),
the straightforward ones timed on a random sample of teams in the same run and scaled to all
teams. Both fast results are checked equal to the straightforward ones on that sample.

The pool imitates trained members: a shared per-sample difficulty plus member noise, confident
softmax outputs, about 75% member accuracy. `--hard` uses a flat, noisy pool on which members
disagree on almost every sample (the worst case for pruning to disagreement samples).

    python benchmarks/selection.py [--hard] [--sample 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from lrensemble.ensemble import focal_diversity, focal_diversity_all, members_of, team_accuracies


def make_pool(m: int, n: int, c: int, seed: int, hard: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    if hard:
        z = rng.normal(size=(m, n, c)) * 2
        z[:, np.arange(n), y] += 2
    else:
        shared = rng.normal(size=(n, c))
        shared[np.arange(n), y] += rng.uniform(2.0, 7.0, n)  # per-sample difficulty
        z = (shared[None] + 0.8 * rng.normal(size=(m, n, c))) * 2.5
    z -= z.max(axis=2, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=2, keepdims=True)
    return p.astype(np.float32), y


def straightforward_accuracy(p64: np.ndarray, y: np.ndarray, team: tuple[int, ...]) -> float:
    """Mean of the team's probabilities, argmax, compare."""
    return float(np.mean(p64[list(team)].mean(axis=0).argmax(axis=1) == y))


def straightforward_fq_gd(wrong: np.ndarray, team: tuple[int, ...]) -> float:
    """Per focal member: GD of the team's failures on the focal member's negatives."""
    scores = []
    size = len(team)
    for f in team:
        fails = wrong[list(team)][:, wrong[f]].sum(axis=0)
        if len(fails) == 0:
            scores.append(0.0)
            continue
        frac = np.bincount(fails, minlength=size + 1) / len(fails)
        i = np.arange(size + 1)
        p1 = np.sum(i / size * frac)
        p2 = np.sum(i * (i - 1) / (size * (size - 1)) * frac)
        scores.append(0.0 if p1 == 0 else 1 - p2 / p1)
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--sample", type=int, default=200, help="teams timed the slow way")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hard", action="store_true")
    args = parser.parse_args()
    p, y = make_pool(args.members, args.samples, args.classes, args.seed, args.hard)
    teams = (1 << args.members) - 1
    rng = np.random.default_rng(args.seed + 1)
    sample = rng.choice(np.arange(1, teams + 1), size=args.sample, replace=False)
    pairs = sample[[bin(int(t)).count("1") >= 2 for t in sample]]

    t0 = time.perf_counter()
    accs = team_accuracies(p, y)
    fast_acc = time.perf_counter() - t0
    p64 = p.astype(np.float64)  # the same float64 arithmetic as the library's definition
    t0 = time.perf_counter()
    slow = [straightforward_accuracy(p64, y, members_of(int(t))) for t in sample]
    slow_acc = (time.perf_counter() - t0) / len(sample) * teams
    exact_acc = bool(np.array_equal(accs[sample], np.array(slow)))

    t0 = time.perf_counter()
    fq = focal_diversity_all(p, y, "GD")
    fast_fq = time.perf_counter() - t0
    wrong = p.argmax(axis=2) != y
    t0 = time.perf_counter()
    slow = [straightforward_fq_gd(wrong, members_of(int(t))) for t in pairs]
    slow_fq = (time.perf_counter() - t0) / len(pairs) * (teams - args.members)
    reference = [focal_diversity(p, y, int(t), "GD") for t in pairs]
    exact_fq = bool(np.allclose(fq[pairs], slow, rtol=1e-12, atol=1e-12)) and bool(
        np.allclose(fq[pairs], reference, rtol=1e-12, atol=1e-12)
    )

    member_acc = (p.argmax(axis=2) == y).mean(axis=1)
    print(
        json.dumps(
            {
                "benchmark": "selection",
                "pool": "hard" if args.hard else "trained-like",
                "members": args.members,
                "samples": args.samples,
                "classes": args.classes,
                "teams": teams,
                "member_accuracy_mean": round(float(member_acc.mean()), 4),
                "team_accuracies_seconds": round(fast_acc, 3),
                "team_accuracies_straightforward_seconds_est": round(slow_acc, 1),
                "team_accuracies_speedup": round(slow_acc / fast_acc, 1),
                "fq_gd_all_teams_seconds": round(fast_fq, 3),
                "fq_gd_straightforward_seconds_est": round(slow_fq, 1),
                "fq_gd_speedup": round(slow_fq / fast_fq, 1),
                "teams_timed_straightforward": len(sample),
                "exact_on_timed_teams": exact_acc and exact_fq,
            }
        )
    )


if __name__ == "__main__":
    main()
