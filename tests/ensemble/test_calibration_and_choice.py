"""Temperature scaling and the choice of the ensemble to ship (`choose_ensemble`)."""

from __future__ import annotations

import numpy as np
import pytest

from lrensemble.ensemble import (
    EnsembleConfig,
    apply_temperature,
    choose_ensemble,
    fit_temperature,
    nll,
    select,
    validation_warnings,
)
from lrensemble.ensemble.calibration import MAX_TEMPERATURE, MIN_TEMPERATURE, temperature_nll
from lrensemble.errors import ParameterError


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sampled(n=4000, c=6, seed=0):
    """Labels drawn from softmax(logits): logits are calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)) * 2.5
    cdf = softmax(logits).cumsum(axis=1)
    y = (rng.random((n, 1)) > cdf).sum(axis=1)
    return logits, np.minimum(y, c - 1)


@pytest.mark.parametrize("true_t", [0.4, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_t):
    logits, y = sampled()
    # probabilities that are softmax(logits * true_t): rescaling by T = true_t undoes it
    p = softmax(logits * true_t)
    assert fit_temperature(p, y) == pytest.approx(true_t, rel=0.08)


def test_fitted_temperature_minimizes_nll():
    logits, y = sampled(seed=1)
    p = softmax(logits / 3)
    t = fit_temperature(p, y)
    best = temperature_nll(p, y, t)
    for other in (t * 0.9, t * 1.1, 1.0):
        assert temperature_nll(p, y, other) >= best - 1e-9


def test_apply_temperature_keeps_the_argmax_and_sums_to_one():
    p = softmax(np.random.default_rng(0).normal(size=(50, 4)))
    for t in (0.3, 1.0, 4.0):
        q = apply_temperature(p, t)
        assert np.allclose(q.sum(axis=1), 1.0)
        assert np.array_equal(q.argmax(axis=1), p.argmax(axis=1))
    assert np.array_equal(apply_temperature(p, 1.0), p)
    with pytest.raises(ParameterError, match="positive"):
        apply_temperature(p, 0.0)


def test_a_perfectly_separated_set_reaches_the_bound():
    p = np.array([[0.6, 0.4], [0.3, 0.7]])
    assert fit_temperature(p, np.array([0, 1])) == MIN_TEMPERATURE
    assert fit_temperature(p, np.array([1, 0])) == MAX_TEMPERATURE


def pool(accuracies, n=300, c=5, seed=0, margin=1.5):
    """Members (M, N, C) whose argmax is right on about `accuracies[m]` of the samples."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    out = []
    for acc in accuracies:
        z = rng.normal(size=(n, c))
        right = rng.random(n) < acc
        wrong = (y + rng.integers(1, c, n)) % c
        z[np.arange(n), np.where(right, y, wrong)] += margin + 3
        out.append(softmax(z / 2))
    return np.stack(out), y


def test_the_floor_is_relative_to_the_best_member():
    p, y = pool([0.95, 0.93, 0.9, 0.5, 0.3])
    team = choose_ensemble(p, y, list("abcde"), EnsembleConfig(method="focal"))
    assert set(team.candidates) == {"a", "b", "c"}
    assert {e["id"] for e in team.excluded} == {"d", "e"}
    assert set(team.members) <= {"a", "b", "c"}
    assert team.floor == pytest.approx(0.9 * (p[0].argmax(1) == y).mean())
    wide = choose_ensemble(
        p, y, list("abcde"), EnsembleConfig(min_relative_accuracy=0.0, min_accuracy=0.2)
    )
    assert len(wide.candidates) == 5


def test_saturated_validation_warns_and_greedy_still_builds_a_team():
    p, y = pool([1.0, 1.0, 1.0, 1.0, 0.97], n=140)
    warnings = validation_warnings(p, y)
    assert len(warnings) == 1 and "saturated" in warnings[0]
    assert "larger validation split" in warnings[0] and "--objective nll" not in warnings[0]
    assert "--objective nll" in validation_warnings(p, y, objective="accuracy")[0]
    team = choose_ensemble(p, y, list("abcde"))
    assert team.warnings[0] == warnings[0]
    # no errors on validation: temperature scaling cannot be fitted and is skipped, saying so
    assert team.temperature == 1.0 and "Temperature scaling" in team.warnings[1]
    # NLL breaks the accuracy ties: averaging lowers NLL, so the team grows past one member
    assert team.size > 1
    one = select("greedy", p[:4], y)
    assert one.details["val_nll"] <= nll(p[0], y) + 1e-12


def test_small_validation_warns():
    p, y = pool([0.97, 0.9, 0.85], n=100)
    warnings = validation_warnings(p, y)
    assert len(warnings) == 1 and "small" in warnings[0]
    q, yq = pool([0.8, 0.75, 0.7], n=1000)
    assert validation_warnings(q, yq) == []


@pytest.mark.parametrize("method", ["greedy", "brute_force", "focal", "hierarchical"])
def test_every_method_takes_the_nll_objective(method):
    """Under "nll" the team is the best by validation NLL among what the method compares:
    greedy's prefixes, brute force's teams, focal's most diverse team of each size."""

    p, y = pool([0.8, 0.78, 0.75, 0.7, 0.72, 0.74], seed=3)
    by_nll = select(method, p, y, objective="nll")
    assert by_nll.details["objective"] == "nll"
    if method == "greedy":
        assert by_nll.details["nll_path"][by_nll.details["prefix"] - 1] == pytest.approx(
            min(by_nll.details["nll_path"])
        )
    elif method == "brute_force":
        by_acc = select(method, p, y, objective="accuracy")
        assert by_nll.details["val_nll"] <= by_acc.details["val_nll"] + 1e-12
    else:
        per_size = by_nll.details["most_diverse_per_size"]
        nlls = [nll(p[list(v["members"])].mean(axis=0), y) for v in per_size.values()]
        assert by_nll.details["val_nll"] == pytest.approx(min(nlls))
    with pytest.raises(ParameterError, match="objective"):
        select(method, p, y, objective="auc")


def test_brute_force_nll_objective_is_the_exact_minimum():
    from itertools import combinations

    p, y = pool([0.8, 0.7, 0.75, 0.6, 0.72], seed=5)
    best = min(
        nll(p[list(t)].mean(axis=0), y) for s in range(1, 6) for t in combinations(range(5), s)
    )
    chosen = select("brute_force", p, y, objective="nll")
    assert chosen.details["val_nll"] == pytest.approx(best)


def test_calibration_fits_the_ensemble_and_optionally_each_member():
    p, y = pool([0.8, 0.78, 0.75], seed=2)
    ids = ["a", "b", "c"]
    raw = choose_ensemble(p, y, ids, EnsembleConfig(calibrate=False))
    assert raw.temperature == 1.0 and raw.member_temperatures == [1.0] * raw.size
    cal = choose_ensemble(p, y, ids)
    rows = [ids.index(m) for m in cal.members]
    assert cal.temperature == pytest.approx(fit_temperature(cal.combine(p[rows], False), y))
    assert nll(cal.combine(p[rows]), y) <= nll(cal.combine(p[rows], calibrated=False), y)
    both = choose_ensemble(p, y, ids, EnsembleConfig(calibrate_members=True))
    assert all(t != 1.0 for t in both.member_temperatures)


def test_a_given_team_is_kept_and_calibrated():
    p, y = pool([0.8, 0.78, 0.75])
    team = choose_ensemble(p, y, ["a", "b", "c"], members=["c", "a"], weights=[0.25, 0.75])
    assert team.members == ["c", "a"] and team.weights == [0.25, 0.75]
    expected = apply_temperature(0.25 * p[2] + 0.75 * p[0], team.temperature)
    assert np.allclose(team.combine(p[[2, 0]]), expected)
    with pytest.raises(ParameterError, match="Not members"):
        choose_ensemble(p, y, ["a", "b", "c"], members=["z"])
    with pytest.raises(ParameterError, match="2 weights for a team of 1"):
        choose_ensemble(p, y, ["a", "b", "c"], members=["a"], weights=[0.5, 0.5])


def test_members_at_chance_and_tiny_validation_splits_are_named():
    p, y = pool([0.22, 0.2, 0.21], n=300, c=5)
    assert "at chance" in validation_warnings(p, y)[0]
    q, yq = pool([0.6, 0.55, 0.5], n=40, c=5)
    warning = validation_warnings(q, yq)[0]
    assert "Validation is small: 40 samples" in warning


def test_an_extreme_temperature_is_named():
    logits, y = sampled(n=300, seed=4)
    p = softmax(logits / 30)  # far too soft: the fitted temperature is far below 1/10
    team = choose_ensemble(p[None], y, ["a"], members=["a"])
    assert team.temperature < 0.1
    assert any("extreme" in w for w in team.warnings)
