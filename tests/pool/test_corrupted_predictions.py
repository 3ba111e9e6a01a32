"""Predictions on corrupted test sets cached in a pool: a round trip, the pairs cached for
every member, shapes and values checked, damaged or missing files one sentence, and pools
without them read as before."""

from __future__ import annotations

import numpy as np
import pytest

from lrensemble.arrays import ShapeError
from lrensemble.errors import DataError, ParameterError
from lrensemble.pool import Pool

N_VAL, N_TEST, C = 6, 8, 3


def probs(n: int, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).random((n, C)).astype(np.float32) + 0.1
    return p / p.sum(axis=1, keepdims=True)


@pytest.fixture
def pool(tmp_path):
    rng = np.random.default_rng(0)
    labels = {"val": rng.integers(0, C, N_VAL), "test": rng.integers(0, C, N_TEST)}
    p = Pool.create(tmp_path / "pool", labels, C, "synthetic")
    for i, member in enumerate(("a", "b")):
        p.add_member(member, {"val": probs(N_VAL, i), "test": probs(N_TEST, i)}, {})
    return p


def test_round_trip_and_the_pairs_cached_for_every_member(pool):
    assert pool.corruptions() == []  # a pool without any reads as before
    pa, pb = probs(N_TEST, 10), probs(N_TEST, 11)
    path = pool.add_corrupted("a", "shift", 3, pa)
    assert path == pool.root / "members" / "a" / "corrupt" / "shift-3-seed0.npy"
    assert pool.corruptions() == [] and pool.corruptions(["a"]) == [("shift", 3)]
    pool.add_corrupted("b", "shift", 3, pb)
    pool.add_corrupted("b", "offset", 1, pb)
    pool.add_corrupted("a", "offset", 1, pa, seed=2)  # another seed: another set
    assert pool.corruptions() == [("shift", 3)]
    assert pool.corruptions(seed=2) == [] and pool.corruptions(["a"], seed=2) == [("offset", 1)]
    got = pool.corrupted("shift", 3)
    assert got.shape == (2, N_TEST, C) and got.dtype == np.float32
    np.testing.assert_allclose(got, np.stack([pa, pb]), rtol=1e-6)
    np.testing.assert_allclose(pool.corrupted("shift", 3, ["b", "a"])[0], pb, rtol=1e-6)
    pool.add_corrupted("a", "shift", 3, pb)  # replaced
    np.testing.assert_allclose(pool.corrupted("shift", 3, ["a"])[0], pb, rtol=1e-6)
    reopened = Pool.open(pool.root)
    assert reopened.info["format"] == 1 and reopened.corruptions() == [("shift", 3)]
    assert reopened.member_ids() == ["a", "b"]


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        (("a", "shift", 3, np.ones((N_TEST, C + 1)) / (C + 1)), ShapeError, "expects"),
        (("a", "shift", 3, np.full((N_TEST, C), 0.5)), ParameterError, "not probabilities"),
        (("nobody", "shift", 3, probs(N_TEST, 0)), ParameterError, "no member"),
        (("a", "../x", 3, probs(N_TEST, 0)), ParameterError, "corruption name"),
        (("a", "Shift", 3, probs(N_TEST, 0)), ParameterError, "corruption name"),
        (("a", "shift", 0, probs(N_TEST, 0)), ParameterError, "severity"),
        (("a", "shift", 2.5, probs(N_TEST, 0)), ParameterError, "severity"),
    ],
)
def test_bad_predictions_are_refused_and_nothing_is_written(pool, args, error, words):
    with pytest.raises(error, match=words):
        pool.add_corrupted(*args)
    assert not (pool.root / "members" / "a" / "corrupt").exists()


def test_missing_and_damaged_files_are_one_sentence(pool):
    pool.add_corrupted("a", "shift", 3, probs(N_TEST, 1))
    with pytest.raises(DataError, match=r"member b are not cached.*lrens evaluate --corruptions"):
        pool.corrupted("shift", 3)
    path = pool.add_corrupted("b", "shift", 3, probs(N_TEST, 2))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match="unreadable or truncated"):
        pool.corrupted("shift", 3)
    np.save(path, np.zeros((N_TEST, C + 1), np.float32))
    with pytest.raises(DataError, match="delete it to compute it again"):
        pool.corrupted("shift", 3)
    assert pool.corruptions() == [("shift", 3)]  # listed: the file is there, if damaged
