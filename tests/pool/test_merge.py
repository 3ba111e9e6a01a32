"""`merge_pools` and `lrens pool merge`: agreement checks, duplicates, conflicts, kills, reruns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrensemble.errors import DataError
from lrensemble.pool import Pool, merge_pools
from tests.cli.test_cli import run

LABELS = {"val": np.array([0, 1, 2, 1]), "test": np.array([2, 2, 0])}


def probs(seed, n=None):
    rng = np.random.default_rng(seed)
    sizes = {"val": 4, "test": 3} if n is None else n
    return {s: rng.dirichlet(np.ones(3), size=k).astype(np.float32) for s, k in sizes.items()}


def make(root, members, labels=LABELS, classes=3):
    """A pool with `members`: {id: (seed, record)}."""
    pool = Pool.create(root, labels, classes, dataset="toy")
    for member, (seed, record) in members.items():
        pool.add_member(member, probs(seed, {s: len(y) for s, y in labels.items()}), record)
    return pool


def snapshot(root):
    """Every file under `root` with its bytes, to show that nothing changed."""
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def two(tmp_path):
    a = make(tmp_path / "a", {"m1": (1, {"fingerprint": "f1"}), "m2": (2, {"fingerprint": "f2"})})
    b = make(tmp_path / "b", {"m3": (3, {"fingerprint": "f3"})})
    return a, b


def test_disjoint_pools_merge_with_predictions_and_weights(two, tmp_path):
    a, b = two
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"weights")
    b.add_member("m4", probs(4), {}, weights=weights)
    result = merge_pools([a.root, b.root], tmp_path / "out")
    assert result.added == ["m1", "m2", "m3", "m4"] and result.total == 4
    assert (result.duplicates, result.incomplete) == (0, 0)
    out = Pool.open(tmp_path / "out")
    assert out.info["labels_sha256"] == a.info["labels_sha256"]
    np.testing.assert_array_equal(out.probs("val", ["m3"]), b.probs("val", ["m3"]))
    assert out.member("m1")["fingerprint"] == "f1"
    assert (out.root / "members" / "m4" / "model.safetensors").read_bytes() == b"weights"


def test_identical_members_are_skipped_by_fingerprint_or_predictions(two, tmp_path):
    a, b = two
    b.add_member("m1", probs(99), {"fingerprint": "f1"})  # same fingerprint: the same member
    a.add_member("p", probs(5), {})  # no fingerprints: identical predictions
    b.add_member("p", probs(5), {})
    result = merge_pools([a.root, b.root], tmp_path / "out")
    assert sorted(result.added) == ["m1", "m2", "m3", "p"] and result.duplicates == 2


def test_a_conflicting_member_is_an_error_unless_renamed(two, tmp_path):
    a, b = two
    b.add_member("m1", probs(7), {"fingerprint": "other"})
    before = snapshot(tmp_path)
    with pytest.raises(DataError, match=r"Member 'm1' differs between the pools .*a and .*b"):
        merge_pools([a.root, b.root], tmp_path / "out")
    assert snapshot(tmp_path) == before and not (tmp_path / "out").exists()
    result = merge_pools([a.root, b.root], tmp_path / "out", rename=True)
    assert result.renamed == {"m1.1": "m1"} and result.total == 4
    out = Pool.open(tmp_path / "out")
    assert out.member("m1.1")["fingerprint"] == "other"
    assert out.member("m1.1")["id"] == "m1.1"
    again = merge_pools([a.root, b.root], tmp_path / "out", rename=True)
    assert again.added == [] and again.duplicates == 4 and again.total == 4


@pytest.mark.parametrize(
    ("labels", "classes", "match"),
    [
        ({"val": [0, 1, 2, 2], "test": [2, 2, 0]}, 3, "different val labels"),
        ({"val": [0, 1, 2, 1]}, 3, "different splits"),
        ({"val": [0, 1, 2, 1, 0], "test": [2, 2, 0]}, 3, "different splits"),
        (LABELS, 4, "different numbers of classes"),
    ],
)
def test_pools_that_disagree_are_refused_and_nothing_is_written(
    two, tmp_path, labels, classes, match
):
    a, _ = two
    c = make(
        tmp_path / "c", {}, labels={s: np.array(y) for s, y in labels.items()}, classes=classes
    )
    before = snapshot(tmp_path)
    with pytest.raises(DataError, match=f"The pools .*a and .*c have {match}"):
        merge_pools([a.root, c.root], tmp_path / "out")
    with pytest.raises(DataError, match=match):
        merge_pools([c.root], a.root)  # against an existing out
    assert snapshot(tmp_path) == before


def test_out_may_be_a_source_and_incomplete_members_are_skipped(two, tmp_path):
    a, b = two
    b.add_member("bad", probs(8), {"status": "diverged"})
    source = snapshot(b.root)
    result = merge_pools([a.root, b.root], a.root)
    assert result.added == ["m3"] and result.incomplete == 1 and result.duplicates == 0
    assert Pool.open(a.root).member_ids() == ["m1", "m2", "m3"] and result.total == 3
    assert snapshot(b.root) == source


def test_a_merge_killed_midway_leaves_whole_members_and_a_rerun_completes(
    two, tmp_path, monkeypatch
):
    a, b = two
    real, calls = Pool.add_member, []

    def dying(self, *args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(args[0])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Pool, "add_member", dying)
    with pytest.raises(KeyboardInterrupt):
        merge_pools([a.root, b.root], tmp_path / "out")
    monkeypatch.undo()
    out = Pool.open(tmp_path / "out")
    assert out.member_ids(status=None) == ["m1"]
    out.probs("val"), out.probs("test")  # whole members only
    result = merge_pools([a.root, b.root], tmp_path / "out")
    assert result.added == ["m2", "m3"] and result.duplicates == 1 and result.total == 3
    rerun = merge_pools([a.root, b.root], tmp_path / "out")
    assert rerun.added == [] and rerun.duplicates == 3 and rerun.total == 3


def test_cli_prints_one_line_or_json_and_errors_exit_2(two, tmp_path, capsys):
    a, b = two
    out = str(tmp_path / "out")
    code, text, _ = run(capsys, "pool", "merge", str(a.root), str(b.root), "--out", out)
    assert code == 0
    assert text.strip() == (
        f"pool {out}: added 3 members, skipped 0 duplicates and 0 incomplete; 3 members in all"
    )
    code, text, _ = run(capsys, "pool", "merge", str(a.root), str(b.root), "--out", out, "--json")
    data = json.loads(text)
    assert code == 0 and (data["added"], data["duplicates"], data["total"]) == (0, 3, 3)
    assert set(data) == {
        "out",
        "sources",
        "added",
        "duplicates",
        "incomplete",
        "total",
        "added_ids",
        "renamed",
    }
    b.add_member("m1", probs(7), {"fingerprint": "other"})
    code, text, err = run(capsys, "pool", "merge", str(b.root), "--out", out)
    assert code == 2 and "error: Member 'm1' differs" in err and "--rename" in err
    assert len(err.strip().splitlines()) == 1
    code, text, _ = run(capsys, "pool", "merge", str(b.root), "--out", out, "--rename", "--json")
    assert code == 0 and json.loads(text)["renamed"] == {"m1.1": "m1"}
    c = make(tmp_path / "c", {}, classes=4)
    code, _, err = run(capsys, "pool", "merge", str(c.root), "--out", out)
    assert code == 2 and "different numbers of classes" in err
    code, _, err = run(capsys, "pool", "merge", str(tmp_path / "nowhere"), "--out", out)
    assert code == 2 and "does not exist" in err
