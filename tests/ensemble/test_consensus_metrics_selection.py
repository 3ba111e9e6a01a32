"""Consensus, metrics, selection methods and the per-size comparison."""

from __future__ import annotations

import numpy as np
import pytest

from lrensemble.ensemble import (
    GreedySelector,
    ShapeError,
    brier,
    check_probs,
    compare_by_size,
    ece,
    list_selectors,
    members_of,
    nll,
    plurality_vote,
    select,
    soft_vote,
    softmax,
    team_accuracies,
    team_distribution,
    team_metrics,
)
from lrensemble.errors import ParameterError
from tests.ensemble.conftest import random_pool


def test_soft_vote_is_the_weighted_mean():
    p, _ = random_pool(0, 3, 20, 4)
    np.testing.assert_allclose(soft_vote(p), p.mean(axis=0))
    np.testing.assert_allclose(soft_vote(p, [0, 2], [3, 1]), 0.75 * p[0] + 0.25 * p[2])


def test_plurality_vote_breaks_ties_by_mean_probability():
    p = np.array(
        [
            [[0.6, 0.4, 0.0]],  # votes 0
            [[0.0, 0.7, 0.3]],  # votes 1
        ]
    )
    # one vote each: mean probabilities are (0.3, 0.55, 0.15) -> class 1
    assert plurality_vote(p).tolist() == [1]
    p3 = np.concatenate([p, [[[0.9, 0.1, 0.0]]]])
    assert plurality_vote(p3).tolist() == [0]


def test_metrics_by_hand():
    p = np.array([[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    y = np.array([0, 0, 1])
    assert nll(p, y) == pytest.approx(-np.mean(np.log([0.8, 0.4, 0.5])))
    assert brier(p, y) == pytest.approx(np.mean([0.08, 0.72, 0.5]))
    # confidences 0.8 (right), 0.6 (wrong), 0.5 (argmax 0: wrong) in bins 12, 9, 7 of 15
    assert ece(p, y) == pytest.approx((0.2 + 0.6 + 0.5) / 3)


def test_team_metrics_plurality_and_unknown_voting():
    p, y = random_pool(1, 3, 30, 3)
    soft = team_metrics(p, y)
    hard = team_metrics(p, y, voting="plurality")
    assert hard["nll"] == soft["nll"]
    assert hard["accuracy"] == pytest.approx(np.mean(plurality_vote(p) == y))
    with pytest.raises(ParameterError, match="Unknown voting"):
        team_metrics(p, y, voting="median")


@pytest.mark.parametrize(
    ("probs", "labels", "fragment", "error"),
    [
        (np.ones((2, 3, 2)) / 2, np.zeros(4, int), "4 labels for 3 samples", ShapeError),
        (np.ones((2, 3, 2)) / 2, np.array([0, 1, 2]), "lie in [0, 2)", ParameterError),
        (np.ones((2, 3, 2)), np.zeros(3, int), "do not sum to 1", ParameterError),
        (np.full((2, 3, 2), 3.0), np.zeros(3, int), "look like logits", ParameterError),
        (np.full((2, 3, 2), np.nan), np.zeros(3, int), "NaN", ParameterError),
        (np.ones((0, 3, 2)), np.zeros(3, int), "at least one member and two classes", ShapeError),
        (np.ones(5), np.zeros(5, int), "shape (members, samples, classes)", ShapeError),
    ],
)
def test_input_errors(probs, labels, fragment, error):
    with pytest.raises(error) as info:
        check_probs(probs, labels)
    assert fragment in str(info.value)


def test_softmax_is_the_explicit_conversion():
    logits = np.random.default_rng(0).normal(size=(2, 5, 3)) * 10
    p, _ = check_probs(softmax(logits))
    np.testing.assert_allclose(p.sum(axis=2), 1.0)


def test_every_selector_returns_a_valid_selection():
    p, y = random_pool(3, 6, 60, 4)
    for method in list_selectors():
        result = select(method, p, y, size=3)
        assert len(result.members) == 3 and sorted(set(result.members)) == list(result.members)
        assert sum(result.weights) == pytest.approx(1.0)
        assert result.score == pytest.approx(
            np.mean(np.tensordot(result.weights, p[list(result.members)], 1).argmax(1) == y)
        )


def test_brute_force_is_the_best_team_with_documented_tie_break():
    p, y = random_pool(4, 6, 50, 3)
    accs = team_accuracies(p, y)
    result = select("brute_force", p, y, size=3)
    sized = [t for t in range(1, 64) if bin(t).count("1") == 3]
    assert result.score == max(accs[t] for t in sized)
    overall = select("brute_force", p, y)
    assert overall.score == np.nanmax(accs)


def test_greedy_fixed_size_starts_from_the_best_single_member():
    p, y = random_pool(5, 6, 80, 4)
    single = select("brute_force", p, y, size=1).members[0]
    result = select("greedy", p, y, size=4)
    assert result.details["order"][0] == single


def test_greedy_free_weights_are_pick_counts_of_the_best_prefix():
    p, y = random_pool(6, 5, 80, 4)
    selector = GreedySelector(rounds=10)
    sel = selector.fit(p, y)
    picks = sel.details["picks"][: sel.details["prefix"]]
    counts = np.bincount(picks, minlength=5)
    assert list(sel.members) == np.nonzero(counts)[0].tolist()
    np.testing.assert_allclose(sel.weights, counts[counts > 0] / len(picks))
    assert sel.score == max(sel.details["accuracy_path"])
    assert selector.selection_ is sel and selector.members_ == sel.members


def test_focal_picks_the_most_diverse_team_of_the_size():
    from lrensemble.ensemble import focal_diversity_all

    p, y = random_pool(7, 6, 60, 3)
    fq = focal_diversity_all(p, y)
    result = select("focal", p, y, size=3)
    best = max(fq[t] for t in range(64) if bin(t).count("1") == 3)
    assert result.details["diversity"] == pytest.approx(best)


def test_hierarchical_without_pruning_equals_focal_and_prunes_supersets():
    p, y = random_pool(8, 6, 60, 3)
    no_prune = select("hierarchical", p, y, size=4, prune_fraction=0.0)
    focal = select("focal", p, y, size=4)
    assert no_prune.details["most_diverse_per_size"][4]["diversity"] == pytest.approx(
        focal.details["diversity"]
    )
    pruned = select("hierarchical", p, y, size=3, prune_fraction=0.3)
    assert pruned.details["teams_pruned"] > 0
    assert pruned.details["teams_scored"] < 15 + 20  # all pairs and all triples of 6
    with pytest.raises(ParameterError, match="was pruned"):
        select("hierarchical", p, y, size=5, prune_fraction=0.9)


@pytest.mark.parametrize(
    ("method", "kwargs", "fragment"),
    [
        ("magic", {}, "Unknown selection method"),
        ("random", {}, "needs a team size"),
        ("brute_force", {"size": 0}, "team size must be an integer of at least 1"),
        ("greedy", {"size": 9}, "team size must be an integer from 1 to 4"),
        ("focal", {"size": 1}, "team size must be an integer of at least 2"),
        ("greedy", {"bogus": 1}, "no parameter 'bogus'"),
    ],
)
def test_selection_errors(method, kwargs, fragment):
    p, y = random_pool(9, 4, 20, 3)
    with pytest.raises(ParameterError) as info:
        select(method, p, y, **kwargs)
    assert fragment in str(info.value)


def test_too_large_pools_are_refused_with_a_pointer():
    """Free-size enumeration of 2^25 teams is refused with a pointer; a fixed size enumerates
    only its C(25, 2) teams, unless its work exceeds the limit."""
    p, y = random_pool(10, 25, 5, 2)
    with pytest.raises(ParameterError, match=r"too many to enumerate.*greedy"):
        select("brute_force", p, y)
    assert len(select("brute_force", p, y, size=2).members) == 2
    with pytest.raises(ParameterError, match="team-samples"):
        select("brute_force", p, y, size=2, max_work=1)
    assert len(select("greedy", p, y, size=2).members) == 2


def test_compare_by_size_and_distribution():
    pv, yv = random_pool(11, 5, 60, 3)
    pt, yt = random_pool(12, 5, 70, 3)
    table = compare_by_size(pv, yv, pt, yt, repeats=4)
    assert [r["size"] for r in table["rows"]] == [2, 3, 4]
    for row in table["rows"]:
        for method in ("brute_force", "greedy", "focal"):
            members = row[f"{method}_members"]
            assert row[method] == pytest.approx(np.mean(pt[members].mean(0).argmax(1) == yt))
    assert table["entire"]["test"] == pytest.approx(np.mean(pt.mean(0).argmax(1) == yt))
    dist = team_distribution(pt, yt)
    assert [len(dist[s]) for s in range(1, 6)] == [5, 10, 10, 5, 1]
    accs = team_accuracies(pt, yt)
    assert sorted(dist[2].tolist()) == sorted(accs[t] for t in range(32) if len(members_of(t)) == 2)
    with pytest.raises(ShapeError):
        compare_by_size(pv, yv, pt[:4], yt)
