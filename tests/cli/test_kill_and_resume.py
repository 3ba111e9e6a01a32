"""A real `lrens train` process killed with SIGKILL mid-run resumes to the exact weights of an
uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

CONFIG = """
[model]
name = "mlp"
hidden = [128]
dropout = 0.1

[policy]
name = "composite"
max_lr = 0.2
min_lr = 0.04

[train]
epochs = 60
batch_size = 64
optimizer = "sgd"
nesterov = true
seed = 7
"""


def lrens(*args):
    return [sys.executable, "-m", "lrensemble", *args]


@pytest.mark.slow
def test_sigkill_then_rerun_matches_an_uninterrupted_run(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(CONFIG)
    env = {**os.environ, "CI": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        lrens("train", str(config), "--out", str(killed)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.safetensors").exists():
        assert proc.poll() is None, "the run ended before writing a checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.3)  # let it get into a later epoch, possibly mid-write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "member.json").exists(), "killed too late to test resume"

    subprocess.run(
        lrens("train", str(config), "--out", str(killed)), env=env, check=True, capture_output=True
    )
    straight = tmp_path / "straight"
    subprocess.run(
        lrens("train", str(config), "--out", str(straight)),
        env=env,
        check=True,
        capture_output=True,
    )

    a = load_file(str(killed / "model.safetensors"))
    b = load_file(str(straight / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(p.name for p in killed.iterdir()) == ["member.json", "model.safetensors"]
