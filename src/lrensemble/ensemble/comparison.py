"""The data of the LREnsemble paper's reports from any pool: Table 2 (per team size, teams
chosen on validation and scored on test) and Figure 4 (every team's test accuracy by size)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lrensemble.ensemble.checks import ShapeError, check_probs
from lrensemble.ensemble.selection import select, soft_vote_scores
from lrensemble.ensemble.teams import check_enumerable, members_of, team_accuracies, team_sizes
from lrensemble.errors import ParameterError

TABLE2_METHODS = ("brute_force", "greedy", "focal")


def _pair(
    val_probs: Any, val_labels: Any, test_probs: Any, test_labels: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pv, yv = check_probs(val_probs, val_labels)
    pt, yt = check_probs(test_probs, test_labels)
    if pv.shape[0] != pt.shape[0] or pv.shape[2] != pt.shape[2]:
        raise ShapeError(
            f"validation predictions {pv.shape} and test predictions {pt.shape} disagree on the "
            "number of members or classes."
        )
    return pv, yv, pt, yt


def compare_by_size(
    val_probs: Any,
    val_labels: Any,
    test_probs: Any,
    test_labels: Any,
    sizes: list[int] | None = None,
    repeats: int = 10,
    seed: int = 0,
    metric: str = "GD",
) -> dict[str, Any]:
    """Table 2: for each team size (default 2 … M − 1), the test accuracy of random teams
    (mean ± std over `repeats`), and of the brute-force, greedy and focal teams chosen on
    validation; plus the best single member (chosen on validation) and the entire ensemble."""
    pv, yv, pt, yt = _pair(val_probs, val_labels, test_probs, test_labels)
    m = len(pv)
    if m < 3 and sizes is None:
        raise ParameterError("Table 2 needs a pool of at least 3 members (sizes 2 … M − 1).")
    sizes = list(range(2, m)) if sizes is None else sorted(set(sizes))
    if any(not 1 <= s <= m for s in sizes):
        raise ParameterError(f"team sizes must lie in 1 … {m}, got {sizes}.")
    best_single = select("brute_force", pv, yv, size=1)
    rows = []
    for s in sizes:
        rand = select("random", pv, yv, size=s, repeats=repeats, seed=seed + s)
        test_rand = [soft_vote_scores(pt, yt, t)[0] for t in rand.details["teams"]]
        row: dict[str, Any] = {
            "size": s,
            "random_mean": float(np.mean(test_rand)),
            "random_std": float(np.std(test_rand)),
        }
        for method in TABLE2_METHODS:
            options = {"metric": metric} if method == "focal" else {}
            chosen = select(method, pv, yv, size=s, **options)
            row[method] = soft_vote_scores(pt, yt, chosen.members)[0]
            row[f"{method}_members"] = list(chosen.members)
            row[f"{method}_val"] = chosen.score
        rows.append(row)
    return {
        "rows": rows,
        "best_single": {
            "member": best_single.members[0],
            "val": best_single.score,
            "test": soft_vote_scores(pt, yt, best_single.members)[0],
        },
        "entire": {
            "val": soft_vote_scores(pv, yv, range(m))[0],
            "test": soft_vote_scores(pt, yt, range(m))[0],
        },
    }


def team_distribution(test_probs: Any, test_labels: Any) -> dict[int, np.ndarray]:
    """Figure 4: the test accuracy of every team, grouped by team size."""
    pt, yt = check_probs(test_probs, test_labels)
    check_enumerable(len(pt))
    accs = team_accuracies(pt, yt)
    sizes = team_sizes(len(pt))
    return {s: accs[sizes == s] for s in range(1, len(pt) + 1)}


def describe_team(mask: int) -> list[int]:
    return list(members_of(mask))
