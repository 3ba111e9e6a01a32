"""Metrics of a (combined) prediction: accuracy, NLL, ECE (15 bins), Brier."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from lrensemble.arrays import check_labels, check_probs
from lrensemble.ensemble.consensus import combine, plurality_vote

NLL_CLIP = 1e-12
ECE_BINS = 15


def accuracy(p: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose argmax (ties to the lowest index) is the label."""
    return float(np.mean(np.argmax(p, axis=1) == labels)) if len(labels) else float("nan")


def nll(p: np.ndarray, labels: np.ndarray) -> float:
    """Mean −log p(y), probabilities clipped at 1e-12."""
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], NLL_CLIP, None))))


def ece(p: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: Σ_b |B_b|/N · |acc_b − conf_b| over equal-width confidence
    bins (a confidence of exactly 0 falls in the first bin, of 1 in the last)."""
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == labels
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def brier(p: np.ndarray, labels: np.ndarray) -> float:
    """Mean over samples of Σ_c (p_c − 1[y = c])²."""
    onehot = np.zeros_like(p)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def prediction_metrics(p: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """All four metrics of one probability matrix (N, C)."""
    p, y = check_probs(p, labels)
    return {
        "accuracy": accuracy(p[0], y),
        "nll": nll(p[0], y),
        "ece": ece(p[0], y),
        "brier": brier(p[0], y),
    }


def team_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    team: Iterable[int] | None = None,
    weights: Sequence[float] | None = None,
    voting: str = "soft",
) -> dict[str, float]:
    """Metrics of a team's consensus. Under plurality voting, accuracy is the vote's and NLL,
    ECE and Brier describe the soft vote of the same team (a hard vote has no useful NLL)."""
    p, y = check_probs(probs, labels)
    soft = combine(p, team, weights, "soft")
    out = {
        "accuracy": accuracy(soft, y),
        "nll": nll(soft, y),
        "ece": ece(soft, y),
        "brier": brier(soft, y),
    }
    if voting == "plurality":
        out["accuracy"] = float(np.mean(plurality_vote(p, team, weights) == y))
    elif voting != "soft":
        combine(p, team, weights, voting)  # raises the unknown-voting error
    return out


def member_metrics(probs: np.ndarray, labels: np.ndarray) -> list[dict[str, float]]:
    """Metrics of every member on its own: a list of M dicts."""
    p, y = check_probs(probs, labels)
    return [
        {"accuracy": accuracy(m, y), "nll": nll(m, y), "ece": ece(m, y), "brier": brier(m, y)}
        for m in p
    ]


__all__ = [
    "accuracy",
    "brier",
    "check_labels",
    "ece",
    "member_metrics",
    "nll",
    "prediction_metrics",
    "team_metrics",
]
