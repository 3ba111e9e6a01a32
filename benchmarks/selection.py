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

Then the fixed-size cases (issue 20), one JSON line each: focal selection of size 5 from
M = 20 and brute force of size 4 from M = 32, scoring only the teams of that size. Today's
all-teams way is timed in the same run where it finishes in reasonable time: at M = 16 for both
(at M = 20 it takes minutes; at M = 32 it is refused), with both ways checked to choose the same
team there.

    python benchmarks/selection.py [--hard] [--sample 200] [--seed 0] [--fixed-size-only]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from lrensemble.ensemble import focal_diversity, focal_diversity_all, members_of, team_accuracies
from lrensemble.ensemble.selection import best_accuracy_team, most_diverse_team, select
from lrensemble.ensemble.teams import team_sizes


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


def all_teams_way(method: str, p: np.ndarray, y: np.ndarray, size: int) -> tuple[int, ...]:
    """Today's fixed-size selection: score every team, then rank those of `size`."""
    p64 = p.astype(np.float64)
    accs = team_accuracies(p64, y)
    masks = np.nonzero(team_sizes(len(p)) == size)[0]
    if method == "focal":
        fq = focal_diversity_all(p64, y, "GD")
        return members_of(most_diverse_team(masks, fq, accs))
    return members_of(best_accuracy_team(p64, y, masks, accs[masks])[0])


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """fn(*args, **kwargs) and its wall-clock seconds."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def fixed_size_case(
    method: str, members: int, size: int, args: argparse.Namespace, compare_at: int
) -> dict:
    """Fixed-size selection on a pool of `members`, and the ratio to today's all-teams way
    measured on a pool of `compare_at` members (both ways timed there)."""
    p, y = make_pool(members, args.samples, args.classes, args.seed, args.hard)
    chosen, seconds = timed(select, method, p, y, size=size)
    small_p, small_y = make_pool(compare_at, args.samples, args.classes, args.seed, args.hard)
    small, new_small = timed(select, method, small_p, small_y, size=size)
    old_members, old_small = timed(all_teams_way, method, small_p, small_y, size)
    return {
        "benchmark": "selection-fixed-size",
        "case": f"{method}, size {size}, M = {members}",
        "pool": "hard" if args.hard else "trained-like",
        "samples": args.samples,
        "classes": args.classes,
        "search": chosen.details["search"],
        "teams_scored": chosen.details["teams_scored"],
        "seconds": round(seconds, 3),
        "members_chosen": list(chosen.members),
        "compared_at_members": compare_at,
        "fixed_size_seconds_at_compare": round(new_small, 3),
        "all_teams_seconds_at_compare": round(old_small, 3),
        "speedup_at_compare": round(old_small / new_small, 1),
        "same_team_at_compare": tuple(small.members) == tuple(old_members),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--sample", type=int, default=200, help="teams timed the slow way")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hard", action="store_true")
    parser.add_argument("--fixed-size-only", action="store_true", help="only issue 20's cases")
    args = parser.parse_args()
    if not args.fixed_size_only:
        all_teams(args)
    print(json.dumps(fixed_size_case("focal", 20, 5, args, compare_at=16)))
    print(json.dumps(fixed_size_case("brute_force", 32, 4, args, compare_at=16)))


def all_teams(args: argparse.Namespace) -> None:
    """The all-team computations against the straightforward ways."""
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
