"""The selector contract: parameters checked when a selector is built, `fit` returns the
`Selection`, `Selection.apply` votes the team; focal and hierarchical selection without a size."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from lrensemble.ensemble import (
    SELECTORS,
    EnsembleConfig,
    GreedySelector,
    Selection,
    choose_ensemble,
    ensemble_selector,
    focal_diversity,
    list_selectors,
    make_selector,
    mask_of,
    plurality_vote,
    select,
    team_accuracy,
)
from lrensemble.errors import ParameterError
from tests.ensemble.conftest import random_pool

BAD_PARAMETERS = [
    ("magic", {}, "Unknown selection method 'magic'"),
    ("greedy", {"bogus": 1}, "no parameter 'bogus'"),
    ("random", {}, "Random selection needs a team size"),
    ("random", {"size": 2, "repeats": 0}, "repeats must be an integer of at least 1"),
    ("random", {"size": 2, "seed": -1}, "seed must be an integer of at least 0"),
    ("random", {"size": 2, "min_accuracy": 1.5}, "min_accuracy must be a number in [0, 1]"),
    ("brute_force", {"size": 0}, "team size must be an integer of at least 1"),
    ("brute_force", {"objective": "auc"}, "Unknown objective 'auc'"),
    ("brute_force", {"max_members": 0}, "max_members must be an integer of at least 1"),
    ("greedy", {"rounds": 0}, "rounds must be an integer of at least 1"),
    ("greedy", {"size": 2.5}, "team size must be an integer"),
    ("greedy", {"size": True}, "team size must be an integer"),
    ("focal", {"size": 1}, "team size must be an integer of at least 2"),
    ("focal", {"metric": "XX"}, "Unknown diversity metric 'XX'"),
    ("focal", {"prune_fraction": 1.0}, "prune_fraction must be a number in [0, 1)"),
    ("focal", {"parity": True, "hierarchical": True}, "no hierarchical pruning"),
    ("focal", {"parity": "yes"}, "parity must be true or false"),
    ("focal", {"hierarchical": 1}, "hierarchical must be true or false"),
    ("hierarchical", {"size": -3}, "team size must be an integer of at least 2"),
    ("hierarchical", {"prune_fraction": float("nan")}, "prune_fraction must be a number"),
    ("hierarchical", {"max_candidates": 0}, "max_candidates must be an integer of at least 1"),
    ("hierarchical", {"objective": "f1"}, "Unknown objective 'f1'"),
]


@pytest.mark.parametrize(("method", "options", "fragment"), BAD_PARAMETERS)
def test_bad_parameters_fail_when_the_selector_is_built(method, options, fragment):
    """No predictions are needed to refuse a parameter: one sentence, at construction."""
    with pytest.raises(ParameterError) as info:
        make_selector(method, **options)
    message = str(info.value)
    assert fragment in message and "\n" not in message and message.endswith(".")
    if method in SELECTORS and "bogus" not in options:  # the classes check the same way
        with pytest.raises(ParameterError) as again:
            SELECTORS[method](**{"size": None, **options})
        assert str(again.value) == message


def test_a_size_above_the_pool_fails_at_fit():
    selector = make_selector("greedy", size=9)  # the pool is unknown until fit
    p, y = random_pool(0, 4, 20, 3)
    with pytest.raises(ParameterError, match="team size must be an integer from 1 to 4"):
        selector.fit(p, y)


@pytest.mark.parametrize(
    ("method", "size", "options"),
    [
        ("random", 3, {"repeats": 4, "seed": 2}),
        ("brute_force", None, {"objective": "nll"}),
        ("greedy", 3, {}),
        ("greedy", None, {"rounds": 8}),
        ("focal", 3, {"metric": "KW"}),
        ("focal", None, {}),
        ("hierarchical", None, {"prune_fraction": 0.2}),
    ],
)
def test_fit_returns_the_selection_that_select_returns(method, size, options):
    p, y = random_pool(1, 6, 60, 4)
    selector = make_selector(method, size, **options)
    selection = selector.fit(p, y)
    assert isinstance(selection, Selection)
    assert selection == select(method, p, y, size=size, **options)
    assert selection.pool_size == 6 and selection.method == method
    assert selector.selection_ is selection
    assert (selector.members_, selector.weights_, selector.score_) == (
        selection.members,
        selection.weights,
        selection.score,
    )


def test_apply_is_the_weighted_soft_vote_of_the_team():
    p, y = random_pool(2, 6, 80, 4)
    selection = GreedySelector(rounds=12).fit(p, y)
    expected = sum(w * p[m] for m, w in zip(selection.members, selection.weights, strict=True))
    np.testing.assert_allclose(selection.apply(p), expected)
    assert np.mean(selection.apply(p).argmax(axis=1) == y) == pytest.approx(selection.score)
    # on other predictions of the same members (test), the same vote
    q, _ = random_pool(3, 6, 30, 4)
    expected = sum(w * q[m] for m, w in zip(selection.members, selection.weights, strict=True))
    np.testing.assert_allclose(selection.apply(q), expected)


@pytest.mark.parametrize("m", [5, 7])
def test_apply_refuses_predictions_of_another_pool(m):
    p, y = random_pool(4, 6, 40, 3)
    selection = select("brute_force", p, y, size=2)
    q, _ = random_pool(5, m, 40, 3)
    with pytest.raises(ParameterError) as info:
        selection.apply(q)
    assert str(info.value).startswith(
        f"The selection was chosen from a pool of M = 6; got predictions with M = {m}"
    )


def test_apply_honours_plurality_voting():
    p, y = random_pool(6, 5, 50, 3)
    soft = select("brute_force", p, y, size=3)
    hard = Selection("given", soft.members, soft.weights, soft.score, voting="plurality")
    labels = plurality_vote(p, soft.members, soft.weights)
    np.testing.assert_array_equal(hard.apply(p), np.eye(3)[labels])
    with pytest.raises(ParameterError, match="Unknown voting 'median'"):
        Selection("given", (0,), (1.0,), 0.5, voting="median")


def test_a_chosen_ensemble_combines_through_its_selection():
    p, y = random_pool(7, 5, 120, 3)
    chosen = choose_ensemble(p, y, list("abcde"), EnsembleConfig(calibrate=False))
    rows = [list("abcde").index(m) for m in chosen.members]
    team = chosen.selection()
    assert team.members == tuple(range(chosen.size)) and team.pool_size == chosen.size
    np.testing.assert_allclose(chosen.combine(p[rows]), team.apply(p[rows]))


def test_ensemble_selector_follows_the_config():
    """The selector `choose_ensemble` uses: focal sizes raised to 2, sizes capped at the
    candidates, random with its seed."""
    focal = ensemble_selector(EnsembleConfig(method="focal", size=1, metric="KW"))
    assert (focal.size, focal.metric, focal.objective) == (2, "KW", "nll")
    assert ensemble_selector(EnsembleConfig(size=6), candidates=4).size == 4
    rand = ensemble_selector(EnsembleConfig(method="random", size=3, seed=5))
    assert (rand.seed, rand.repeats) == (5, 1)


def _definition_most_diverse(p, y, s):
    """The most diverse team of size `s` by the straightforward definitions: (mask, diversity,
    accuracy), ties to higher accuracy, then the lower bitmask."""
    rows = []
    for team in combinations(range(len(p)), s):
        rows.append((mask_of(team), focal_diversity(p, y, team), team_accuracy(p, y, team)))
    return max(rows, key=lambda r: (round(r[1], 12), r[2], -r[0]))


def test_focal_without_a_size_takes_the_best_of_the_most_diverse_teams():
    p, y = random_pool(8, 6, 70, 4)
    chosen = select("focal", p, y, objective="accuracy")
    per_size = chosen.details["most_diverse_per_size"]
    assert sorted(per_size) == [2, 3, 4, 5, 6]
    for s, row in per_size.items():
        mask, diversity, accuracy = _definition_most_diverse(p, y, s)
        assert mask_of(row["members"]) == mask
        assert row["diversity"] == pytest.approx(diversity)
        assert row["accuracy"] == pytest.approx(accuracy)
    best = max(per_size.values(), key=lambda r: (r["accuracy"], r["diversity"]))
    assert list(chosen.members) == best["members"]
    assert chosen.score == pytest.approx(best["accuracy"])
    # under NLL: the most diverse team of the size whose soft vote has the lowest NLL
    by_nll = select("focal", p, y, objective="nll")
    assert by_nll.details["most_diverse_per_size"] == per_size
    vals = {
        s: -np.mean(np.log(p[r["members"]].mean(axis=0)[np.arange(len(y)), y]))
        for s, r in per_size.items()
    }
    assert list(by_nll.members) == per_size[min(vals, key=vals.get)]["members"]


def test_hierarchical_without_pruning_is_focal_on_a_tiny_pool():
    p, y = random_pool(9, 5, 60, 3)
    for size in (None, 3):
        pruned = select("hierarchical", p, y, size=size, prune_fraction=0.0)
        focal = select("focal", p, y, size=size, hierarchical=False)
        assert pruned.members == focal.members and pruned.weights == focal.weights
        assert pruned.details["teams_pruned"] == 0
        assert pruned.details["teams_scored"] == sum(
            len(list(combinations(range(5), s))) for s in range(2, (size or 5) + 1)
        )


@pytest.mark.parametrize("size", [None, 3, 4])
def test_hierarchical_selection_on_a_pool_that_prunes(size):
    p, y = random_pool(10, 7, 80, 4)
    chosen = select("hierarchical", p, y, size=size, prune_fraction=0.1)
    members = chosen.members
    assert len(set(members)) == len(members) and all(0 <= m < 7 for m in members)
    assert size is None or len(members) == size
    assert chosen.weights == pytest.approx([1 / len(members)] * len(members))
    assert chosen.details["teams_pruned"] > 0
    every = sum(len(list(combinations(range(7), s))) for s in range(2, (size or 7) + 1))
    assert chosen.details["teams_scored"] < every
    # no survivor is more diverse than the most diverse team of its size
    for s, row in chosen.details["most_diverse_per_size"].items():
        assert row["diversity"] <= _definition_most_diverse(p, y, s)[1] + 1e-9
        assert row["diversity"] == pytest.approx(focal_diversity(p, y, row["members"]))
    assert chosen.score == pytest.approx(team_accuracy(p, y, members))
    np.testing.assert_allclose(chosen.apply(p), p[list(members)].mean(axis=0))


def test_focal_falls_back_to_hierarchical_pruning_when_asked():
    p, y = random_pool(11, 6, 60, 3)
    chosen = select("focal", p, y, size=3, hierarchical=True, prune_fraction=0.2)
    alone = select("hierarchical", p, y, size=3, prune_fraction=0.2)
    assert chosen.method == "focal" and chosen.members == alone.members
    assert chosen.details["candidates"] == "hierarchical pruning"
    assert chosen.pool_size == 6


def test_every_method_is_listed_and_buildable_with_defaults():
    for method in list_selectors():
        selector = make_selector(method, size=2)
        assert selector.name == method and selector.size == 2
    assert make_selector("greedy", size=np.int64(3)).size == 3


def test_every_method_takes_an_ensemble_config_with_parity_on():
    """The report times every method with the user's [ensemble] table: parity (a focal
    option) must not break the others."""
    from lrensemble.ensemble import EnsembleConfig, ensemble_selector

    config = EnsembleConfig(method="focal", parity=True)
    for method in ("brute_force", "greedy", "focal"):
        assert ensemble_selector(config.model_copy(update={"method": method}), 5) is not None
