"""`lrens hdet`: config errors are one sentence with nothing written; a simulated run and a real
two-process torchrun run file the averaged model (and the replicas) into the pool; a killed rank
ends the job with one sentence and exit status 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from lrensemble.pool import Pool
from tests.cli.test_cli import run as cli

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
[data]
name = "mnist1d"
[model]
name = "cnn1d"
channels = 8
[train]
epochs = {epochs}
batch_size = 128
seed = 0
[hdet]
replicas = 2
max_lr = 0.1
final_div_factor = 10.0
sync_every = 5
replica_members = {replicas}
timeout = 15
{extra}
"""


def write(tmp_path: Path, epochs: int = 2, replicas: bool = True, extra: str = "") -> Path:
    path = tmp_path / "hdet.toml"
    text = CONFIG.format(epochs=epochs, replicas=str(replicas).lower(), extra=extra)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("spread = 1.5", "hdet.spread"),
        ('init = "missing.safetensors"', "does not exist"),
        ('warm_init = false\ninit = "x.safetensors"', "set warm_init = true"),
        ("[hdet.spread_hyperparameters]\ndropout = 0.5", "set dropout"),
        ("bogus = 1", "bogus"),
    ],
)
def test_config_errors_are_one_sentence_and_write_nothing(tmp_path, capsys, extra, message):
    config = write(tmp_path, extra=extra)
    out = tmp_path / "run"
    code, _, err = cli(capsys, "hdet", str(config), "--out", str(out), "--simulate")
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_sam_and_a_bad_nproc_are_refused(tmp_path, capsys):
    config = write(tmp_path, extra="")
    text = config.read_text().replace("seed = 0", 'seed = 0\noptimizer = "sam"')
    config.write_text(text)
    code, _, err = cli(capsys, "hdet", str(config), "--out", str(tmp_path / "a"))
    assert code == 2 and "sgd or adamw" in err
    config = write(tmp_path)
    code, _, err = cli(capsys, "hdet", str(config), "--out", str(tmp_path / "b"), "--nproc", "0")
    assert code == 2 and "--nproc" in err and not (tmp_path / "b").exists()


def test_simulated_run_files_the_averaged_model(tmp_path, capsys):
    config = write(tmp_path, replicas=False)
    out = tmp_path / "run"
    code, stdout, err = cli(capsys, "hdet", str(config), "--out", str(out), "--simulate")
    assert code == 0, err
    pool = Pool.open(out / "pool")
    (member,) = pool.member_ids()
    record = pool.member(member)
    assert record["method"] == "hdet" and record["hdet"]["replicas"] == 2
    assert "no report: it needs" in stdout
    # run again: nothing trains, nothing is filed twice
    code, stdout, _ = cli(capsys, "hdet", str(config), "--out", str(out), "--simulate")
    assert code == 0 and "0 filed now" in stdout and "epoch 1/2" not in stdout


def torchrun_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_two_torchrun_ranks_file_averaged_and_replica_members(tmp_path):
    config = write(tmp_path)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "lrensemble", "hdet", str(config), "--out", str(out)]
    result = subprocess.run(
        [*cmd, "--nproc", "2", "--no-report", "--timeout", "60"],
        env=torchrun_env(), capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    pool = Pool.open(out / "pool")
    ids = pool.member_ids()
    (averaged,) = [i for i in ids if pool.member(i)["method"] == "hdet"]
    replicas = [i for i in ids if pool.member(i)["method"] == "hdet-replica"]
    assert len(replicas) == 2
    weights = {i: load_file(pool.member_file(i, "model.safetensors")) for i in ids}
    for r in replicas:
        assert pool.member(r)["parent"] == averaged
        differs = [not (weights[r][k] == weights[averaged][k]).all() for k in weights[averaged]]
        assert any(differs), r  # the replicas' pre-sync weights are not the average


def test_a_killed_rank_ends_the_job_with_one_sentence(tmp_path):
    config = write(tmp_path, epochs=200)
    out = tmp_path / "run"
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrensemble", "hdet", str(config), "--out", str(out),
         "--nproc", "2", "--no-report"],
        env=torchrun_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        pid_file = out / "train" / "pids" / "rank1.pid"
        while not (pid_file.exists() and (out / "train" / "checkpoints").exists()):
            assert proc.poll() is None and time.monotonic() - start < 40, "the job did not start"
            time.sleep(0.2)
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        _, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    # which side reports first depends on timing: torchrun seeing rank 1 gone, or rank 0's
    # sync failing on the lost peer; either way one sentence that names the lost replica
    assert (
        "The HDET job failed: rank 1 exited" in lines[0]
        or "another replica exited, lost its connection" in lines[0]
    ), lines[0]
    assert time.monotonic() - start < 60


def test_a_simulated_run_killed_after_an_epoch_resumes_to_the_same_model(tmp_path):
    """SIGKILL once the first epoch's checkpoint is written; the rerun starts from it and files
    the averaged model of an uninterrupted run."""
    config = write(tmp_path, epochs=10, replicas=False)
    argv = [sys.executable, "-m", "lrensemble", "hdet", str(config), "--simulate", "--no-report"]
    straight = subprocess.run(
        [*argv, "--out", str(tmp_path / "straight")], capture_output=True, text=True, check=False
    )
    assert straight.returncode == 0, straight.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([*argv, "--out", str(out)], stdout=subprocess.PIPE, text=True)
    latest = out / "train" / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 60
    while not latest.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "no checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    members = out / "pool" / "members"
    assert not (members.is_dir() and any(members.iterdir())), "killed after it had finished"
    again = subprocess.run([*argv, "--out", str(out)], capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    pools = [Pool.open(out / "pool"), Pool.open(tmp_path / "straight" / "pool")]
    wa, wb = (load_file(str(p.member_file(p.member_ids()[0], "model.safetensors"))) for p in pools)
    for name in wb:
        assert (wa[name] - wb[name]).abs().max() <= 1e-5, name
