"""Fast paths against the straightforward definitions, on small random pools with ties."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from lrensemble.ensemble import (
    METRICS,
    diversity,
    focal_diversity,
    focal_diversity_all,
    mask_of,
    members_of,
    parameter_cosine_similarity,
    prediction_diversity,
    team_accuracies,
    team_accuracy,
)
from lrensemble.errors import ParameterError


def straightforward_accuracy(p, y, team):
    return float(np.mean(p[list(team)].mean(axis=0).argmax(axis=1) == y))


def test_team_accuracies_equal_the_definition_for_every_team(small_pool):
    p, y = small_pool
    fast = team_accuracies(p, y)
    assert np.isnan(fast[0])
    for t in range(1, 1 << len(p)):
        assert fast[t] == straightforward_accuracy(p, y, members_of(t)), t


def test_team_accuracies_with_float32_inputs(small_pool):
    p, y = small_pool
    p32 = p.astype(np.float32)
    fast = team_accuracies(p32, y)
    ref = [team_accuracy(p32, y, members_of(t)) for t in range(1, 1 << len(p))]
    assert fast[1:].tolist() == ref


def test_bitmask_helpers():
    assert mask_of([0, 2, 5]) == 0b100101
    assert members_of(0b100101) == (0, 2, 5)


# --- diversity: definitions checked by hand ------------------------------------------------------


def one_hot_pool(preds, c=3):
    """Members predicting `preds` (M, N) with confident one-hot-ish probabilities."""
    preds = np.asarray(preds)
    p = np.full((*preds.shape, c), 0.1 / (c - 1))
    np.put_along_axis(p, preds[..., None], 0.9, axis=2)
    return p


def test_metrics_on_a_hand_worked_example():
    y = np.array([0, 0, 0, 0])
    preds = [[0, 0, 1, 1], [0, 1, 0, 1]]  # oracle: [1,1,0,0] and [1,0,1,0]
    p = one_hot_pool(preds)
    # BD: disagree on samples 1 and 2 -> 2/4
    assert diversity(p, y, [0, 1], "BD") == pytest.approx(0.5)
    # QS: N11=1, N00=1, N10=1, N01=1 -> Q = 0 -> 1 - Q = 1
    assert diversity(p, y, [0, 1], "QS") == pytest.approx(1.0)
    # KW: l = [2,1,1,0] -> sum l(L-l) = 0+1+1+0 = 2 -> 2/(4*4)
    assert diversity(p, y, [0, 1], "KW") == pytest.approx(2 / 16)
    # GD: failures f = [0,1,1,2]; p1 = (0+1+1+2)/(4*2) = 0.5; p2 = (2*1)/(4*2*1) = 0.25
    assert diversity(p, y, [0, 1], "GD") == pytest.approx(1 - 0.25 / 0.5)
    # CK on labels a=[0,0,1,1], b=[0,1,0,1]: po = 0.5, pe = 0.5*0.5+0.5*0.5 = 0.5 -> kappa 0
    assert diversity(p, y, [0, 1], "CK") == pytest.approx(1.0)


def test_identical_members_have_no_diversity():
    p = one_hot_pool([[0, 1, 2, 0], [0, 1, 2, 0]])
    y = np.array([0, 1, 1, 1])
    for metric in METRICS:
        assert diversity(p, y, [0, 1], metric) == pytest.approx(0.0), metric


def test_focal_diversity_uses_the_focal_members_negatives():
    # member 0 wrong on samples 2,3; member 1 wrong on 1,3; member 2 wrong on 3 only
    p = one_hot_pool([[0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]])
    y = np.zeros(4, dtype=int)
    manual = []
    for negatives in ([2, 3], [1, 3], [3]):  # of focal members 0, 1, 2
        wrong = np.array([[p[m, n].argmax() != 0 for n in negatives] for m in range(3)])
        fails = wrong.sum(axis=0)
        frac = np.bincount(fails, minlength=4) / len(negatives)
        i = np.arange(4)
        p1, p2 = np.sum(i / 3 * frac), np.sum(i * (i - 1) / 6 * frac)
        manual.append(1 - p2 / p1)
    assert focal_diversity(p, y, [0, 1, 2]) == pytest.approx(np.mean(manual))


@pytest.mark.parametrize("metric", METRICS)
def test_focal_diversity_of_every_team_equals_the_definition(small_pool, metric):
    p, y = small_pool
    fast = focal_diversity_all(p, y, metric)
    for t in range(1, 1 << len(p)):
        if bin(t).count("1") < 2:
            assert np.isnan(fast[t])
        else:
            assert fast[t] == pytest.approx(focal_diversity(p, y, t, metric), abs=1e-12), t


def test_prediction_diversity_definition():
    p = one_hot_pool([[0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1]])
    y = np.zeros(4, dtype=int)
    errors = [0.5, 0.75, 1.0]
    preds = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 1]])
    expected = np.mean(
        [
            np.mean(preds[i] != preds[j]) / max(errors[i], errors[j])
            for i, j in combinations(range(3), 2)
        ]
    )
    assert prediction_diversity(p, y) == pytest.approx(100 * expected)


def test_parameter_cosine_similarity_leaves_out_the_head_and_bn_statistics():
    a = {
        "conv.weight": np.array([1.0, 0.0]),
        "head.weight": np.array([5.0]),
        "bn.running_mean": np.array([3.0]),
    }
    b = {
        "conv.weight": np.array([1.0, 1.0]),
        "head.weight": np.array([-5.0]),
        "bn.running_mean": np.array([-3.0]),
    }
    assert parameter_cosine_similarity(a, b) == pytest.approx(1 / np.sqrt(2))
    with pytest.raises(ParameterError, match="different parameter names"):
        parameter_cosine_similarity(a, {"other.weight": np.ones(2)})


def test_diversity_errors():
    p = one_hot_pool([[0, 1], [1, 0]])
    with pytest.raises(ParameterError, match="at least two members"):
        diversity(p, np.array([0, 1]), [0])
    with pytest.raises(ParameterError, match="Unknown diversity metric"):
        diversity(p, np.array([0, 1]), [0, 1], "XX")


def literal_parity(p, y, metric, samples=100, draws=3, seed=2021):
    """EnsembleBench's procedure written out loop by loop (see focal_diversity_parity)."""
    m = len(p)
    preds = p.argmax(axis=2)
    wrong = preds != y
    acc = (~wrong).mean(axis=1)
    teams = [t for t in range(1 << m) if bin(t).count("1") >= 2]
    raw = {}
    for f in range(m):
        negatives = np.nonzero(wrong[f])[0]
        rng = np.random.default_rng([seed, f])
        picks = [rng.choice(negatives, samples, replace=True) for _ in range(draws)]
        for t in teams:
            if t >> f & 1:
                team = list(members_of(t))
                scores = []
                for idx in picks:
                    if metric == "QS":
                        scores.append(None)
                        o = ~wrong[team][:, idx]
                        qs = []
                        for i, j in combinations(range(len(team)), 2):
                            a, b = o[i], o[j]
                            n11, n00 = np.sum(a & b), np.sum(~a & ~b)
                            n10, n01 = np.sum(a & ~b), np.sum(~a & b)
                            den = n11 * n00 + n01 * n10
                            qs.append((n11 * n00 - n01 * n10) / den if den else 0.0)
                        scores[-1] = np.mean(qs)
                    else:
                        scores.append(1 - diversity(p[:, idx], y[idx], team, metric))
                raw[f, t] = np.mean(scores)
    scaled = dict(raw)
    for f in range(m):
        for s in range(2, m + 1):
            keys = [(f, t) for t in teams if t >> f & 1 and bin(t).count("1") == s]
            vals = np.array([raw[k] for k in keys])
            if vals.max() > vals.min():
                for k, v in zip(keys, (vals - vals.min()) / (vals.max() - vals.min()), strict=True):
                    scaled[k] = v
    out = {}
    for t in teams:
        team = members_of(t)
        w = np.argsort(acc[list(team)])
        out[t] = np.average([scaled[f, t] for f in team], weights=w)
    return out


@pytest.mark.parametrize("metric", METRICS)
def test_ensemblebench_parity_follows_their_procedure(metric):
    from lrensemble.ensemble import focal_diversity_parity
    from tests.ensemble.conftest import random_pool

    p, y = random_pool(21, 4, 150, 3)
    fast = focal_diversity_parity(p, y, metric)
    expected = literal_parity(p, y, metric)
    for t, v in expected.items():
        assert fast[t] == pytest.approx(v, abs=1e-12), (metric, t)
    assert np.isnan(fast[1])


def test_focal_selection_with_parity_picks_their_most_diverse_team():
    from lrensemble.ensemble import focal_diversity_parity, select
    from tests.ensemble.conftest import random_pool

    p, y = random_pool(22, 5, 120, 3)
    scores = focal_diversity_parity(p, y)
    result = select("focal", p, y, size=3, parity=True)
    best = min(scores[t] for t in range(32) if bin(t).count("1") == 3)
    assert result.details["diversity"] == pytest.approx(best)
