"""Small random pools, some with exact ties, for checking fast paths against definitions."""

from __future__ import annotations

import numpy as np
import pytest


def random_pool(seed: int, m: int, n: int, c: int, kind: str = "plain"):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    z = rng.normal(size=(m, n, c)) * 2
    z[:, np.arange(n), y] += rng.uniform(0, 3, n)
    p = np.exp(z)
    p /= p.sum(axis=2, keepdims=True)
    if kind == "duplicates":
        p[1] = p[0]
    elif kind == "uniform":
        p[:, : n // 3] = 1.0 / c
    elif kind == "coarse":
        p = np.round(p, 1) + 1e-3
        p /= p.sum(axis=2, keepdims=True)
    return p, y


KINDS = ["plain", "duplicates", "uniform", "coarse"]


@pytest.fixture(params=[(s, k) for s in range(4) for k in KINDS], ids=lambda v: f"{v[1]}-{v[0]}")
def small_pool(request):
    seed, kind = request.param
    rng = np.random.default_rng(100 + seed)
    m, n, c = int(rng.integers(2, 8)), int(rng.integers(10, 80)), int(rng.integers(2, 7))
    return random_pool(seed, m, n, c, kind)
