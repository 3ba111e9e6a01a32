"""Sweeps across machines on a real PostgreSQL server (`.ci/run` starts one with
`.ci/postgres.sh` and sets LRENS_TEST_POSTGRES; without it these tests are skipped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import optuna
import pytest

from lrensemble.pool import Pool

URL = os.environ.get("LRENS_TEST_POSTGRES")
pytestmark = pytest.mark.skipif(not URL, reason="no PostgreSQL server (LRENS_TEST_POSTGRES)")

SWEEP = """
[data]
name = "mnist1d"
[model]
name = "cnn1d"
channels = 8
[train]
epochs = 1
[search]
method = "grid"
grid = "table1"
[study]
name = "{name}"
storage = "env:LRENS_TEST_POSTGRES"
workers = 2
"""


def workers(config, outs):
    env = {**os.environ, "CI": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lrensemble", "tune", str(config), "--out", str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err


def complete_trials(name):
    """The study's complete trials, after checking that its grid was queued once (no trial
    lost its point to a duplicate)."""
    from lrensemble.tuning.study import open_storage

    study = optuna.load_study(study_name=name, storage=open_storage(URL))
    assert not [t for t in study.trials if "duplicate_of" in t.user_attrs]
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def test_two_machines_with_their_own_pools_train_the_grid_once_and_merge(tmp_path):
    name = f"pg-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP.format(name=name))
    workers(config, [tmp_path / "a", tmp_path / "b"])
    complete = complete_trials(name)
    assert len(complete) == 16 and len({t.user_attrs["point"] for t in complete}) == 16
    a, b = (set(Pool.open(tmp_path / n / "pool").member_ids()) for n in ("a", "b"))
    assert not a & b and len(a | b) == 16 and a and b  # each machine trained a part
    run = [sys.executable, "-m", "lrensemble"]
    merged = tmp_path / "all"
    subprocess.run(
        [
            *run,
            "pool",
            "merge",
            str(tmp_path / "a" / "pool"),
            str(tmp_path / "b" / "pool"),
            "--out",
            str(merged),
        ],
        check=True,
        capture_output=True,
    )
    report = subprocess.run(
        [*run, "report", str(merged), "--out", str(tmp_path / "report")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert report.returncode == 0, report.stderr
    results = json.loads((tmp_path / "report" / "results.json").read_text())
    assert len(results["members"]) == 16


def test_two_workers_on_one_out_each_train_a_part(tmp_path):
    name = f"pg-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP.format(name=name))
    workers(config, [tmp_path / "s", tmp_path / "s"])
    assert len(complete_trials(name)) == 16
    assert len(Pool.open(tmp_path / "s" / "pool").member_ids()) == 16
    events = [
        json.loads(line) for line in (tmp_path / "s" / "events.jsonl").read_text().splitlines()
    ]
    trained_by = {e["pid"] for e in events if e.get("event") == "finish"}
    assert len(trained_by) == 2


@pytest.mark.parametrize("delay", [0.3, 4.0], ids=["while_it_starts", "while_it_waits"])
def test_a_database_restart_while_a_worker_waits_is_waited_out(tmp_path, delay):
    """Worker A trains the only grid point; worker B starts, then (with nothing to claim)
    waits for it; the server restarts while B is starting up or while it waits. Both end
    normally and the point is trained once."""
    import time
    from pathlib import Path

    name = f"pg-{uuid.uuid4().hex[:8]}"
    config = tmp_path / "sweep.toml"
    config.write_text(
        SWEEP.format(name=name)
        .replace('grid = "table1"', 'policies = [{ name = "onecycle", max_lr = 0.1 }]')
        .replace("channels = 8", "channels = 32")
        .replace("epochs = 1", "epochs = 150")
    )
    out = tmp_path / "s"
    env = {**os.environ, "CI": "1"}
    argv = [sys.executable, "-m", "lrensemble", "tune", str(config), "--out", str(out)]
    first = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    events = out / "events.jsonl"
    deadline = time.monotonic() + 120
    while not (events.exists() and "start" in events.read_text()):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    second = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(delay)  # during its start-up, or once it waits for the first worker's trial
    script = Path(__file__).resolve().parents[2] / ".ci" / "postgres.sh"
    subprocess.run(["bash", str(script), "restart"], check=True, timeout=60)
    for proc in (first, second):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert len(complete_trials(name)) == 1
    assert len(Pool.open(out / "pool").member_ids()) == 1
