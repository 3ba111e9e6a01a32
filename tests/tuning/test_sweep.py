"""LR sweeps through real `lrens tune` processes: resume after SIGKILL, concurrent workers,
divergence, the policy database and config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from lrensemble.pool import Pool
from lrensemble.tuning import load_tune_config, run_sweep, top_policies
from tests.cli.test_cli import run

GRID = """
[data]
name = "mnist1d"

[model]
name = "cnn1d"
channels = 32

[train]
epochs = {epochs}
batch_size = 64
seed = 0

[search]
method = "grid"
policies = [
  {{ name = "multistep", max_lr = 0.1 }},
  {{ name = "onecycle", max_lr = 0.2 }},
  {{ name = "warmup_cosine", max_lr = 0.1 }},
  {{ name = "cosine", max_lr = 0.05 }},
  {{ name = "linear", max_lr = 0.1 }},
  {{ name = "step", max_lr = 0.1, step_epochs = 2 }},
]

[study]
batch_members = {batch}
"""


def write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def lrens(*args):
    return [sys.executable, "-m", "lrensemble", *args]


def events(out: Path) -> list[dict]:
    path = out / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


ENV = {**os.environ, "CI": "1"}


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_trains_each_point_once(tmp_path):
    config = write(tmp_path, GRID.format(epochs=12, batch=2))
    out = tmp_path / "sweep"
    proc = subprocess.Popen(
        lrens("tune", str(config), "--out", str(out)),
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    # kill once two members are in the pool and the running trial has a checkpoint
    while True:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        members = list((out / "pool" / "members").glob("[!.]*")) if out.exists() else []
        checkpoints = list((out / "runs").glob("*/checkpoint.safetensors")) if out.exists() else []
        if len(members) >= 2 and checkpoints:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    done_before = {e["member"] for e in events(out) if e["event"] == "finish"}
    assert 2 <= len(done_before) < 6

    rerun = subprocess.run(
        lrens("tune", str(config), "--out", str(out)),
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "was interrupted" in rerun.stdout

    pool = Pool.open(out / "pool")
    assert len(pool.member_ids()) == 6
    log = events(out)
    finishes = Counter(e["member"] for e in log if e["event"] == "finish")
    assert set(finishes.values()) == {1}, finishes  # every point finished exactly once
    restarted = [e for e in log if e["event"] == "start" and e["time"] > killed_at]
    assert not {e["member"] for e in restarted} & done_before  # finished ones not retrained
    resumed = [e for e in restarted if e["from_epoch"] > 0]
    assert resumed  # the interrupted batch continued from its checkpoints
    for event in resumed:
        record = pool.member(event["member"])
        assert record["resumed_from_epoch"] == event["from_epoch"]
        assert [h["epoch"] for h in record["history"]] == list(range(1, 13))
    assert not list((out / "pool" / "members").glob(".*"))  # no half-written member
    assert not (out / "runs").exists() or not list((out / "runs").iterdir())


@pytest.mark.slow
def test_two_concurrent_workers_split_the_grid_without_duplicates(tmp_path):
    config = write(tmp_path, GRID.format(epochs=8, batch=2))
    out = tmp_path / "sweep"
    procs = [
        subprocess.Popen(
            lrens("tune", str(config), "--out", str(out)),
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    log = events(out)
    starts = Counter(e["member"] for e in log if e["event"] == "start")
    assert len(starts) == 6 and set(starts.values()) == {1}, starts
    assert len({e["pid"] for e in log if e["event"] == "start"}) == 2  # both did work
    assert len(Pool.open(out / "pool").member_ids()) == 6
    study = optuna.load_study(
        study_name="mnist1d-cnn1d-grid", storage=f"sqlite:///{out / 'study.db'}"
    )
    assert Counter(t.state.name for t in study.trials) == {"COMPLETE": 6}


def test_diverging_policy_is_recorded_and_the_sweep_finishes(tmp_path):
    text = GRID.format(epochs=2, batch=16).split("policies = [")[0] + (
        'policies = [\n  { name = "constant", max_lr = 100.0 },\n'
        '  { name = "onecycle", max_lr = 0.1 },\n]\n'
    )
    cfg = load_tune_config(write(tmp_path, text))
    lines = []
    result = run_sweep(cfg, tmp_path / "sweep", log=lines.append, progress=False)
    assert len(result.members) == 1 and result.members[0].startswith("onecycle")
    assert len(result.diverged) == 1 and result.diverged[0].startswith("constant")
    assert any("diverged" in line for line in lines)
    study = optuna.load_study(study_name=result.study_name, storage=result.storage)
    states = {t.user_attrs["member"]: (t.state.name, t.user_attrs["status"]) for t in study.trials}
    assert states[result.diverged[0]] == ("PRUNED", "diverged")
    assert not (tmp_path / "sweep" / "pool" / "members" / result.diverged[0]).exists()
    assert not (tmp_path / "sweep" / "runs" / result.diverged[0]).exists()  # nothing left behind
    finish = [e for e in events(tmp_path / "sweep") if e.get("status") == "diverged"]
    assert len(finish) == 1 and finish[0]["at"]["epoch"] >= 0


def test_random_and_tpe_search_fill_their_budget_and_the_database_ranks_them(tmp_path):
    journal = tmp_path / "db" / "studies.log"
    for method in ("random", "tpe"):
        text = (
            GRID.format(epochs=2, batch=16).split("[search]")[0]
            + f"""
[search]
method = "{method}"
trials = 3

[search.space]
policies = ["onecycle", "cosine", "multistep"]
max_lr = [0.01, 0.5]

[search.space.params.onecycle]
pct_start = [0.1, 0.5]

[study]
storage = "{journal}"
"""
        )
        cfg = load_tune_config(write(tmp_path, text, f"{method}.toml"))
        result = run_sweep(cfg, tmp_path / method, log=lambda _: None, progress=False)
        assert len(result.members) == 3
        again = run_sweep(cfg, tmp_path / method, log=lambda _: None, progress=False)
        assert again.trials == []  # the budget is spent; nothing more is trained
        for member in result.members:
            policy = Pool.open(tmp_path / method / "pool").member(member)["policy"]
            assert policy["name"] in ("onecycle", "cosine", "multistep")
            assert 0.01 <= policy["max_lr"] <= 0.5
    top = top_policies(str(journal), "mnist1d", "cnn1d", n=4)
    assert len(top) == 4
    accs = [r["metrics"]["val"]["accuracy"] for r in top]
    assert accs == sorted(accs, reverse=True)
    assert {r["study"] for r in top_policies(str(journal), "mnist1d", "cnn1d", n=10)} == {
        "mnist1d-cnn1d-random",
        "mnist1d-cnn1d-tpe",
    }
    assert top_policies(str(journal), "cifar10", "cnn1d") == []


def test_policies_top_cli(tmp_path, capsys):
    text = GRID.format(epochs=1, batch=16).split("policies = [")[0] + (
        'policies = [\n  { name = "onecycle", max_lr = 0.1 },\n'
        '  { name = "cosine", max_lr = 0.05 },\n]\n'
    )
    code, out, err = run(
        capsys, "tune", str(write(tmp_path, text)), "--out", str(tmp_path / "s"), "--no-progress"
    )
    assert code == 0, err
    assert "[2/2]" in out and "2 members" in out
    code, out, _ = run(
        capsys,
        "policies",
        "top",
        "--dataset",
        "mnist1d",
        "--model",
        "cnn1d",
        "--out",
        str(tmp_path / "s"),
        "-n",
        "1",
        "--json",
    )
    assert code == 0 and len(json.loads(out)) == 1
    code, _, err = run(capsys, "policies", "top", "--dataset", "mnist1d", "--model", "cnn1d")
    assert code == 2 and "exactly one of --storage or --out" in err


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[search]\nmethod = "grid"\ngrid = "table1"\nbogus = 1\n', "search.bogus: unknown key"),
        ('[search]\nmethod = "bayes"\n', "search.method"),
        ('[search]\ngrid = "table9"\n', "Unknown policy grid 'table9'"),
        ('[search]\npolicies = [{ name = "onecycel", max_lr = 0.1 }]\n', "Did you mean"),
        ('[search]\npolicies = [{ name = "onecycle", max_lr = -1 }]\n', "max_lr must be > 0"),
        ('[search]\nmethod = "random"\n', "needs 'trials'"),
        (
            '[search]\nmethod = "tpe"\ntrials = 2\n[search.space]\npolicies = ["onecycle"]\n'
            "max_lr = [0.5, 0.1]\n",
            "low < high",
        ),
        (
            '[search]\nmethod = "tpe"\ntrials = 2\n[search.space]\npolicies = ["onecycle"]\n'
            "max_lr = [0.01, 0.1]\n[search.space.params.onecycle]\nwidth = [1, 2]\n",
            "onecycle has no parameter 'width'",
        ),
        ('[policy]\nname = "onecycle"\nmax_lr = 0.1\n', "takes its policies from [search]"),
        ("[train]\nepochs = 0\n", "train.epochs"),
        ("[study]\nstorage = 3\n", "study.storage"),
        ("[study]\nheartbeat_seconds = 200\n", "3 × heartbeat_seconds"),
        ("[study]\nheartbeat_seconds = 50\ngrace_seconds = 100\n", "3 × heartbeat_seconds"),
        ("[study]\nheartbeat_seconds = inf\n", "finite number"),
        ("[study]\ngrace_seconds = nan\n", "finite number"),
    ],
)
def test_malformed_configs_fail_before_anything_trains(tmp_path, capsys, text, fragment):
    out = tmp_path / "sweep"
    code, _, err = run(capsys, "tune", str(write(tmp_path, text)), "--out", str(out))
    assert code == 2, err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_another_config_in_the_same_directory_is_refused(tmp_path, capsys):
    text = GRID.format(epochs=1, batch=16).split("policies = [")[0] + (
        'policies = [\n  { name = "onecycle", max_lr = 0.1 },\n]\n'
    )
    code, _, err = run(capsys, "tune", str(write(tmp_path, text)), "--out", str(tmp_path / "s"))
    assert code == 0, err
    code, _, err = run(
        capsys, "tune", str(write(tmp_path, text)), "--out", str(tmp_path / "s"), "--epochs", "2"
    )
    assert code == 2 and "different config" in err


def test_a_failed_or_interrupted_grid_point_is_trained_on_the_next_run(tmp_path, monkeypatch):
    import lrensemble.tuning.runner as runner

    text = GRID.format(epochs=1, batch=1).split("policies = [")[0] + (
        'policies = [\n  { name = "onecycle", max_lr = 0.1 },\n'
        '  { name = "cosine", max_lr = 0.05 },\n]\n[study]\nbatch_members = 1\n'
    )
    cfg = load_tune_config(write(tmp_path, text))
    real = runner.train_member
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(kwargs["description"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "train_member", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, tmp_path / "s", log=lambda _: None, progress=False)
    monkeypatch.setattr(runner, "train_member", real)
    result = run_sweep(cfg, tmp_path / "s", log=lambda _: None, progress=False)
    assert len(result.members) == 2 and result.failed == []
    assert [t["member"] for t in result.trials] == [calls[1]]  # only the interrupted point


def test_batched_sweep_writes_the_same_members_as_one_at_a_time(tmp_path):
    members = {}
    for batch in (1, 6):
        cfg = load_tune_config(
            write(tmp_path, GRID.format(epochs=2, batch=batch), f"b{batch}.toml")
        )
        result = run_sweep(cfg, tmp_path / f"b{batch}", log=lambda _: None, progress=False)
        pool = Pool.open(tmp_path / f"b{batch}" / "pool")
        members[batch] = {m: pool.member(m)["metrics"]["test"]["accuracy"] for m in result.members}
    assert members[1].keys() == members[6].keys() and len(members[1]) == 6
    for m in members[1]:
        assert members[6][m] == pytest.approx(members[1][m], abs=5e-3)


def test_a_sweep_says_why_it_trains_one_member_at_a_time(tmp_path, monkeypatch):
    from lrensemble.tuning import runner

    monkeypatch.setattr(runner, "batch_blocker", lambda model, shape: "a reason")
    lines: list[str] = []
    cfg = load_tune_config(write(tmp_path, GRID.format(epochs=1, batch=6)))
    result = run_sweep(cfg, tmp_path / "s", log=lines.append, progress=False)
    assert "training one member at a time: a reason" in lines
    assert not any("trials together" in line for line in lines)
    assert len(result.members) == 6


def test_a_model_that_cannot_take_the_data_fails_before_out_is_written(tmp_path, capsys):
    text = GRID.format(epochs=1, batch=16).replace(
        'name = "cnn1d"\nchannels = 32', 'name = "lenet_s"'
    )
    out = tmp_path / "s"
    code, _, err = run(capsys, "tune", str(write(tmp_path, text)), "--out", str(out))
    assert code == 2 and "lenet_s" in err and "(1, 40)" in err and "Traceback" not in err
    assert not out.exists()


def test_a_sweep_that_trained_nothing_leaves_out_reusable(tmp_path, capsys, monkeypatch):
    import lrensemble.tuning.runner as runner

    one = GRID.format(epochs=1, batch=16).split("policies = [")[0] + (
        'policies = [\n  { name = "onecycle", max_lr = 0.1 },\n]\n'
    )
    out = tmp_path / "s"

    def broken(self, study):  # a failure after the marker, before any trial starts
        raise runner.ConfigError("the storage went away.")

    monkeypatch.setattr(runner.Sweep, "_queue_missing_points", broken)
    code, _, err = run(capsys, "tune", str(write(tmp_path, one)), "--out", str(out))
    assert code == 2 and (out / "tune.json").exists()
    monkeypatch.undo()
    fixed = write(tmp_path, one.replace("max_lr = 0.1", "max_lr = 0.2"), "fixed.toml")
    code, stdout, err = run(capsys, "tune", str(fixed), "--out", str(out))
    assert code == 0, err
    assert "trained nothing; starting over" in stdout
    assert (
        Pool.open(out / "pool").member_ids() == ["onecycle-0.2-9e4855"]
        or len(Pool.open(out / "pool").member_ids()) == 1
    )
    # once a member exists, another config is refused as before
    code, _, err = run(capsys, "tune", str(write(tmp_path, one, "again.toml")), "--out", str(out))
    assert code == 2 and "different config" in err


def test_a_trial_that_died_before_its_first_epoch_leaves_out_reusable(tmp_path, capsys):
    one = GRID.format(epochs=1, batch=16).split("policies = [")[0] + (
        'policies = [\n  { name = "onecycle", max_lr = 0.1 },\n]\n'
    )
    out = tmp_path / "s"
    code, _, err = run(capsys, "tune", str(write(tmp_path, one)), "--out", str(out))
    assert code == 0, err
    # what a run killed in its first epoch leaves: its marker, a start event, no member
    import shutil

    shutil.rmtree(out / "pool" / "members")
    (out / "pool" / "members").mkdir()
    (out / "runs" / "onecycle-0.1").mkdir(parents=True)
    assert "start" in (out / "events.jsonl").read_text()
    code, stdout, err = run(
        capsys, "tune", str(write(tmp_path, one, "b.toml")), "--out", str(out), "--epochs", "2"
    )
    assert code == 0, err
    assert "starting over" in stdout
    assert len(Pool.open(out / "pool").member_ids()) == 1


def test_a_data_file_changed_in_place_is_a_new_sweep(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 5)).astype("float32"), rng.integers(0, 2, 120)
    np.savez(tmp_path / "d.npz", x_train=x[:100], y_train=y[:100], x_test=x[100:], y_test=y[100:])
    text = (
        f'[data]\nname = "npz"\npath = "{tmp_path / "d.npz"}"\n[model]\nname = "mlp"\n'
        '[train]\nepochs = 1\n[search]\nmethod = "grid"\n'
        'policies = [{ name = "onecycle", max_lr = 0.1 }]\n'
    )
    config, out = write(tmp_path, text), tmp_path / "s"
    code, _, err = run(capsys, "tune", str(config), "--out", str(out))
    assert code == 0, err
    np.savez(tmp_path / "d.npz", x_train=-x[:100], y_train=y[:100], x_test=x[100:], y_test=y[100:])
    code, _, err = run(capsys, "tune", str(config), "--out", str(out))
    assert code == 2 and "different config or data" in err


def test_a_trial_claimed_by_a_worker_killed_before_drawing_keeps_its_point(tmp_path):
    """The window between claiming a queued grid point and drawing it: the worker dies there,
    the trial is found stale, re-queued with the point it was queued with, and every point is
    trained exactly once."""
    from lrensemble.tuning.runner import Sweep
    from lrensemble.tuning.study import HOST

    cfg = load_tune_config(write(tmp_path, GRID.format(epochs=1, batch=16)))
    out = tmp_path / "s"
    _, _, study = Sweep(cfg, out, log=lambda _: None, progress=False)._prepare()
    dead = subprocess.Popen(["true"])
    dead.wait()
    trial = study.ask()  # claimed from the queue; the worker dies before drawing its point
    first = study.get_trials(deepcopy=False)[trial.number].system_attrs["fixed_params"]["point"]
    trial.set_user_attr("worker_host", HOST)
    trial.set_user_attr("worker_pid", dead.pid)
    result = run_sweep(cfg, out, log=lambda _: None, progress=False)
    points = list(
        load_tune_config(write(tmp_path, GRID.format(epochs=1, batch=16))).search.policies
    )
    assert len(result.members) == len(points) == len(set(result.members))
    trials = optuna.load_study(study_name=cfg.study_name(), storage=result.storage).trials
    retried = [t for t in trials if t.user_attrs.get("retry_of") == trial.number]
    assert len(retried) == 1 and retried[0].params["point"] == first
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(points)
    assert all(t.user_attrs.get("metrics") and t.value > 0 for t in complete)


def _weights(pool: Pool, member: str) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(pool.member_dir(member) / "model.safetensors"))


@pytest.mark.slow
def test_seeded_random_kills_lose_no_grid_point_and_change_no_member(tmp_path):
    """10 SIGKILLs of unfinished sweeps at seeded random moments (start-up, claiming, drawing,
    training, filing), alternately of one worker and of two workers sharing the sweep; then a
    last run. Every grid point ends in the pool exactly once, equal to an uninterrupted run's
    member."""
    import random

    import numpy as np

    # one member at a time: a member resumed from its checkpoint then equals the uninterrupted
    # run's exactly (members trained in batches of other compositions differ by rounding,
    # which twelve epochs of SGD amplify)
    text = GRID.format(epochs=12, batch=1).replace("channels = 32", "channels = 8")
    config = write(tmp_path, text)
    rng = random.Random(11)
    out, kills, rounds = tmp_path / "killed", 0, 0

    def members() -> int:
        path = out / "pool" / "members"
        return (
            len([d for d in path.iterdir() if not d.name.startswith(".")]) if path.is_dir() else 0
        )

    # kills count only while the sweep is unfinished; stop after 10 of them (or 40 rounds)
    while kills < 10 and rounds < 40 and members() < 6:
        workers = [
            subprocess.Popen(
                lrens("tune", str(config), "--out", str(out)),
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(1 + rounds % 2)
        ]
        time.sleep(rng.uniform(0.3, 4.0))
        for proc in workers:
            if proc.poll() is None and members() < 6:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
        rounds += 1
    assert kills >= 10, f"only {kills} kills in {rounds} rounds before the sweep finished"
    final = subprocess.run(
        lrens("tune", str(config), "--out", str(out)),
        env=ENV,
        check=False,
        capture_output=True,
        text=True,
    )
    assert final.returncode == 0, final.stderr
    straight = tmp_path / "straight"
    subprocess.run(
        lrens("tune", str(config), "--out", str(straight)), env=ENV, check=True, capture_output=True
    )
    got, want = Pool.open(out / "pool"), Pool.open(straight / "pool")
    assert got.member_ids() == want.member_ids() and len(want.member_ids()) == 6
    for member in want.member_ids():
        a, b = _weights(got, member), _weights(want, member)
        assert a.keys() == b.keys()
        for k in a:
            assert np.allclose(a[k], b[k], rtol=1e-6, atol=1e-7), (member, k)
    study = optuna.load_study(
        study_name=load_tune_config(config).study_name(), storage=f"sqlite:///{out / 'study.db'}"
    )
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["point"] for t in complete) == sorted(want.member_ids())


def test_tune_takes_a_users_file_and_model(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(90, 4)).astype("float32"), rng.integers(0, 2, 90)
    np.savez(tmp_path / "d.npz", x_train=x[:70], y_train=y[:70], x_test=x[70:], y_test=y[70:])
    one = GRID.format(epochs=1, batch=16).split("policies = [")[0] + (
        'policies = [\n  { name = "onecycle", max_lr = 0.1 },\n]\n'
    )
    out = tmp_path / "s"
    code, _, err = run(
        capsys,
        "tune",
        str(write(tmp_path, one)),
        "--data",
        str(tmp_path / "d.npz"),
        "--model",
        "mlp",
        "--out",
        str(out),
    )
    assert code == 0, err
    record = Pool.open(out / "pool").member(Pool.open(out / "pool").member_ids()[0])
    assert record["dataset"]["name"] == "npz" and record["model"]["name"] == "mlp"


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda out: (out / "tune.json").write_text('{"fingerprint": '), "unreadable or truncated"),
        (lambda out: (out / "tune.json").write_text("[1, 2]"), "not a sweep's marker"),
        (
            lambda out: (
                next((out / "pool" / "members").iterdir())
                .joinpath("val.npy")
                .write_bytes(b"\x93NUMPY")
            ),
            "is damaged",
        ),
    ],
    ids=["truncated-marker", "marker-a-list", "truncated-member-file"],
)
def test_a_damaged_sweep_is_one_sentence_not_done(tmp_path, capsys, damage, fragment):
    one = GRID.format(epochs=1, batch=16).split("policies = [")[0] + (
        'policies = [\n  { name = "onecycle", max_lr = 0.1 },\n]\n'
    )
    config, out = write(tmp_path, one), tmp_path / "s"
    code, _, err = run(capsys, "tune", str(config), "--out", str(out))
    assert code == 0, err
    damage(out)
    code, _, err = run(capsys, "tune", str(config), "--out", str(out))
    assert code == 2 and fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_random_search_trial_killed_before_drawing_does_not_repeat_a_point(tmp_path):
    """Random search: a claimed trial whose worker died before drawing has nothing to queue
    again; it is failed, the budget refills with a fresh seed, and no point is drawn twice."""
    from lrensemble.tuning.runner import Sweep
    from lrensemble.tuning.study import HOST

    text = GRID.format(epochs=1, batch=1).split("[search]")[0] + (
        '[search]\nmethod = "random"\ntrials = 3\n[search.space]\n'
        'policies = ["onecycle", "cosine"]\nmax_lr = [0.01, 0.5]\n'
    )
    cfg = load_tune_config(write(tmp_path, text))
    out = tmp_path / "s"
    sweep = Sweep(cfg, out, log=lambda _: None, progress=False)
    dataset, pool, study = sweep._prepare()
    sweep._run_trials(sweep._claim(study, 1), dataset, pool, study)  # trial 0: a member
    trial = study.ask()  # trial 1: claimed, its worker dies before drawing
    dead = subprocess.Popen(["true"])
    dead.wait()
    trial.set_user_attr("worker_host", HOST)
    trial.set_user_attr("worker_pid", dead.pid)
    result = run_sweep(cfg, out, log=lambda _: None, progress=False)
    assert len(result.members) == 3 == len(set(result.members))
    trials = optuna.load_study(study_name=cfg.study_name(), storage=result.storage).trials
    assert trials[1].state == optuna.trial.TrialState.FAIL
    assert not [t for t in trials if t.user_attrs.get("retry_of") == 1]  # nothing to re-queue


def test_workers_hint_gives_each_worker_its_share(tmp_path):
    cfg = load_tune_config(write(tmp_path, GRID.format(epochs=1, batch=16)), workers=2)
    from lrensemble.tuning.runner import Sweep

    sweep = Sweep(cfg, tmp_path / "s", log=lambda _: None, progress=False)
    assert sweep._share() == 3  # 6 grid points, 2 workers
    _, _, study = sweep._prepare()
    assert len(sweep._claim(study, sweep._share())) == 3  # the other 3 stay queued


def test_the_storage_url_is_not_part_of_the_sweep_and_its_password_is_never_written(
    tmp_path, capsys, monkeypatch
):
    one = GRID.format(epochs=1, batch=16).split("policies = [")[0] + (
        'policies = [\n  { name = "onecycle", max_lr = 0.1 },\n]\n'
    )
    out = tmp_path / "s"
    journal = tmp_path / "study.log"
    code, _, err = run(
        capsys, "tune", str(write(tmp_path, one)), "--out", str(out), "--storage", str(journal)
    )
    assert code == 0, err
    # the same study through an environment variable: the same sweep, reused
    monkeypatch.setenv("LRENS_TEST_STORAGE", f"journal:{journal}")
    code, out_text, err = run(
        capsys,
        "tune",
        str(write(tmp_path, one)),
        "--out",
        str(out),
        "--storage",
        "env:LRENS_TEST_STORAGE",
    )
    assert code == 0 and "1 member in" in out_text and "val acc" not in out_text, err
    # a database server with a password, unreachable for longer than the outage allowance:
    # refused before anything is written, password masked
    bad = tmp_path / "bad"
    code, out_text, err = run(
        capsys,
        "tune",
        str(write(tmp_path, one + "\n[study]\noutage_seconds = 1\n", "bad.toml")),
        "--out",
        str(bad),
        "--storage",
        "postgresql://lrens:s3cret@127.0.0.1:1/none",
    )
    assert code == 2 and "s3cret" not in err and "***" in err and not bad.exists()
    assert "s3cret" not in out_text
    code, _, err = run(
        capsys, "tune", str(write(tmp_path, one)), "--out", str(bad), "--storage", "env:UNSET_X"
    )
    assert code == 2 and "UNSET_X" in err and not bad.exists()


def test_two_workers_with_their_own_out_on_one_storage_train_each_point_once(tmp_path):
    """Two machines without a shared filesystem: each worker has its own --out (its own pool
    and lock) and both record in one storage. Even when both queue the grid (simulated: every
    point queued twice), every point is trained exactly once, and merging the two pools gives
    the whole sweep."""
    from lrensemble.tuning.runner import Sweep

    journal = tmp_path / "shared.log"
    text = GRID.format(epochs=1, batch=16) + f'storage = "{journal}"\nworkers = 2\n'
    config = write(tmp_path, text)
    cfg = load_tune_config(config)
    _, _, study = Sweep(cfg, tmp_path / "a", log=lambda _: None, progress=False)._prepare()
    for key in Sweep(cfg, tmp_path / "a", log=lambda _: None, progress=False).points:
        study.enqueue_trial({"point": key}, user_attrs={"point": key})  # the other's queue
    procs = [
        subprocess.Popen(
            lrens("tune", str(config), "--out", str(tmp_path / name)),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    from lrensemble.tuning.study import open_storage

    trials = optuna.load_study(
        study_name=cfg.study_name(), storage=open_storage(str(journal))
    ).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6 and len({t.user_attrs["point"] for t in complete}) == 6
    assert all(t.user_attrs.get("metrics") for t in complete)  # none without a member
    a, b = (set(Pool.open(tmp_path / n / "pool").member_ids()) for n in ("a", "b"))
    assert not a & b and len(a | b) == 6
    again = subprocess.run(
        lrens("tune", str(config), "--out", str(tmp_path / "a")),
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"{len(b)} more member" in again.stdout and "live in other pools" in again.stdout
    code = subprocess.run(
        lrens(
            "pool",
            "merge",
            str(tmp_path / "a" / "pool"),
            str(tmp_path / "b" / "pool"),
            "--out",
            str(tmp_path / "all"),
        ),
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert code.returncode == 0, code.stderr
    assert len(Pool.open(tmp_path / "all").member_ids()) == 6


RANDOM = (
    GRID.format(epochs=1, batch=16).split("[search]")[0]
    + """
[search]
method = "random"
trials = 5

[search.space]
policies = ["onecycle", "cosine"]
max_lr = [0.01, 0.5]

[study]
storage = "{storage}"
workers = 2
"""
)


def test_random_search_workers_with_their_own_out_spend_the_budget_once(tmp_path):
    """Random search across two machines (no shared --out, one storage): the budget of 5
    trials is spent once between them, not once each."""
    config = write(tmp_path, RANDOM.format(storage=f"sqlite:///{tmp_path / 'study.db'}"))
    procs = [
        subprocess.Popen(
            lrens("tune", str(config), "--out", str(tmp_path / name)),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    cfg = load_tune_config(config)
    from lrensemble.tuning.study import open_storage

    study = optuna.load_study(
        study_name=cfg.study_name(), storage=open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    )
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 5
    a, b = (set(Pool.open(tmp_path / n / "pool").member_ids()) for n in ("a", "b"))
    assert not a & b and len(a | b) == 5


def test_a_random_trial_beyond_the_budget_is_failed_not_trained(tmp_path):
    """Two workers that both saw room for one more trial both ask: the trial that has as many
    unfailed trials below it as the budget is failed, and the claim stops."""
    from lrensemble.tuning.runner import Sweep

    storage = tmp_path / "s.log"
    cfg = load_tune_config(write(tmp_path, RANDOM.format(storage=storage)))
    sweep = Sweep(cfg, tmp_path / "a", log=lambda _: None, progress=False)
    _, _, study = sweep._prepare()
    for _ in range(5):  # the budget, taken by other workers since this one counted
        study.ask()
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # a failure refills nothing...
    assert sweep._over_budget(study, 6)
    study.tell(0, state=optuna.trial.TrialState.FAIL)  # ...until a counted trial fails
    assert not sweep._over_budget(study, 6)


def test_an_outage_while_a_member_is_filed_is_waited_out(tmp_path, monkeypatch):
    """The database drops while a worker records a finished trial's metrics: the worker
    waits, records them, and the trial is complete with its member."""
    from lrensemble.tuning import study as study_module

    one = GRID.format(epochs=1, batch=16).split("policies = [")[0] + (
        'policies = [\n  { name = "onecycle", max_lr = 0.1 },\n]\n'
    )
    cfg = load_tune_config(write(tmp_path, one))
    real = optuna.Trial.set_user_attr
    drops = []

    def flaky(self, key, value):
        if key == "metrics" and not drops:
            drops.append(key)
            raise optuna.exceptions.StorageInternalError("server closed the connection")
        return real(self, key, value)

    monkeypatch.setattr(optuna.Trial, "set_user_attr", flaky)
    monkeypatch.setattr(study_module.time, "sleep", lambda _: None)
    result = run_sweep(cfg, tmp_path / "s", log=lambda _: None, progress=False)
    assert drops and len(result.members) == 1
    (trial,) = optuna.load_study(study_name=cfg.study_name(), storage=result.storage).trials
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.user_attrs["metrics"]


def test_a_storage_outage_is_waited_out_then_one_sentence(monkeypatch):
    from lrensemble.errors import DataError
    from lrensemble.tuning import study as study_module

    pauses = []
    monkeypatch.setattr(study_module.time, "sleep", pauses.append)
    calls = iter([optuna.exceptions.StorageInternalError("gone")] * 2 + ["ok"])

    def flaky():
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert study_module.with_retry(flaky, "postgresql://u:pw@db/x") == "ok"
    assert pauses == [1.0, 2.0]

    def down():
        raise optuna.exceptions.StorageInternalError("connection refused")

    clock = iter(range(0, 10_000, 7))
    monkeypatch.setattr(study_module.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(DataError, match=r"unreachable for 30 s .*connection refused") as err:
        study_module.with_retry(down, "postgresql://u:pw@db/x", seconds=30)
    assert "pw" not in str(err.value)
    with pytest.raises(ValueError):  # not an outage: raised at once
        study_module.with_retry(lambda: int("x"), "sqlite://")
