"""The on-disk pool: creation, members, reading back, imports and damaged files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lrensemble.ensemble import ShapeError
from lrensemble.errors import DataError, ParameterError
from lrensemble.pool import Pool, import_predictions


def probs(n, c, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(c), size=n)
    return p.astype(np.float32)


@pytest.fixture
def pool(tmp_path):
    labels = {"val": np.array([0, 1, 2, 1]), "test": np.array([2, 2, 0])}
    return Pool.create(tmp_path / "pool", labels, num_classes=3, dataset="toy")


def test_create_writes_the_documented_layout(pool):
    info = json.loads((pool.root / "pool.json").read_text())
    assert info["format"] == 1 and info["num_classes"] == 3
    assert info["splits"] == {"val": 4, "test": 3}
    assert info["dataset"] == {"name": "toy"}
    assert np.load(pool.root / "labels" / "val.npy").tolist() == [0, 1, 2, 1]


def test_members_round_trip_in_id_order(pool):
    for i, name in enumerate(["b", "a"]):
        pool.add_member(
            name,
            {"val": probs(4, 3, i), "test": probs(3, 3, 10 + i)},
            {"method": "train", "policy": {"name": "cosine", "max_lr": 0.1}},
        )
    again = Pool.open(pool.root)
    assert again.member_ids() == ["a", "b"]
    stacked = again.probs("val")
    assert stacked.shape == (2, 4, 3) and stacked.dtype == np.float32
    np.testing.assert_allclose(stacked[0], probs(4, 3, 1), rtol=1e-6)
    assert again.member("a")["policy"]["name"] == "cosine"
    assert again.member("a")["status"] == "complete"
    assert again.probs("test", ["b"]).shape == (1, 3, 3)


def test_create_again_opens_the_same_pool_and_refuses_other_labels(pool):
    same = Pool.create(pool.root, {"val": [0, 1, 2, 1], "test": [2, 2, 0]}, 3)
    assert same.info["labels_sha256"] == pool.info["labels_sha256"]
    with pytest.raises(DataError, match="other labels"):
        Pool.create(pool.root, {"val": [0, 0, 0, 0], "test": [2, 2, 0]}, 3)


def test_add_member_checks_everything_and_leaves_nothing_half_written(pool):
    good = {"val": probs(4, 3, 0), "test": probs(3, 3, 1)}
    with pytest.raises(ParameterError, match="lacks predictions for test"):
        pool.add_member("x", {"val": good["val"]}, {})
    with pytest.raises(ShapeError, match="expects"):
        pool.add_member("x", {"val": probs(5, 3, 0), "test": good["test"]}, {})
    with pytest.raises(ParameterError, match="logits"):
        pool.add_member("x", {"val": good["val"] * 5, "test": good["test"]}, {})
    with pytest.raises(ParameterError, match="Member id"):
        pool.add_member("../evil", good, {})
    assert pool.member_ids(status=None) == []
    assert not [p for p in (pool.root / "members").iterdir()]
    pool.add_member("x", good, {})
    with pytest.raises(ParameterError, match="already has a member"):
        pool.add_member("x", good, {})


def test_weights_file_is_copied(pool, tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"not really weights")
    pool.add_member("w", {"val": probs(4, 3, 0), "test": probs(3, 3, 1)}, {}, weights=weights)
    assert (pool.member_dir("w") / "model.safetensors").read_bytes() == b"not really weights"


def test_damaged_files_give_one_clear_error(pool):
    pool.add_member("m", {"val": probs(4, 3, 0), "test": probs(3, 3, 1)}, {})
    path = pool.member_dir("m") / "val.npy"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(
        DataError, match=r"val predictions of member m: .* is unreadable or truncated"
    ):
        pool.probs("val")
    np.save(pool.root / "labels" / "test.npy", np.array([0, 0, 0]))
    with pytest.raises(DataError, match="do not match their checksum"):
        Pool.open(pool.root).labels("test")
    (pool.root / "pool.json").write_text("{ truncated")
    with pytest.raises(DataError, match="unreadable or truncated"):
        Pool.open(pool.root)


def test_open_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        Pool.open(tmp_path / "nothing")
    with pytest.raises(DataError, match="is not a pool"):
        Pool.open(tmp_path)
    (tmp_path / "pool.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(DataError, match="format 99"):
        Pool.open(tmp_path)


def test_import_predictions_from_npy_files(tmp_path):
    rng = np.random.default_rng(0)
    yv, yt = rng.integers(0, 4, 30), rng.integers(0, 4, 20)
    np.save(tmp_path / "yv.npy", yv)
    np.save(tmp_path / "yt.npy", yt)
    (tmp_path / "preds").mkdir()
    for name in ("resnet", "vit-b.16"):
        for split, y in (("val", yv), ("test", yt)):
            np.save(tmp_path / "preds" / f"{name}_{split}.npy", rng.normal(size=(len(y), 4)))
    pattern = str(tmp_path / "preds" / "{member}_{split}.npy")
    labels = {"val": tmp_path / "yv.npy", "test": tmp_path / "yt.npy"}
    with pytest.raises(ParameterError, match="logits"):
        import_predictions(tmp_path / "pool", labels, pattern)
    pool = import_predictions(tmp_path / "pool", labels, pattern, logits=True)
    assert pool.member_ids() == ["resnet", "vit-b.16"]
    np.testing.assert_allclose(pool.probs("val").sum(axis=2), 1.0, rtol=1e-5)
    again = import_predictions(tmp_path / "pool", labels, pattern, logits=True)  # idempotent
    assert again.member_ids() == ["resnet", "vit-b.16"]
    with pytest.raises(DataError, match="No prediction files match"):
        import_predictions(tmp_path / "p2", labels, str(tmp_path / "x" / "{member}_{split}.npy"))
    with pytest.raises(ParameterError, match="needs both"):
        import_predictions(tmp_path / "p2", labels, "preds/{member}.npy")


def test_stale_staging_directories_are_removed_but_recent_ones_kept(pool):
    import os
    import time

    old = pool.root / "members" / ".m.old"
    recent = pool.root / "members" / ".m.recent"
    old.mkdir()
    recent.mkdir()
    os.utime(old, (time.time() - 1000, time.time() - 1000))
    assert pool.remove_stale_staging(older_than=120) == [".m.old"]
    assert recent.exists() and not old.exists()
