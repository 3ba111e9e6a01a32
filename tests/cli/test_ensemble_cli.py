"""`lrens pool import|show`, `lrens select`, `lrens evaluate` on an imported pool."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli.test_cli import run


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


def test_pool_show_json(capsys, imported):
    code, out, _ = run(capsys, "pool", "show", str(imported), "--json")
    assert code == 0
    rows = json.loads(out)["members"]
    assert [r["id"] for r in rows] == ["m0", "m1", "m2", "m3", "m4"]
    assert 0 <= rows[0]["metrics"]["val"]["accuracy"] <= 1


@pytest.mark.parametrize("method", ["random", "brute_force", "greedy", "focal", "hierarchical"])
def test_select_every_method(capsys, imported, method):
    code, out, err = run(
        capsys, "select", str(imported), "--method", method, "--size", "3", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert len(report["members"]) == 3 and set(report["metrics"]) == {"val", "test"}
    assert report["metrics"]["val"]["accuracy"] == pytest.approx(report["score"])


def test_evaluate_team_and_members(capsys, imported):
    code, out, _ = run(capsys, "evaluate", str(imported), "--members", "m0,m3", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["members"] == ["m0", "m3"]
    assert set(report["per_member"]["test"]) == {"m0", "m3"}
    code, out, _ = run(capsys, "evaluate", str(imported))
    assert code == 0 and "team of 5 members" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["select", "{pool}", "--method", "best"], "Unknown selection method"),
        (["select", "{pool}", "--size", "9"], "team size"),
        (["select", "{pool}", "--split", "train"], "no split 'train'"),
        (["evaluate", "{pool}", "--members", "m0,zz"], "Not complete members of the pool: zz"),
        (["evaluate", "{pool}", "--voting", "median"], "Unknown voting"),
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
    import subprocess
    import sys

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
