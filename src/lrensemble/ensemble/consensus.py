"""Combining a team's predictions: soft voting (weighted or not) and plurality voting."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from lrensemble.arrays import check_probs
from lrensemble.ensemble.checks import check_team, check_weights
from lrensemble.errors import ParameterError

VOTING = ("soft", "plurality")


def soft_vote(
    probs: np.ndarray, team: Iterable[int] | None = None, weights: Sequence[float] | None = None
) -> np.ndarray:
    """Mean (or weighted mean) of the team members' probabilities: (N, C).

    The predicted class is its argmax (ties to the lowest class index, as `np.argmax`).
    """
    p, _ = check_probs(probs)
    members = check_team(range(len(p)) if team is None else team, len(p), allow_repeats=True)
    w = check_weights(weights, len(members))
    sub = p[list(members)]
    return sub.mean(axis=0) if w is None else np.tensordot(w, sub, axes=1)


def plurality_vote(
    probs: np.ndarray, team: Iterable[int] | None = None, weights: Sequence[float] | None = None
) -> np.ndarray:
    """Each member votes its argmax (with its weight); the class with most votes wins; a tie
    goes to the tied class with the highest mean probability, then the lowest index.
    Returns predicted labels (N,)."""
    p, _ = check_probs(probs)
    members = check_team(range(len(p)) if team is None else team, len(p), allow_repeats=True)
    w = check_weights(weights, len(members))
    w = np.full(len(members), 1.0 / len(members)) if w is None else w
    sub = p[list(members)]
    n, c = sub.shape[1:]
    votes = np.zeros((n, c))
    for weight, member in zip(w, sub, strict=True):
        votes[np.arange(n), member.argmax(1)] += weight
    tied = np.isclose(votes, votes.max(axis=1, keepdims=True), rtol=0, atol=1e-12)
    mean = np.tensordot(w, sub, axes=1)
    return np.where(tied, mean, -np.inf).argmax(axis=1)


def combine(
    probs: np.ndarray,
    team: Iterable[int] | None = None,
    weights: Sequence[float] | None = None,
    voting: str = "soft",
) -> np.ndarray:
    """Combined probabilities (N, C) of a team. For plurality voting, the one-hot of the voted
    class (calibration metrics then describe hard votes)."""
    if voting == "soft":
        return soft_vote(probs, team, weights)
    if voting == "plurality":
        labels = plurality_vote(probs, team, weights)
        c = np.asarray(probs).shape[-1]
        return np.eye(c)[labels]
    raise ParameterError(f"Unknown voting {voting!r}; use one of {', '.join(VOTING)}.")
