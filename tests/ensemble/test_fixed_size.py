"""Scores of a list of teams, and fixed-size selection that scores only the teams of its size:
equal to the all-teams arrays and to the all-teams selection."""

from __future__ import annotations

import numpy as np
import pytest

from lrensemble.ensemble.diversity import focal_diversity_all, focal_diversity_of
from lrensemble.ensemble.selection import (
    BruteForceSelector,
    FocalSelector,
    HierarchicalSelector,
    select,
    soft_vote_scores,
)
from lrensemble.ensemble.teams import (
    combinations_array,
    masks_of_rows,
    team_accuracies,
    team_accuracies_of,
    team_nlls,
    team_nlls_of,
)
from lrensemble.errors import ParameterError
from tests.ensemble.conftest import KINDS, random_pool

POOLS = [(seed, kind) for seed in range(2) for kind in KINDS]


def tied_pool(seed: int, m: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Members 1 and 2 copies of member 0, member 4 of member 3: many exact ties."""
    p, y = random_pool(seed, m, 60, 4)
    p[1] = p[2] = p[0]
    p[4] = p[3]
    return p, y


def all_teams_way(method: str, p: np.ndarray, y: np.ndarray, size: int, **options):
    """Today's way: every team scored, then the teams of `size` ranked."""
    if method == "brute_force":
        # through the free-size path restricted to `size`, as before fixed-size enumeration
        selector = BruteForceSelector(size=size, **options)
        return _all_teams_brute_force(selector, p, y, size)
    return _all_teams_focal(FocalSelector(size=size, **options), p, y, size)


def _all_teams_brute_force(selector, p, y, size):
    from lrensemble.ensemble.selection import best_accuracy_team
    from lrensemble.ensemble.teams import members_of, team_sizes

    accs, sizes = team_accuracies(p, y), team_sizes(len(p))
    masks = np.nonzero(sizes == size)[0]
    if selector.objective == "accuracy":
        best, _ = best_accuracy_team(p, y, masks, accs[masks])
    else:
        nlls = team_nlls(p, y, masks)
        best = int(masks[np.lexsort((masks, -accs[masks], nlls))[0]])
    return members_of(best)


def _all_teams_focal(selector, p, y, size):
    from lrensemble.ensemble.selection import most_diverse_team
    from lrensemble.ensemble.teams import members_of, team_sizes

    fq, accs = focal_diversity_all(p, y, selector.metric), team_accuracies(p, y)
    masks = np.nonzero(team_sizes(len(p)) == size)[0]
    return members_of(most_diverse_team(masks, fq, accs))


@pytest.mark.parametrize(("seed", "kind"), POOLS)
def test_scores_of_a_list_equal_the_all_teams_arrays(seed, kind):
    p, y = random_pool(seed, 9, 120, 5, kind)
    accs = team_accuracies(p, y)
    fq = {metric: focal_diversity_all(p, y, metric) for metric in ("GD", "KW", "BD", "CK")}
    for size in (1, 2, 4, 6, 9):
        rows = combinations_array(9, size)
        masks = masks_of_rows(rows)
        assert np.array_equal(team_accuracies_of(p, y, rows), accs[masks])
        assert np.array_equal(team_accuracies_of(p, y, masks[::-1]), accs[masks[::-1]])
        nlls = team_nlls_of(p, y, rows)
        assert np.allclose(nlls, team_nlls(p, y, masks), rtol=1e-13, atol=0)
        some = rows[:: max(1, len(rows) // 7)]
        definition = [soft_vote_scores(p, y, team)[1] for team in some.tolist()]
        assert np.array_equal(team_nlls_of(p, y, some), definition)
        if size >= 2:
            for metric, all_teams in fq.items():
                assert np.array_equal(focal_diversity_of(p, y, rows, metric), all_teams[masks])


@pytest.mark.parametrize("tile_bytes", [8, 200, 5000])
def test_tiles_give_the_result_of_one_block(tile_bytes):
    p, y = random_pool(3, 8, 200, 6, "coarse")
    rows = combinations_array(8, 3)
    one = 1 << 30
    for fn in (team_accuracies_of, team_nlls_of):
        assert np.array_equal(fn(p, y, rows, tile_bytes=tile_bytes), fn(p, y, rows, one))
    assert np.array_equal(
        focal_diversity_of(p, y, rows, "GD", tile_bytes=tile_bytes),
        focal_diversity_of(p, y, rows, "GD", tile_bytes=one),
    )


def test_teams_are_checked():
    p, y = random_pool(0, 5, 30, 3)
    with pytest.raises(ParameterError, match="twice"):
        team_accuracies_of(p, y, [[0, 0]])
    with pytest.raises(ParameterError, match="same size"):
        team_nlls_of(p, y, [0b11, 0b111])
    with pytest.raises(ParameterError, match="indices from 0 to 4"):
        focal_diversity_of(p, y, [[0, 5]])


def pools():
    for seed, kind in POOLS:
        yield random_pool(seed, int(6 + seed * 3), 70, 4, kind)
    yield tied_pool(0)
    yield tied_pool(1, m=10)


@pytest.mark.parametrize("objective", ["accuracy", "nll"])
def test_brute_force_of_a_size_equals_all_teams(objective):
    for p, y in pools():
        for size in range(1, len(p) + 1, 2):
            chosen = select("brute_force", p, y, size=size, objective=objective)
            assert chosen.members == all_teams_way("brute_force", p, y, size, objective=objective)
            assert chosen.details["search"] == "exhaustive-fixed-size"
            assert chosen.details["teams_scored"] == len(combinations_array(len(p), size))


@pytest.mark.parametrize("metric", ["GD", "KW", "QS"])
def test_focal_of_a_size_equals_all_teams(metric):
    for p, y in pools() if metric != "QS" else [tied_pool(2), random_pool(1, 7, 50, 3)]:
        for size in (2, 3, len(p) - 1):
            chosen = select("focal", p, y, size=size, metric=metric)
            assert chosen.members == all_teams_way("focal", p, y, size, metric=metric)
            assert chosen.details["search"] == "exhaustive-fixed-size"
            expected = focal_diversity_all(p, y, metric)[masks_of_rows(np.array([chosen.members]))]
            assert chosen.details["diversity"] == expected[0]


def test_the_result_says_which_search_was_used():
    p, y = random_pool(0, 6, 50, 3)
    assert select("brute_force", p, y).details["search"] == "exhaustive-all"
    free = select("focal", p, y)
    assert free.details["search"] == "exhaustive-all"
    assert free.details["teams_scored"] == 2**6 - 1 - 6
    pruned = select("focal", p, y, size=3, hierarchical=True)
    assert pruned.details["search"] == "hierarchical"
    assert HierarchicalSelector(size=3).fit(p, y).details["search"] == "hierarchical"


def test_brute_force_of_size_four_on_32_members():
    p, y = random_pool(5, 32, 40, 3)
    chosen = select("brute_force", p, y, size=4)
    assert len(chosen.members) == 4
    assert chosen.details["teams_scored"] == 35_960
    accs = team_accuracies_of(p, y, combinations_array(32, 4))
    assert chosen.score == pytest.approx(accs.max())


def test_the_work_limit_counts_teams_times_samples():
    p, y = random_pool(0, 12, 50, 3)
    with pytest.raises(ParameterError, match="team-samples"):
        select("brute_force", p, y, size=6, max_work=924 * 50 - 1)
    assert len(select("brute_force", p, y, size=6, max_work=924 * 50).members) == 6
