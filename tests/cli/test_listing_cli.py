"""`lrens policies plot` from a named grid, a sweep config or a pool's recorded policies."""

from __future__ import annotations

import numpy as np
import pytest

import lrensemble.schedules
from lrensemble.pool import Pool
from tests.cli.test_cli import run

GRID_CONFIG = """
[train]
epochs = 7

[search]
method = "grid"
policies = [
  { name = "multistep", max_lr = 0.1 },
  { name = "onecycle", max_lr = 0.2 },
  { name = "onecycle", max_lr = 0.05 },
]

[ensemble]
method = "focal"
"""

TPE_CONFIG = """
[search]
method = "tpe"
trials = 4

[search.space]
policies = ["onecycle", "cosine"]
max_lr = [0.01, 1.0]
"""


@pytest.fixture
def plots(monkeypatch):
    """Records what `plot_policies` is asked to draw, and still draws it."""
    calls = []
    real = lrensemble.schedules.plot_policies

    def spy(policies, path, epochs, title):
        calls.append({"policies": list(policies), "epochs": epochs, "title": title})
        return real(policies, path, epochs=epochs, title=title)

    monkeypatch.setattr(lrensemble.schedules, "plot_policies", spy)
    return calls


def _pool(root, policies, epochs=(20,)):
    """A pool whose members record `policies` (None: no policy, as imported predictions)."""
    rng = np.random.default_rng(0)
    y = {"val": rng.integers(0, 3, 30)}
    pool = Pool.create(root, y, 3)
    for i, policy in enumerate(policies):
        probs = {"val": rng.dirichlet(np.ones(3), size=30)}
        record = {"method": "lr_tuning", "epochs": epochs[i % len(epochs)]}
        if policy is not None:
            record["policy"] = policy
        pool.add_member(f"m{i}", probs, record)
    return root


def _is_png(path):
    return path.read_bytes()[:4] == b"\x89PNG"


def test_plot_a_named_grid_by_default(capsys, tmp_path, plots):
    target = tmp_path / "grid.png"
    code, out, _ = run(capsys, "policies", "plot", "--out", str(target), "--scale", "0.5")
    assert code == 0 and _is_png(target) and "wrote" in out
    assert len(plots[0]["policies"]) == 16 and plots[0]["epochs"] == 200
    assert plots[0]["policies"][0].params["max_lr"] == pytest.approx(0.1)


def test_plot_a_sweep_config(capsys, tmp_path, plots):
    config = tmp_path / "sweep.toml"
    config.write_text(GRID_CONFIG)
    target = tmp_path / "sweep.png"
    code, _, err = run(capsys, "policies", "plot", "--config", str(config), "--out", str(target))
    assert code == 0, err
    assert _is_png(target)
    drawn = [(p.name, p.params["max_lr"]) for p in plots[0]["policies"]]
    assert drawn == [("multistep", 0.1), ("onecycle", 0.2), ("onecycle", 0.05)]
    assert plots[0]["epochs"] == 7 and "sweep.toml" in plots[0]["title"]
    code, _, _ = run(capsys, "policies", "plot", "--config", str(config), "--epochs", "30")
    assert code == 0 and plots[1]["epochs"] == 30


def test_plot_a_pool(capsys, tmp_path, plots):
    specs = [
        {"name": "cosine", "max_lr": 0.1},
        {"name": "onecycle", "max_lr": 0.2},
        {"name": "cosine", "max_lr": 0.1},  # a second seed of the same policy: drawn once
    ]
    pool = _pool(tmp_path / "pool", specs, epochs=(20, 40))
    target = tmp_path / "pool.png"
    code, _, err = run(capsys, "policies", "plot", "--pool", str(pool), "--out", str(target))
    assert code == 0, err
    assert _is_png(target)
    drawn = [(p.name, p.params["max_lr"]) for p in plots[0]["policies"]]
    assert drawn == [("cosine", 0.1), ("onecycle", 0.2)]
    assert plots[0]["epochs"] == 40  # the longest members' epochs
    code, _, _ = run(capsys, "policies", "plot", "--pool", str(pool), "--epochs", "5")
    assert code == 0 and plots[1]["epochs"] == 5


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--grid", "table1", "--config", "{sweep}"], "not --grid and --config"),
        (["--config", "{sweep}", "--pool", "{pool}"], "not --config and --pool"),
        (["--grid", "table1", "--pool", "{pool}"], "not --grid and --pool"),
        (["--pool", "{pool}", "--scale", "2"], "--scale applies to --grid only"),
        (["--config", "{sweep}", "--scale", "2"], "--scale applies to --grid only"),
        (["--epochs", "0"], "--epochs must be positive"),
        (["--epochs", "nan"], "--epochs must be positive, finite and at most 1,000,000"),
        (["--epochs", "inf"], "--epochs must be positive, finite and at most 1,000,000"),
        (["--epochs", "1e12"], "--epochs must be positive, finite and at most 1,000,000"),
        (["--grid", "table1", "--scale", "nan"], "scale must be finite"),
        (["--grid", "table9"], "Unknown policy grid 'table9'"),
        (["--config", "{tpe}"], "known only afterwards; plot them with --pool"),
        (["--config", "{missing}"], "does not exist"),
        (["--pool", "{imported}"], "record no LR policy"),
        (["--pool", "{bad}"], "Member m0 of"),
        (["--pool", "{missing}"], "does not exist"),
    ],
)
def test_bad_plot_requests_are_one_sentence_with_status_2(capsys, tmp_path, args, fragment):
    (tmp_path / "sweep.toml").write_text(GRID_CONFIG)
    (tmp_path / "tpe.toml").write_text(TPE_CONFIG)
    values = {
        "sweep": tmp_path / "sweep.toml",
        "tpe": tmp_path / "tpe.toml",
        "pool": _pool(tmp_path / "pool", [{"name": "cosine", "max_lr": 0.1}]),
        "imported": _pool(tmp_path / "imported", [None, None]),
        "bad": _pool(tmp_path / "bad", [{"name": "cosine"}]),  # lacks max_lr
        "missing": tmp_path / "nothing",
    }
    target = tmp_path / "x.png"
    argv = [a.format(**values) for a in args]
    code, _, err = run(capsys, "policies", "plot", *argv, "--out", str(target))
    assert code == 2 and fragment in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not target.exists()


def test_data_prepare_checks_a_users_file(tmp_path, capsys):
    rows = ["a,b,label"] + [f"{i},{i % 3},{i % 2}" for i in range(40)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run(capsys, "data", "prepare", "--data", str(tmp_path / "t.csv"))
    assert code == 0, err
    assert "2 classes" in out and "inputs (2,)" in out and "normalization: feature" in out
    code, _, err = run(capsys, "data", "prepare", "--data", str(tmp_path / "missing.csv"))
    assert code == 2 and "does not exist" in err


def test_a_pool_recording_absurd_epochs_still_plots(capsys, tmp_path, plots):
    """Members' epochs beyond any real run (10**12) are ignored for the axis."""
    spec = {"name": "cosine", "max_lr": 0.1}
    pool = _pool(tmp_path / "pool", [spec, spec], epochs=(10**12, 30))
    code, _, err = run(
        capsys, "policies", "plot", "--pool", str(pool), "--out", str(tmp_path / "p.png")
    )
    assert code == 0, err
    assert plots[0]["epochs"] == 30
