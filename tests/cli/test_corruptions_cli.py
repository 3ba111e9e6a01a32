"""`lrens evaluate --corruptions` and `lrens report --corruptions` on a small trained pool:
the tables and JSON, predictions cached in the pool and reused (a killed run resumes, a
damaged file is made again), the pool's data found without --data, and every bad input one
sentence with exit status 2 and nothing written."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lrensemble.ensemble import member_metrics
from lrensemble.pool import Pool
from tests.cli.test_cli import run

CONFIG = """
[data]
name = "mnist1d"

[model]
name = "cnn1d"
channels = 8

[train]
epochs = 3
seed = 0

[search]
method = "grid"
policies = [
  { name = "onecycle", max_lr = 0.2 },
  { name = "multistep", max_lr = 0.1 },
  { name = "cosine", max_lr = 0.05 },
]

[study]
batch_members = 3
"""
SETS = ("--corruption", "gaussian_noise", "--corruption", "shift", "--severities", "1,5")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run directory: its pool of three MNIST-1D members with weights, and tune.json."""
    from lrensemble.cli.main import main

    tmp = tmp_path_factory.mktemp("corrupt-run")
    (tmp / "run.toml").write_text(CONFIG)
    try:
        main(["run", str(tmp / "run.toml"), "--out", str(tmp / "out"), "--no-progress"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return tmp / "out"


def copy_run(trained, tmp_path, marker: bool = True):
    target = tmp_path / "run"
    shutil.copytree(trained / "pool", target / "pool")
    if marker:
        shutil.copy(trained / "tune.json", target / "tune.json")
    return target / "pool"


def corrupt_files(pool_dir):
    return sorted(pool_dir.glob("members/*/corrupt/*.npy"))


def evaluate_json(capsys, pool_dir, *args):
    code, out, err = run(capsys, "evaluate", str(pool_dir), "--corruptions", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def test_evaluate_caches_the_predictions_and_resumes(trained, tmp_path, capsys):
    pool_dir = copy_run(trained, tmp_path)
    first = evaluate_json(capsys, pool_dir, *SETS, "--no-progress")
    pool = Pool.open(pool_dir)
    ids = pool.ordered_member_ids()
    assert list(first["teams"]) == ["chosen", "best_single", "entire"]
    assert first["sets"] == [
        ["gaussian_noise", 1],
        ["gaussian_noise", 5],
        ["shift", 1],
        ["shift", 5],
    ]
    assert (first["computed"], first["cached"]) == (12, 0) and first["skipped"] == []
    assert len(corrupt_files(pool_dir)) == 12
    assert sorted(pool.corruptions()) == sorted(tuple(s) for s in first["sets"])
    entire = first["teams"]["entire"]
    assert entire["members"] == ids and set(entire["by_set"]) == {"gaussian_noise", "shift"}
    best = first["teams"]["best_single"]["members"][0]
    for name, severity in first["sets"]:  # accuracy does not depend on the temperature
        row = member_metrics(pool.corrupted(name, severity, [best]), pool.labels("test"))[0]
        cell = first["teams"]["best_single"]["by_set"][name][str(severity)]
        assert cell["accuracy"] == pytest.approx(row["accuracy"])
    cells = [entire["by_set"][n][str(s)]["accuracy"] for n, s in first["sets"]]
    assert entire["mean"]["accuracy"] == pytest.approx(np.mean(cells))
    assert entire["clean"]["accuracy"] == pytest.approx(
        float((pool.probs("test").mean(0).argmax(1) == pool.labels("test")).mean())
    )

    again = evaluate_json(capsys, pool_dir, *SETS)
    assert (again["computed"], again["cached"]) == (0, 12) and again["teams"] == first["teams"]
    files = corrupt_files(pool_dir)
    files[0].unlink()  # as if killed before it was written
    files[1].write_bytes(files[1].read_bytes()[:50])  # damaged
    resumed = evaluate_json(capsys, pool_dir, *SETS)
    assert (resumed["computed"], resumed["cached"]) == (2, 10)
    assert resumed["teams"] == first["teams"]

    code, out, err = run(capsys, "evaluate", str(pool_dir), "--corruptions", *SETS)
    assert code == 0 and err == ""
    assert "corrupted" in out and "severity" in out and "shift" in out


def test_a_given_team_with_weights_and_temperature(trained, tmp_path, capsys):
    pool_dir = copy_run(trained, tmp_path)
    pool = Pool.open(pool_dir)
    a, b, _ = pool.ordered_member_ids()
    result = evaluate_json(
        capsys, pool_dir, *SETS, "--members", f"{a},{b}", "--weights", "1,3", "--temperature", "0.5"
    )
    assert list(result["teams"]) == ["team", "best_single", "entire"]
    assert result["teams"]["team"]["members"] == [a, b]
    probs = pool.corrupted("shift", 5, [a, b])
    vote = 0.25 * probs[0] + 0.75 * probs[1]
    accuracy = float((vote.argmax(1) == pool.labels("test")).mean())
    assert result["teams"]["team"]["by_set"]["shift"]["5"]["accuracy"] == pytest.approx(accuracy)


def test_the_pool_data_is_found_from_its_record_without_the_run(trained, tmp_path, capsys):
    pool_dir = copy_run(trained, tmp_path, marker=False)
    result = evaluate_json(capsys, pool_dir, "--corruption", "offset", "--severities", "3")
    assert result["sets"] == [["offset", 3]] and result["computed"] == 3


@pytest.fixture
def other_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "other.npz"
    np.savez(
        path,
        x_train=rng.normal(size=(30, 1, 40)).astype(np.float32),
        y_train=np.arange(30) % 10,
        x_test=rng.normal(size=(10, 1, 40)).astype(np.float32),
        y_test=np.arange(10) % 10,
    )
    return path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--corruptions", "--corruption", "fog"], "Unknown corruption 'fog'"),
        (
            ["--corruptions", "--corruption", "contrast"],
            "Unknown corruption 'contrast' for signals",
        ),
        (["--corruptions", "--severities", "0"], "--severities takes integers from 1 to 5"),
        (["--corruptions", "--severities", "6"], "--severities takes integers from 1 to 5"),
        (["--corruptions", "--severities", "1,x"], "got 'x'"),
        (["--severities", "1"], "--severities needs --corruptions"),
        (["--corruption", "shift", "--data", "x.npz"], "--corruption, --data need --corruptions"),
        (["--corruptions", "--voting", "plurality"], "drop --voting plurality"),
        (["--corruptions", "--weights", "1,1,1"], "belong to a team given with --members"),
        (["--corruptions", "--members", "nobody"], "Not complete members of the pool: nobody"),
        (["--corruptions", "--corruption-seed", "-1"], "non-negative"),
        (["--corruptions", "--data", "OTHER"], "test labels of the data given are not those"),
    ],
)
def test_bad_inputs_are_one_sentence_and_write_nothing(trained, capsys, other_npz, args, words):
    pool_dir = trained / "pool"
    args = [str(other_npz) if a == "OTHER" else a for a in args]
    code, out, err = run(capsys, "evaluate", str(pool_dir), *args)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert corrupt_files(pool_dir) == []


def test_a_pool_without_weights_is_refused(trained, tmp_path, capsys):
    source = Pool.open(trained / "pool")
    (tmp_path / "preds").mkdir()
    for split in ("val", "test"):
        np.save(tmp_path / f"y_{split}.npy", source.labels(split))
        for member in source.member_ids():
            np.save(tmp_path / "preds" / f"{member}_{split}.npy", source.probs(split, [member])[0])
    code, _, err = run(
        capsys,
        "pool",
        "import",
        str(tmp_path / "imported"),
        "--probs",
        str(tmp_path / "preds" / "{member}_{split}.npy"),
        "--labels",
        f"val={tmp_path / 'y_val.npy'}",
        "--labels",
        f"test={tmp_path / 'y_test.npy'}",
    )
    assert code == 0, err
    code, _, err = run(capsys, "evaluate", str(tmp_path / "imported"), "--corruptions")
    assert code == 2 and "has weights and a model spec" in err and "Traceback" not in err
    assert corrupt_files(tmp_path / "imported") == []


def test_report_corruptions_adds_the_section(trained, tmp_path, capsys):
    assert "Corrupted test sets" not in (trained / "report" / "report.md").read_text()
    pool_dir = copy_run(trained, tmp_path)
    code, _, err = run(
        capsys,
        "report",
        str(pool_dir),
        "--corruptions",
        "--out",
        str(tmp_path / "r"),
        "--no-progress",
    )
    assert code == 0, err
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    corrupted = results["corruptions"]
    assert list(corrupted["teams"]) == ["best_single", "chosen", "entire"]
    assert len(corrupted["sets"]) == 50 and corrupted["severities"] == [1, 2, 3, 4, 5]
    md = (tmp_path / "r" / "report.md").read_text()
    assert "## Corrupted test sets" in md and "**mean (corrupted)**" in md
    chosen = corrupted["teams"]["chosen"]
    mean_row = next(line for line in md.splitlines() if line.startswith("| **mean"))
    assert f"{100 * chosen['mean']['accuracy']:.2f}" in mean_row
    assert chosen["members"] == results["table3"]["chosen"]["members"]
    assert chosen["clean"]["nll"] == pytest.approx(
        results["table3"]["chosen"]["calibrated"]["test"]["nll"]
    )

    # a member without weights: the entire pool is left out, with a warning
    from lrensemble.pipeline import report_pool

    pool = Pool.open(pool_dir)
    uniform = {s: np.full((n, 10), 0.1, np.float32) for s, n in pool.info["splits"].items()}
    pool.add_member("imported", uniform, {"method": "import"})
    again = report_pool(pool_dir, tmp_path / "r2", timing=False)
    assert list(again["corruptions"]["teams"]) == ["best_single", "chosen"]
    assert any("entire pool is left out" in w and "imported" in w for w in again["warnings"])


def test_a_member_whose_weights_are_damaged_stops_before_anything_is_computed(
    trained, tmp_path, capsys
):
    pool_dir = copy_run(trained, tmp_path)
    member = Pool.open(pool_dir).ordered_member_ids()[-1]
    weights = pool_dir / "members" / member / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    code, _, err = run(capsys, "evaluate", str(pool_dir), "--corruptions", *SETS)
    assert code == 2 and f"Member {member}'s model cannot be rebuilt" in err
    assert corrupt_files(pool_dir) == []
