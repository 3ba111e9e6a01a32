"""The on-disk pool: creation, members, reading back, imports and damaged files."""

from __future__ import annotations

import json
import re

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


def snapshot(root):
    """Every path under `root` with its bytes, to show that nothing changed."""
    return {str(p.relative_to(root)): p.is_file() and p.read_bytes() for p in root.rglob("*")}


@pytest.fixture
def npy_files(tmp_path):
    """Labels (4 classes) and logits of two good members, resnet and vit."""
    rng = np.random.default_rng(0)
    yv, yt = rng.integers(0, 4, 30), rng.integers(0, 4, 20)
    np.save(tmp_path / "yv.npy", yv)
    np.save(tmp_path / "yt.npy", yt)
    (tmp_path / "preds").mkdir()
    for name in ("resnet", "vit"):
        for split, y in (("val", yv), ("test", yt)):
            np.save(tmp_path / "preds" / f"{name}_{split}.npy", rng.normal(size=(len(y), 4)))
    return (
        {"val": tmp_path / "yv.npy", "test": tmp_path / "yt.npy"},
        str(tmp_path / "preds" / "{member}_{split}.npy"),
    )


BAD_FILES = [  # a file of member zz (imported after the good ones): content, error, words
    ("zz_val.npy", np.zeros((30, 5)), ShapeError, "disagree on the number of classes"),
    ("zz_val.npy", np.zeros((29, 4)), ShapeError, "the val labels ask for (30, classes)"),
    ("zz_test.npy", np.zeros(20), ShapeError, "has shape (20,)"),
    ("zz_test.npy", np.array([["a"] * 4] * 20), ParameterError, "must be numbers"),
    ("zz_val.npy", np.full((30, 4), np.inf), ParameterError, "NaN or infinite logits"),
    ("zz_test.npy", b"\x93NUMPY truncated", DataError, "unreadable or truncated"),
    ("zz_test.npy", None, DataError, "is missing"),
]


@pytest.mark.parametrize(("name", "content", "error", "words"), BAD_FILES)
def test_a_bad_prediction_file_imports_nothing_and_is_named(
    npy_files, tmp_path, name, content, error, words
):
    labels, pattern = npy_files
    import_predictions(tmp_path / "existing", labels, pattern, logits=True)
    before = snapshot(tmp_path / "existing")
    preds = tmp_path / "preds"
    for member in ("new", "zz"):  # a new good member, and zz: good but for one file
        np.save(preds / f"{member}_val.npy", np.zeros((30, 4)))
        np.save(preds / f"{member}_test.npy", np.zeros((20, 4)))
    if content is None:
        (preds / name).unlink()
    elif isinstance(content, bytes):
        (preds / name).write_bytes(content)
    else:
        np.save(preds / name, content)
    for root in ("fresh", "existing"):
        with pytest.raises(error, match=re.escape(words)) as caught:
            import_predictions(tmp_path / root, labels, pattern, logits=True)
        assert name in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "fresh").exists()
    assert snapshot(tmp_path / "existing") == before


def test_the_class_count_comes_from_the_files_and_a_fixed_import_succeeds(npy_files, tmp_path):
    labels, pattern = npy_files
    np.save(tmp_path / "preds" / "resnet_test.npy", np.zeros((20, 3)))  # 3 classes, vit 4
    with pytest.raises(ShapeError, match=r"resnet_test\.npy has 3"):
        import_predictions(tmp_path / "pool", labels, pattern, logits=True)
    np.save(tmp_path / "preds" / "resnet_test.npy", np.zeros((20, 4)))
    with pytest.raises(ShapeError, match="not the 5 asked for"):
        import_predictions(tmp_path / "pool", labels, pattern, logits=True, num_classes=5)
    assert not (tmp_path / "pool").exists()
    pool = import_predictions(tmp_path / "pool", labels, pattern, logits=True)
    assert pool.num_classes == 4 and pool.member_ids() == ["resnet", "vit"]


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        (np.array([0, 1, 4] * 10), "lie in [0, 4]; the predictions have 4 classes"),
        (np.array([-1, 1, 2] * 10), "lie in [-1, 2]"),
        (np.zeros((30, 2), dtype=int), "1-D array"),
        (np.full(30, 0.5), "integer class indices"),
    ],
)
def test_bad_labels_import_nothing(npy_files, tmp_path, labels, words):
    label_files, pattern = npy_files
    np.save(tmp_path / "yv.npy", labels)
    with pytest.raises(ParameterError, match=re.escape(words)) as caught:
        import_predictions(tmp_path / "pool", label_files, pattern, logits=True)
    assert "yv.npy" in str(caught.value)
    assert not (tmp_path / "pool").exists()


def test_an_import_into_a_pool_of_other_classes_says_so(npy_files, tmp_path):
    labels, pattern = npy_files
    Pool.create(tmp_path / "pool", {s: np.load(p) for s, p in labels.items()}, 5)
    before = snapshot(tmp_path / "pool")
    with pytest.raises(DataError, match="pool of 5 classes, not 4"):
        import_predictions(tmp_path / "pool", labels, pattern, logits=True)
    assert snapshot(tmp_path / "pool") == before


def test_a_pool_cannot_be_created_under_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        Pool.create(tmp_path / "f" / "pool", {"val": [0, 1]}, 2)
    with pytest.raises(DataError, match="is a file"):
        Pool.create(tmp_path / "f", {"val": [0, 1]}, 2)
    assert (tmp_path / "f").read_text() == "x"
