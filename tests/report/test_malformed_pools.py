"""Crafted and damaged pools read by `lrens pool show`, `lrens select` and `lrens report`:
valid JSON of the wrong shape in pool.json or member.json, split names that leave the pool,
links out of it, and damaged weights. Each is one sentence with exit 2 (or, for the optional
weights, a report that names the file), no traceback, and nothing changed or left behind."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lrensemble.pool import Pool
from tests.cli.test_cli import run

COMMANDS = (("pool", "show"), ("select",), ("report",))


@pytest.fixture(scope="module")
def good_pool(tmp_path_factory) -> Path:
    """A pool of 4 members (3 classes) with policies, epochs and timings, like a sweep's."""
    rng = np.random.default_rng(0)
    yv, yt = rng.integers(0, 3, 40), rng.integers(0, 3, 30)
    root = tmp_path_factory.mktemp("good") / "pool"
    pool = Pool.create(root, {"val": yv, "test": yt}, 3, dataset="toy")
    for i in range(4):
        probs = {}
        for split, y in (("val", yv), ("test", yt)):
            z = rng.normal(size=(len(y), 3))
            z[np.arange(len(y)), y] += 1.0 + i / 4
            probs[split] = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        record = {
            "method": "lr_tuning",
            "policy": {"name": "cosine", "max_lr": 0.1 * (i + 1)},
            "epochs": 2,
            "timings": {"train_seconds": 1.5},
            "metrics": {},
        }
        pool.add_member(f"m{i}", probs, record)
    return root


def edit_json(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A mutation that rewrites pool.json or m1's member.json with `change(parsed)`."""

    def mutate(root: Path) -> None:
        path = root / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return mutate


def info(**fields) -> Callable[[Path], None]:
    return edit_json("pool.json", lambda d: {**d, **fields})


def record(**fields) -> Callable[[Path], None]:
    return edit_json("members/m1/member.json", lambda d: {**d, **fields})


def rename_split(root: Path) -> None:
    path = root / "pool.json"
    d = json.loads(path.read_text())
    for key in ("splits", "labels_sha256"):
        d[key]["../../x"] = d[key].pop("test")
    path.write_text(json.dumps(d))


def link_member(root: Path) -> None:
    outside = root.parent / "elsewhere"
    shutil.copytree(root / "members" / "m1", outside)
    os.symlink(outside, root / "members" / "m5")


def link_file(root: Path) -> None:
    outside = root.parent / "elsewhere.npy"
    shutil.copy(root / "members" / "m1" / "val.npy", outside)
    (root / "members" / "m1" / "val.npy").unlink()
    os.symlink(outside, root / "members" / "m1" / "val.npy")


def link_members(root: Path) -> None:
    outside = root.parent / "members_elsewhere"
    shutil.move(root / "members", outside)
    os.symlink(outside, root / "members")


def link_labels(root: Path) -> None:
    outside = root.parent / "labels_elsewhere"
    shutil.move(root / "labels", outside)
    os.symlink(outside, root / "labels")


MALFORMED = {  # name: (mutation, words the sentence must hold, or a tuple of alternatives)
    "pool.json a list": (edit_json("pool.json", lambda d: [d]), "not an array"),
    "pool.json a number": (edit_json("pool.json", lambda d: 3), "JSON object"),
    "num_classes a string": (info(num_classes="3"), "'num_classes' must be a positive integer"),
    "num_classes 0": (info(num_classes=0), "'num_classes' must be a positive integer"),
    "num_classes 2.5": (info(num_classes=2.5), "'num_classes'"),
    "num_classes true": (info(num_classes=True), "'num_classes'"),
    "num_classes 2, members have 3": (info(num_classes=2), ("expects (40, 2)", "[0, 2)")),
    "num_classes 10**12": (info(num_classes=10**12), "expects (40, 1000000000000)"),
    "split size 10**12": (info(splits={"val": 10**12, "test": 30}), "expects (1000000000000, 3)"),
    "splits a list": (info(splits=["val", "test"]), "'splits' must be an object"),
    "split size negative": (info(splits={"val": -40, "test": 30}), "'splits.val'"),
    "split size 2.5": (info(splits={"val": 2.5, "test": 30}), "'splits.val'"),
    "split size a string": (info(splits={"val": "40", "test": 30}), "'splits.val'"),
    "split size wrong": (info(splits={"val": 41, "test": 30}), "val"),
    "split named ../../x": (rename_split, "split name '../../x' is not a simple name"),
    "labels_sha256 a string": (info(labels_sha256="abc"), "'labels_sha256'"),
    "labels_sha256 lacks test": (
        edit_json("pool.json", lambda d: {**d, "labels_sha256": {"val": "x"}}),
        "'labels_sha256'",
    ),
    "dataset a list": (info(dataset=["toy"]), "'dataset' must be an object"),
    "member.json a list": (edit_json("members/m1/member.json", lambda d: [d]), "an array"),
    "member.json a string": (edit_json("members/m1/member.json", lambda d: "x"), "a string"),
    "policy a string": (record(policy="cosine"), "'policy' must be an object"),
    "policy without name": (record(policy={"max_lr": 0.1}), "'policy' lacks its 'name'"),
    "max_lr a string": (record(policy={"name": "cosine", "max_lr": "0.1"}), "'policy.max_lr'"),
    "max_lr infinite": (record(policy={"name": "cosine", "max_lr": float("inf")}), "max_lr"),
    "epochs a string": (record(epochs="2"), "'epochs' must be a positive integer"),
    "epochs 0": (record(epochs=0), "'epochs'"),
    "timings a list": (record(timings=[1.5]), "'timings' must be an object"),
    "train_seconds a string": (
        record(timings={"train_seconds": "fast"}),
        "'timings.train_seconds' must be a non-negative number",
    ),
    "train_seconds negative": (record(timings={"train_seconds": -1}), "train_seconds"),
    "status a number": (record(status=3), "'status' must be a string"),
    "method a number": (record(method=3), "'method' must be a string or null"),
    "parent a list": (record(parent=["m0"]), "'parent' must be a string or null"),
    "snapshot a string": (record(snapshot="sse"), "'snapshot' must be an object"),
    "snapshot cycle a string": (record(snapshot={"cycle": "2"}), "integer cycle"),
    "metrics a list": (record(metrics=[0.5]), "'metrics'"),
    "member directory a link": (link_member, "is a symbolic link"),
    "member file a link outside": (link_file, "outside the pool"),
    "labels a link outside": (link_labels, "outside the pool"),
    "members/ a link outside": (link_members, "outside the pool"),
}


def snapshot(root: Path) -> dict[str, bytes | bool]:
    return {str(p.relative_to(root)): p.is_file() and p.read_bytes() for p in root.rglob("*")}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_pool_is_one_sentence_in_every_command(good_pool, tmp_path, capsys, case):
    mutate, words = MALFORMED[case]
    root = tmp_path / "pool"
    shutil.copytree(good_pool, root, symlinks=True)
    mutate(root)
    before = snapshot(tmp_path)
    for command in COMMANDS:
        code, _, err = run(capsys, *command, str(root))
        assert code == 2, (command, err)
        assert err.startswith("error: ") and err.count("\n") == 1, (command, err)
        assert any(w in err for w in ((words,) if isinstance(words, str) else words)), err
    assert snapshot(tmp_path) == before  # no report directory, nothing changed


def test_the_good_pool_passes_every_command(good_pool, tmp_path, capsys):
    root = tmp_path / "pool"
    shutil.copytree(good_pool, root)
    for command in COMMANDS:
        code, _, err = run(capsys, *command, str(root))
        assert code == 0, (command, err)
    assert (tmp_path / "report" / "report.md").exists()


def test_a_failed_pool_import_creates_nothing_and_names_the_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "yv.npy", rng.integers(0, 3, 20))
    (tmp_path / "preds").mkdir()
    for member, classes in (("a", 3), ("b", 3), ("c", 4)):  # c disagrees on the classes
        np.save(tmp_path / "preds" / f"{member}_val.npy", rng.dirichlet(np.ones(classes), 20))
    (tmp_path / "file").write_text("x")
    args = ["--probs", str(tmp_path / "preds" / "{member}_{split}.npy")]
    args += ["--labels", f"val={tmp_path / 'yv.npy'}"]
    for pool, words in (
        (tmp_path / "pool", "c_val.npy has 4"),
        (tmp_path / "file" / "pool", "is a file"),
    ):
        if "file" in str(pool):
            (tmp_path / "preds" / "c_val.npy").unlink()
        code, _, err = run(capsys, "pool", "import", str(pool), *args)
        assert code == 2 and words in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "preds", "yv.npy"]
    code, out, err = run(capsys, "pool", "import", str(tmp_path / "pool"), *args)
    assert code == 0 and "2 members" in out, err
