"""Checks of prediction arrays: shapes, label ranges, finite probabilities that sum to 1.

Probabilities are (M members, N samples, C classes) and labels (N,), numpy alone. These checks
sit below both the pool (the file format) and `lrensemble.ensemble` (selection), which use them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrensemble.errors import ParameterError

SUM_TOLERANCE = 1e-3


class ShapeError(ParameterError):
    """Arrays whose shapes disagree."""


def check_labels(labels: Any, n: int | None = None, num_classes: int | None = None) -> np.ndarray:
    """Labels as an int64 array (N,), checked against N and the number of classes."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ShapeError(f"labels must be a 1-D array, got shape {y.shape}.")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ParameterError("labels must be integer class indices.")
    elif y.dtype.kind not in "iu":
        raise ParameterError(f"labels must be integer class indices, got dtype {y.dtype}.")
    y = y.astype(np.int64)
    if n is not None and len(y) != n:
        raise ShapeError(f"There are {len(y)} labels for {n} samples.")
    if num_classes is not None and len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ParameterError(
            f"labels must lie in [0, {num_classes}), found {y.min()} to {y.max()}."
        )
    return y


def check_probs(
    probs: Any, labels: Any = None, tolerance: float = SUM_TOLERANCE
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate probabilities (M, N, C) (or one member's (N, C)) and optional labels (N,).

    Probabilities must be finite, in [0, 1] and sum to 1 over classes within `tolerance`;
    logits are refused (convert them explicitly with `softmax`).
    Returns float64 probabilities (M, N, C) and int64 labels (or None).
    """
    p = np.asarray(probs)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3:
        raise ShapeError(
            f"probabilities must have shape (members, samples, classes), got {p.shape}."
        )
    if p.dtype.kind not in "fiu":
        raise ParameterError(f"probabilities must be numbers, got dtype {p.dtype}.")
    m, n, c = p.shape
    if m == 0 or c < 2:
        raise ShapeError(f"need at least one member and two classes, got shape {p.shape}.")
    p = p.astype(np.float64, copy=False)
    if not np.all(np.isfinite(p)):
        raise ParameterError("probabilities contain NaN or infinite values.")
    if p.min(initial=0.0) < -tolerance or p.max(initial=0.0) > 1 + tolerance:
        raise ParameterError(
            "probabilities must lie in [0, 1]; these look like logits: convert them with "
            "lrensemble.ensemble.softmax first."
        )
    sums = p.sum(axis=2)
    worst = np.abs(sums - 1.0).max(initial=0.0)
    if worst > tolerance:
        member = int(np.unravel_index(np.abs(sums - 1.0).argmax(), sums.shape)[0])
        raise ParameterError(
            f"probabilities of member {member} do not sum to 1 (off by up to {worst:.3g}); "
            "logits must be converted with lrensemble.ensemble.softmax."
        )
    y = None if labels is None else check_labels(labels, n, c)
    return p, y


def softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax: the explicit conversion of logits to probabilities."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)
