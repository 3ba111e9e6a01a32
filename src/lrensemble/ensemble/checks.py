"""Checks of selection arguments: teams, weights and sizes (array checks live in
`lrensemble.arrays`, shared with the pool)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from lrensemble.arrays import ShapeError
from lrensemble.errors import ParameterError


def check_team(
    team: Iterable[int] | int, m: int, *, allow_repeats: bool = False
) -> tuple[int, ...]:
    """A team as a tuple of member indices; an int is read as a bitmask."""
    if isinstance(team, (int, np.integer)) and not isinstance(team, bool):
        mask = int(team)
        if mask <= 0 or mask >= 1 << m:
            raise ParameterError(f"team bitmask {mask} is not a non-empty team of {m} members.")
        return tuple(i for i in range(m) if mask >> i & 1)
    members = tuple(int(i) for i in team)
    if not members:
        raise ParameterError("a team needs at least one member.")
    bad = [i for i in members if not 0 <= i < m]
    if bad:
        raise ParameterError(f"team members {bad} are out of range for a pool of {m}.")
    if not allow_repeats and len(set(members)) != len(members):
        raise ParameterError(f"team {list(members)} lists a member twice.")
    return members


def check_weights(weights: Sequence[float] | None, k: int) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (k,):
        raise ShapeError(f"{len(w)} weights for a team of {k}.")
    if not np.all(np.isfinite(w)) or w.min() < 0 or w.max() <= 0:
        raise ParameterError("weights must be finite, non-negative and not all zero.")
    w = w / w.max()  # first to at most 1: a sum of huge weights would overflow
    return w / w.sum()


def check_size(size: int | None, m: int, low: int = 1) -> int | None:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not low <= size <= m:
        raise ParameterError(f"team size must be an integer from {low} to {m}, got {size!r}.")
    return int(size)
