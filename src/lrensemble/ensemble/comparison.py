"""The data of the LREnsemble paper's reports from any pool: Table 2 (per team size, teams
chosen on validation and scored on test) and Figure 4 (every team's test accuracy by size)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lrensemble.arrays import ShapeError, check_probs
from lrensemble.ensemble.diversity import focal_diversity_all
from lrensemble.ensemble.selection import (
    best_accuracy_team,
    most_diverse_team,
    select,
    soft_vote_scores,
)
from lrensemble.ensemble.teams import (
    check_enumerable,
    mask_of,
    members_of,
    team_accuracies,
    team_sizes,
)
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
    cache: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Table 2: for each team size (default 2 … M − 1), the test accuracy of random teams
    (mean ± std over `repeats`), and of the brute-force, greedy and focal teams chosen on
    validation; plus the best single member (chosen on validation) and the entire ensemble.

    Every team's validation and test accuracy and focal diversity are computed once; pass a
    dict as `cache` to receive them (`val_accuracy`, `test_accuracy`, `focal`, indexed by
    bitmask) for figures.
    """
    pv, yv, pt, yt = _pair(val_probs, val_labels, test_probs, test_labels)
    m = len(pv)
    if m < 3 and sizes is None:
        raise ParameterError("Table 2 needs a pool of at least 3 members (sizes 2 … M − 1).")
    sizes = list(range(2, m)) if sizes is None else sorted(set(sizes))
    if any(not 1 <= s <= m for s in sizes):
        raise ParameterError(f"team sizes must lie in 1 … {m}, got {sizes}.")
    check_enumerable(m)
    cache = {} if cache is None else cache
    if "val_accuracy" not in cache:
        cache["val_accuracy"] = team_accuracies(pv, yv)
        cache["test_accuracy"] = team_accuracies(pt, yt)
        cache["focal"] = focal_diversity_all(pv, yv, metric)
    val_acc, test_acc, fq = cache["val_accuracy"], cache["test_accuracy"], cache["focal"]
    team_size = team_sizes(m)
    single, single_val = best_accuracy_team(
        pv, yv, np.nonzero(team_size == 1)[0], val_acc[team_size == 1]
    )
    rows = []
    for s in sizes:
        masks = np.nonzero(team_size == s)[0]
        rand = select("random", pv, yv, size=s, repeats=repeats, seed=seed + s)
        test_rand = [soft_vote_scores(pt, yt, t)[0] for t in rand.details["teams"]]
        brute, _ = best_accuracy_team(pv, yv, masks, val_acc[masks])
        greedy = mask_of(select("greedy", pv, yv, size=s).members)
        focal = most_diverse_team(masks, fq, val_acc) if s >= 2 else brute
        row: dict[str, Any] = {
            "size": s,
            "random_mean": float(np.mean(test_rand)),
            "random_std": float(np.std(test_rand)),
        }
        for method, t in (("brute_force", brute), ("greedy", greedy), ("focal", focal)):
            row[method] = float(test_acc[t])
            row[f"{method}_members"] = list(members_of(t))
            row[f"{method}_val"] = float(val_acc[t])
        rows.append(row)
    return {
        "rows": rows,
        "best_single": {
            "member": members_of(single)[0],
            "val": single_val,
            "test": float(test_acc[single]),
        },
        "entire": {"val": float(val_acc[-1]), "test": float(test_acc[-1])},
    }


def team_distribution(test_probs: Any, test_labels: Any) -> dict[int, np.ndarray]:
    """Figure 4: the test accuracy of every team, grouped by team size."""
    pt, yt = check_probs(test_probs, test_labels)
    check_enumerable(len(pt))
    accs = team_accuracies(pt, yt)
    sizes = team_sizes(len(pt))
    return {s: accs[sizes == s] for s in range(1, len(pt) + 1)}
