"""`lrens pool import|show`, `lrens select`, `lrens evaluate` on small synthetic pools."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lrensemble.ensemble import DEFAULT_METHOD, EnsembleConfig, choose_ensemble
from lrensemble.pool import Pool
from tests.cli.test_cli import run

SELECT_FIELDS = {
    "method",
    "objective",
    "selected_on",
    "members",
    "weights",
    "temperature",
    "member_temperatures",
    "candidates",
    "excluded",
    "floor",
    "warnings",
    "metrics",
    "details",
}


@pytest.fixture
def imported(tmp_path, capsys):
    rng = np.random.default_rng(1)
    yv, yt = rng.integers(0, 3, 60), rng.integers(0, 3, 50)
    np.save(tmp_path / "yv.npy", yv)
    np.save(tmp_path / "yt.npy", yt)
    for i in range(5):
        for split, y in (("val", yv), ("test", yt)):
            z = rng.normal(size=(len(y), 3))
            z[np.arange(len(y)), y] += 1.0
            np.save(tmp_path / f"m{i}_{split}.npy", z)
    code, out, err = run(
        capsys,
        "pool",
        "import",
        str(tmp_path / "pool"),
        "--probs",
        str(tmp_path / "{member}_{split}.npy"),
        "--labels",
        f"val={tmp_path / 'yv.npy'}",
        "--labels",
        f"test={tmp_path / 'yt.npy'}",
        "--logits",
    )
    assert code == 0, err
    assert "5 members" in out
    return tmp_path / "pool"


def _member(rng, y, strength, classes=4):
    z = rng.normal(size=(len(y), classes))
    z[np.arange(len(y)), y] += strength
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


LONG_IDS = [
    "adamw-lr0.00123-wd0.0005-seed3-a1b2c3",
    "sgd-lr0.1-wd0.0005-nesterov-seed1-ffe0a1",
    "warmup_cosine-0.01-3fa2c1",
    "onecycle-0.4-000aaa",
]


@pytest.fixture
def long_ids(tmp_path):
    """A trained-looking pool: long ids, two methods, one diverged member."""
    rng = np.random.default_rng(3)
    y = {"val": rng.integers(0, 4, 200), "test": rng.integers(0, 4, 200)}
    pool = Pool.create(tmp_path / "long", y, 4, "synthetic")
    for i, member in enumerate(LONG_IDS):
        record = {
            "method": "lr_tuning" if i else "train",
            "policy": {"name": "cosine", "max_lr": 0.001 * (i + 1)},
            "epochs": 20,
            **({"status": "diverged"} if i == 3 else {}),
        }
        probs = {s: _member(rng, ys, 0.5 + i) for s, ys in y.items()}
        pool.add_member(member, probs, record)
    return tmp_path / "long"


# --- pool show ---------------------------------------------------------------------------------


def test_pool_show_json(capsys, imported):
    code, out, _ = run(capsys, "pool", "show", str(imported), "--json")
    assert code == 0
    rows = json.loads(out)["members"]
    assert [r["id"] for r in rows] == ["m0", "m1", "m2", "m3", "m4"]
    assert 0 <= rows[0]["metrics"]["val"]["accuracy"] <= 1
    assert {"accuracy", "nll", "ece", "brier"} <= set(rows[0]["metrics"]["test"])


def _show(pool, columns):
    """`lrens pool show POOL` in a real process whose terminal is `columns` wide."""
    proc = subprocess.run(
        [sys.executable, "-m", "lrensemble", "pool", "show", str(pool)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_pool_show_at_80_columns_keeps_full_ids(long_ids):
    """At 80 columns: ids whole, every line within 80 columns, ECE shown; the method, policy
    and status columns give way to the numbers."""
    text = _show(long_ids, 80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    assert "…" not in text
    for member in LONG_IDS:
        assert any(line.startswith(member + " ") for line in lines), member
    header = "\n".join(lines[:2])
    assert header.count("acc%") == header.count("nll") == header.count("ece") == 2


def test_pool_show_on_a_wide_terminal_says_how_members_were_made(long_ids):
    """Mixed methods, a diverged member and policies the ids do not name: their columns."""
    text = _show(long_ids, 200)
    header = "\n".join(text.splitlines()[:2])
    assert "method" in header and "policy" in header and "status" in header
    assert "diverged" in text and "cosine 0.002" in text and "lr_tuning" in text


def test_pool_show_hides_columns_that_tell_nothing(capsys, imported):
    code, out, _ = run(capsys, "pool", "show", str(imported))
    assert code == 0
    assert "method" not in out and "status" not in out and "policy" not in out
    assert "ece" in out and "m4" in out


@pytest.mark.parametrize(
    ("key", "metric", "descending"),
    [("val_acc", "accuracy", True), ("test_nll", "nll", False), ("val_ece", "ece", False)],
)
def test_pool_show_sort(capsys, imported, key, metric, descending):
    code, out, _ = run(capsys, "pool", "show", str(imported), "--sort", key, "--json")
    assert code == 0
    split = key.split("_")[0]
    values = [r["metrics"][split][metric] for r in json.loads(out)["members"]]
    assert values == sorted(values, reverse=descending)
    code, table, _ = run(capsys, "pool", "show", str(imported), "--sort", key)
    order = [r["id"] for r in json.loads(out)["members"]]
    assert [table.index(f"\n{m} ") for m in order] == sorted(table.index(f"\n{m} ") for m in order)


def test_pool_show_sort_puts_members_without_metrics_last(capsys, long_ids):
    code, out, _ = run(capsys, "pool", "show", str(long_ids), "--sort", "val_acc", "--json")
    rows = json.loads(out)["members"]
    assert code == 0 and rows[-1]["status"] == "diverged" and rows[-1]["metrics"] == {}


def test_pool_show_filters_by_method(capsys, long_ids):
    code, out, _ = run(capsys, "pool", "show", str(long_ids), "--method", "lr_tuning", "--json")
    rows = json.loads(out)["members"]
    assert code == 0 and rows and {r["method"] for r in rows} == {"lr_tuning"}
    code, _, err = run(capsys, "pool", "show", str(long_ids), "--method", "hdet")
    assert code == 2 and "No member" in err and "lr_tuning" in err and err.count("\n") == 1


def test_pool_show_unknown_sort_key(capsys, imported):
    code, _, err = run(capsys, "pool", "show", str(imported), "--sort", "val_f1")
    assert code == 2 and "Unknown sort key 'val_f1'" in err and "val_acc" in err
    assert err.count("\n") == 1


# --- select ------------------------------------------------------------------------------------


def _index_fields(obj, key=""):
    """Every value under a member-valued field of selection details, at any depth."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _index_fields(v, str(k))
    elif isinstance(obj, list):
        for v in obj:
            if key in ("members", "order", "picks", "teams") and not isinstance(v, list):
                yield v
            else:
                yield from _index_fields(v, key)


@pytest.mark.parametrize(
    ("method", "extra", "field"),
    [
        ("random", ["--size", "3"], "teams"),
        ("brute_force", ["--size", "3"], "best_per_size"),
        ("greedy", ["--size", "3"], "order"),
        ("greedy", [], "picks"),
        ("focal", ["--size", "3"], "most_diverse_per_size"),
        ("focal", ["--parity"], "most_diverse_per_size"),
        ("hierarchical", [], "most_diverse_per_size"),
    ],
)
def test_select_json_is_in_member_ids(capsys, imported, method, extra, field):
    args = ["select", str(imported), "--method", method, "--min-relative-accuracy", "0", *extra]
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == SELECT_FIELDS
    ids = {f"m{i}" for i in range(5)}
    assert report["method"] == method and report["selected_on"] == "val"
    assert set(report["members"]) <= set(report["candidates"]) <= ids
    assert len(report["weights"]) == len(report["member_temperatures"]) == len(report["members"])
    assert field in report["details"]
    values = list(_index_fields(report["details"]))
    assert values and all(v in ids for v in values), report["details"]
    assert set(report["metrics"]) == {"val", "test"}
    assert set(report["metrics"]["test"]) == {"raw", "calibrated"}
    if "--size" in extra:
        assert len(report["members"]) == 3


def test_select_default_is_the_shared_choice(capsys, imported):
    """No options: DEFAULT_METHOD, and the same team, weights and temperature as
    `choose_ensemble` gives `lrens run`, `report` and `export`."""
    code, out, err = run(capsys, "select", str(imported), "--json")
    assert code == 0, err
    report = json.loads(out)
    pool = Pool.open(imported)
    ids = pool.member_ids()
    cfg = EnsembleConfig()
    expected = choose_ensemble(
        pool.probs("val"), pool.labels("val"), ids, cfg, max_candidates=cfg.max_candidates
    )
    assert report["method"] == DEFAULT_METHOD == expected.method
    assert report["members"] == expected.members
    assert report["weights"] == pytest.approx(expected.weights)
    assert report["temperature"] == pytest.approx(expected.temperature)
    assert report["floor"] == pytest.approx(expected.floor)
    assert [e["id"] for e in report["excluded"]] == [e["id"] for e in expected.excluded]


def test_select_raw_and_calibrated_metrics(capsys, imported):
    args = ["select", str(imported), "--min-relative-accuracy", "0", "--json"]
    code, out, _ = run(capsys, *args)
    metrics = json.loads(out)["metrics"]
    assert code == 0
    for split in ("val", "test"):  # a temperature never changes the argmax
        assert metrics[split]["raw"]["accuracy"] == metrics[split]["calibrated"]["accuracy"]
    # the temperature is fitted on val to minimize NLL; T = 1 (raw) is one of its candidates
    assert metrics["val"]["calibrated"]["nll"] <= metrics["val"]["raw"]["nll"] + 1e-9
    code, out, _ = run(capsys, *args, "--no-calibrate")
    report = json.loads(out)
    assert code == 0 and report["temperature"] == 1.0
    assert report["metrics"]["test"]["raw"] == report["metrics"]["test"]["calibrated"]


def test_select_options_reach_the_choice(capsys, imported):
    args = ["select", str(imported), "--json", "--min-relative-accuracy", "0"]
    code, out, _ = run(capsys, *args, "--objective", "nll", "--calibrate-members")
    report = json.loads(out)
    assert code == 0 and report["objective"] == "nll"
    assert any(t != 1.0 for t in report["member_temperatures"])
    code, out, _ = run(capsys, "pool", "show", str(imported), "--sort", "val_acc", "--json")
    best = json.loads(out)["members"][0]["metrics"]["val"]["accuracy"]
    code, out, _ = run(capsys, "select", str(imported), "--json", "--min-accuracy", str(best))
    report = json.loads(out)  # the floor keeps the best members only
    assert code == 0 and report["floor"] == pytest.approx(best)
    assert report["candidates"] and len(report["candidates"]) + len(report["excluded"]) == 5
    assert all(e["reason"] == "below the floor" for e in report["excluded"])
    assert all(e["val_accuracy"] < best for e in report["excluded"])
    code, out, _ = run(capsys, "select", str(imported), "--json", "--split", "test")
    assert code == 0 and json.loads(out)["selected_on"] == "test"


def test_select_text_output(capsys, imported):
    code, out, _ = run(capsys, "select", str(imported), "--min-relative-accuracy", "0")
    assert code == 0
    assert out.startswith(f"{DEFAULT_METHOD} chose ")
    assert "temperature" in out and "calibrated" in out and "raw" in out and "brier" in out


@pytest.fixture
def saturated(tmp_path):
    """Four members perfect on a small validation split: accuracy cannot rank teams."""
    rng = np.random.default_rng(5)
    y = {"val": rng.integers(0, 4, 40), "test": rng.integers(0, 4, 100)}
    pool = Pool.create(tmp_path / "sat", y, 4, "synthetic")
    for i in range(5):
        probs = {s: _member(rng, ys, 12.0 if i < 4 else 0.5) for s, ys in y.items()}
        pool.add_member(f"m{i}", probs, {"method": "import"})
    return tmp_path / "sat"


def test_select_warns_on_a_saturated_validation_split(capsys, saturated):
    code, out, err = run(capsys, "select", str(saturated), "--json")
    warnings = json.loads(out)["warnings"]
    assert code == 0 and "saturated" in warnings[0] and "larger validation split" in warnings[0]
    assert "--objective nll" not in warnings[0]  # already the objective: not advised again
    assert err.splitlines() == [f"warning: {w}" for w in warnings]  # one line each
    code, out, err = run(capsys, "select", str(saturated), "--objective", "accuracy", "--json")
    assert "--objective nll" in json.loads(out)["warnings"][0]
    code, out, err = run(capsys, "select", str(saturated))
    assert code == 0 and "warning: Validation is saturated" in err and "warning" not in out


def test_select_warns_when_the_floor_leaves_fewer_candidates_than_the_size(capsys, imported):
    code, out, _ = run(capsys, "pool", "show", str(imported), "--sort", "val_acc", "--json")
    second = json.loads(out)["members"][1]["metrics"]["val"]["accuracy"]
    args = ["select", str(imported), "--min-accuracy", str(second), "--size", "4", "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0 and "instead of 4" in err and len(json.loads(out)["members"]) < 4


# --- evaluate ----------------------------------------------------------------------------------


def test_evaluate_team_and_members(capsys, imported):
    code, out, _ = run(capsys, "evaluate", str(imported), "--members", "m0,m3", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["members"] == ["m0", "m3"] and report["weights"] == [0.5, 0.5]
    assert set(report["per_member"]["test"]) == {"m0", "m3"}
    code, out, _ = run(capsys, "evaluate", str(imported))
    assert code == 0 and "team of 5 members" in out


def test_evaluate_weights(capsys, imported):
    """All weight on one member gives that member's metrics; weights are normalized."""
    base = ["evaluate", str(imported), "--members", "m0,m3", "--json"]
    code, out, _ = run(capsys, *base, "--weights", "0,2")
    report = json.loads(out)
    assert code == 0 and report["weights"] == [0.0, 1.0]
    for split in ("val", "test"):
        assert report["team"][split] == pytest.approx(report["per_member"][split]["m3"])
    code, out, _ = run(capsys, *base, "--weights", "3,1")
    weighted = json.loads(out)
    assert weighted["weights"] == [0.75, 0.25]
    code, out, _ = run(capsys, *base)
    assert weighted["team"]["test"]["nll"] != pytest.approx(json.loads(out)["team"]["test"]["nll"])


def test_evaluate_temperature(capsys, imported):
    base = ["evaluate", str(imported), "--members", "m0,m3", "--json"]
    code, out, _ = run(capsys, *base)
    plain = json.loads(out)["team"]["val"]
    code, out, _ = run(capsys, *base, "--temperature", "1")
    assert json.loads(out)["team"]["val"] == pytest.approx(plain)
    code, out, _ = run(capsys, *base, "--temperature", "3")
    hot = json.loads(out)
    assert code == 0 and hot["temperature"] == 3.0
    assert hot["team"]["val"]["accuracy"] == plain["accuracy"]
    assert hot["team"]["val"]["nll"] != pytest.approx(plain["nll"])


def test_evaluate_reproduces_a_selected_ensemble(capsys, imported):
    """Members, weights and temperature from `select --json` give its calibrated metrics."""
    code, out, _ = run(capsys, "select", str(imported), "--min-relative-accuracy", "0", "--json")
    chosen = json.loads(out)
    args = [
        "evaluate",
        str(imported),
        "--members",
        ",".join(chosen["members"]),
        "--weights",
        ",".join(repr(w) for w in chosen["weights"]),
        "--temperature",
        repr(chosen["temperature"]),
        "--json",
    ]
    code, out, _ = run(capsys, *args)
    assert code == 0
    team = json.loads(out)["team"]
    for split in ("val", "test"):
        assert team[split] == pytest.approx(chosen["metrics"][split]["calibrated"])


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["select", "{pool}", "--method", "best"], "--method: Input should be"),
        (["select", "{pool}", "--size", "0"], "--size: Input should be greater"),
        (["select", "{pool}", "--objective", "f1"], "--objective: Input should be"),
        (["select", "{pool}", "--metric", "XX"], "--metric: Input should be"),
        (["select", "{pool}", "--min-relative-accuracy", "2"], "--min-relative-accuracy"),
        (
            ["select", "{pool}", "--method", "greedy", "--parity"],
            "Parity (--parity) applies to method focal only",
        ),
        (["select", "{pool}", "--min-accuracy", "0.99"], "no member would be a candidate"),
        (["select", "{pool}", "--method", "random"], "needs a team size"),
        (["select", "{pool}", "--split", "train"], "no split 'train'"),
        (["evaluate", "{pool}", "--members", "m0,zz"], "Not complete members of the pool: zz"),
        (["evaluate", "{pool}", "--voting", "median"], "Unknown voting"),
        (["evaluate", "{pool}", "--members", "m0,m1", "--weights", "1"], "give one per member"),
        (["evaluate", "{pool}", "--members", "m0", "--weights", "1,2"], "2 numbers for a team"),
        (["evaluate", "{pool}", "--members", "m0,m1", "--weights", "1,x"], "got 'x'"),
        (["evaluate", "{pool}", "--members", "m0,m1", "--weights", "0,0"], "non-negative"),
        (["evaluate", "{pool}", "--members", "m0,m1", "--weights", "1,-1"], "non-negative"),
        (["evaluate", "{pool}", "--temperature", "0"], "--temperature must be a positive"),
        (["select", "{missing}"], "does not exist"),
        (["pool", "show", "{tmp}"], "is not a pool"),
    ],
)
def test_errors_are_one_sentence_with_status_2(capsys, imported, args, fragment):
    values = {
        "pool": str(imported),
        "missing": str(imported.parent / "none"),
        "tmp": str(imported.parent),
    }
    code, _, err = run(capsys, *[a.format(**values) for a in args])
    assert code == 2 and fragment in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_import_errors(capsys, tmp_path):
    code, _, err = run(
        capsys,
        "pool",
        "import",
        str(tmp_path / "p"),
        "--probs",
        "x_{split}.npy",
        "--labels",
        "val=y.npy",
    )
    assert code == 2 and "needs both" in err
    code, _, err = run(
        capsys,
        "pool",
        "import",
        str(tmp_path / "p"),
        "--probs",
        "{member}_{split}.npy",
        "--labels",
        "val",
    )
    assert code == 2 and "SPLIT=PATH" in err


def test_selection_commands_run_without_torch(imported):
    """Selection works on any framework's predictions: torch is never imported."""
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
        "from lrensemble.cli.main import main\n"
        f"main(['select', {str(imported)!r}, '--method', 'focal', '--size', '2', '--json'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["method"] == "focal"
    code = code.replace("['select', ", "['evaluate', ").replace(
        ", '--method', 'focal', '--size', '2'", ""
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_a_size_beyond_the_candidates_warns_as_every_command_does(capsys, imported):
    code, out, _ = run(capsys, "select", str(imported), "--size", "9", "--json")
    chosen = json.loads(out)
    assert code == 0 and chosen["warnings"] and "instead of 9" in chosen["warnings"][-1]
    assert len(chosen["members"]) <= len(chosen["candidates"])


def test_select_checks_its_selector_before_reading_the_pool(capsys, tmp_path, monkeypatch):
    """`lrens select` builds its selector (`ensemble_selector`, through `make_selector`) first:
    a refused option is the error even when the pool does not exist."""
    import lrensemble.ensemble as ensemble
    from lrensemble.errors import ParameterError

    missing = str(tmp_path / "none")
    code, _, err = run(capsys, "select", missing, "--method", "random")
    assert code == 2 and "needs a team size" in err and "does not exist" not in err

    def refuse(config, candidates=None):
        raise ParameterError("The selector refuses its options.")

    monkeypatch.setattr(ensemble, "ensemble_selector", refuse)
    code, _, err = run(capsys, "select", missing, "--method", "focal")
    assert code == 2 and "The selector refuses its options." in err
    assert "does not exist" not in err and err.count("\n") == 1
