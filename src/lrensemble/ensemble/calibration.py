"""Temperature scaling (Guo et al., 2017) of probabilities, fitted on validation with numpy.

A temperature T turns probabilities p into softmax(log p / T): T > 1 softens overconfident
predictions, T < 1 sharpens underconfident ones (members trained with label smoothing, and the
average of several members, are underconfident). The argmax, hence accuracy, never changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrensemble.arrays import check_probs
from lrensemble.ensemble.metrics import NLL_CLIP
from lrensemble.errors import ParameterError

# β = 1/T is searched in [1/MAX_T, 1/MIN_T]: beyond these the fit is degenerate anyway.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0


def _log_probs(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, NLL_CLIP, None))


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def apply_temperature(probs: Any, temperature: float) -> np.ndarray:
    """softmax(log p / T) of probabilities (N, C) or (M, N, C); T = 1 returns them unchanged."""
    t = float(temperature)
    if not np.isfinite(t) or t <= 0:
        raise ParameterError(f"A temperature must be a positive number, got {temperature!r}.")
    p = np.asarray(probs, dtype=np.float64)
    if t == 1.0:
        return p
    return _softmax_rows(_log_probs(p) / t)


def temperature_nll(probs: Any, labels: Any, temperature: float) -> float:
    """NLL of the probabilities after scaling by `temperature`."""
    p, y = check_probs(probs, labels)
    q = apply_temperature(p[0], temperature)
    return float(-np.mean(np.log(np.clip(q[np.arange(len(y)), y], NLL_CLIP, None))))


def fit_temperature(probs: Any, labels: Any, iterations: int = 100) -> float:
    """The temperature that minimizes NLL on (probs (N, C), labels (N,)).

    With z = log p, NLL(β) = mean(logsumexp(β z) − β z_y) is convex in β = 1/T, and its
    derivative mean(E_softmax(βz)[z] − z_y) increases with β; the root is found by bisection on
    log β, which is exact to float precision and needs no step size. Returns a value in
    [0.01, 100] (the bound when NLL keeps falling beyond it, e.g. on a perfectly separated
    validation set).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> logits = rng.normal(size=(2000, 5)) * 3
        >>> y = np.array([rng.choice(5, p=np.exp(l) / np.exp(l).sum()) for l in logits])
        >>> p = np.exp(logits / 2) / np.exp(logits / 2).sum(1, keepdims=True)  # too soft by 2
        >>> round(fit_temperature(p, y), 1)
        0.5
    """
    p, y = check_probs(probs, labels)
    if len(y) == 0:
        raise ParameterError("Temperature scaling needs at least one validation sample.")
    z = _log_probs(p[0])
    zy = z[np.arange(len(y)), y]

    def slope(beta: float) -> float:
        q = _softmax_rows(beta * z)
        return float(np.mean((q * z).sum(axis=1) - zy))

    lo, hi = np.log(1.0 / MAX_TEMPERATURE), np.log(1.0 / MIN_TEMPERATURE)
    if slope(np.exp(lo)) >= 0:
        return MAX_TEMPERATURE
    if slope(np.exp(hi)) <= 0:
        return MIN_TEMPERATURE
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if slope(np.exp(mid)) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return float(1.0 / np.exp(0.5 * (lo + hi)))


__all__ = ["apply_temperature", "fit_temperature", "temperature_nll"]
