"""Teams on corrupted test sets: accuracy, NLL and ECE per corruption and severity, their means
per severity, per corruption and overall, and the same on the clean test set (the
Prune-and-Tune paper's Table 2), from the predictions cached in the pool. Reads the pool only;
computing the predictions is `lrensemble.pipeline.evaluate_corruptions`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from lrensemble.ensemble import ChosenEnsemble, prediction_metrics
from lrensemble.ensemble.choice import plural
from lrensemble.pool import Pool

METRICS = ("accuracy", "nll", "ece")
# a team's probabilities (N, C) from its members' (S, N, C), in its members' order
Combine = Callable[[np.ndarray], np.ndarray]


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in METRICS}


def _metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    row = prediction_metrics(probs, labels)
    return {k: float(row[k]) for k in METRICS}


def corruption_metrics(
    pool: Pool,
    teams: Mapping[str, tuple[Sequence[str], Combine]],
    sets: Sequence[tuple[str, int]] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Each team (label -> (members, combine)) on the clean test set and on every corrupted
    set (default: those cached for every member of every team), from the pool's cache.

    Returns JSON-able data: `seed`, `sets` ([name, severity] pairs), `corruptions` and
    `severities` (in order), and per team its `members`, `clean` metrics, `by_set`
    ({name: {severity: metrics}}), `by_severity` and `by_corruption` (means) and `mean` (over
    every set); metrics are accuracy, NLL and ECE.
    """
    everyone = list(dict.fromkeys(m for members, _ in teams.values() for m in members))
    pairs = [tuple(s) for s in (pool.corruptions(everyone, seed) if sets is None else sets)]
    labels = pool.labels("test")
    rows = {m: i for i, m in enumerate(everyone)}

    def scored(probs: np.ndarray) -> dict[str, dict[str, float]]:
        return {
            label: _metrics(combine(probs[[rows[m] for m in members]]), labels)
            for label, (members, combine) in teams.items()
        }

    clean = scored(pool.probs("test", everyone))
    by_set: dict[str, dict[str, dict[int, dict[str, float]]]] = {t: {} for t in teams}
    for name, severity in pairs:
        for label, row in scored(pool.corrupted(name, severity, everyone, seed)).items():
            by_set[label].setdefault(name, {})[severity] = row
    corruptions = list(dict.fromkeys(name for name, _ in pairs))
    severities = sorted({severity for _, severity in pairs})
    out: dict[str, Any] = {
        "seed": seed,
        "sets": [[name, severity] for name, severity in pairs],
        "corruptions": corruptions,
        "severities": severities,
        "teams": {},
    }
    for label, (members, _) in teams.items():
        table = by_set[label]
        cells = [table[name][severity] for name, severity in pairs]
        out["teams"][label] = {
            "members": list(members),
            "clean": clean[label],
            "by_set": {n: {str(s): r for s, r in table[n].items()} for n in corruptions},
            "by_severity": {
                str(s): _mean([table[n][s] for n in corruptions if s in table[n]])
                for s in severities
            },
            "by_corruption": {n: _mean(list(table[n].values())) for n in corruptions},
            "mean": _mean(cells) if cells else None,
        }
    return out


TEAM_NAMES = {
    "best_single": "best single member",
    "chosen": "chosen ensemble",
    "entire": "entire pool",
}


def corrupted_teams(
    pool: Pool, teams: Mapping[str, ChosenEnsemble], notes: list[str], seed: int = 0
) -> dict[str, Any] | None:
    """The report's teams (as shipped: each with its temperatures) on the corrupted test sets
    cached for all their members (`corruption_metrics`); None when the pool has none. A team
    with a member that has none (e.g. imported predictions, which cannot be run) is left
    out, and `notes` says so."""
    everyone = list(dict.fromkeys(m for team in teams.values() for m in team.members))
    have = {m: set(pool.corruptions([m], seed)) for m in everyone}
    if not any(have.values()):
        return None
    kept = {label: t for label, t in teams.items() if all(have[m] for m in t.members)}
    lacking = sorted(m for m in everyone if not have[m])
    sets = set.intersection(*(have[m] for t in kept.values() for m in t.members)) if kept else {}
    if not sets:
        notes.append(
            "The corrupted test sets are left out: the members' predictions cached on them "
            "have no corruption and severity in common (lrens report --corruptions computes "
            "them)."
        )
        return None
    left = [TEAM_NAMES.get(label, label) for label in teams if label not in kept]
    if left:
        notes.append(
            f"The {' and the '.join(left)} {'is' if len(left) == 1 else 'are'} left out of the "
            f"corrupted test sets: {plural(len(lacking), 'member')} ({', '.join(lacking)}) "
            f"{'has' if len(lacking) == 1 else 'have'} no predictions on them (members without "
            "weights cannot be run on them)."
        )
    return corruption_metrics(
        pool, {label: (t.members, t.combine) for label, t in kept.items()}, sorted(sets), seed
    )


__all__ = ["METRICS", "TEAM_NAMES", "Combine", "corrupted_teams", "corruption_metrics"]
