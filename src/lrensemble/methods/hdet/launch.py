"""Starting an HDET job: `torchrun --standalone` with N ranks on this machine (a subprocess,
watched with a timeout), or N replicas simulated in this process. A failed job is one
sentence: a rank's own error line, or which rank died, with the log's path."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from lrensemble.data.base import Dataset
from lrensemble.errors import LREnsembleError
from lrensemble.methods.hdet.communicators import LocalCommunicator
from lrensemble.methods.hdet.config import HdetConfig
from lrensemble.methods.hdet.simulate import SimulatedHDET
from lrensemble.methods.hdet.train import (
    TrainOutcome,
    build_replica,
    scheduler_options,
    train_replicas,
)
from lrensemble.methods.hdet.worker import ERROR_TAG, LOG_TAG

LOG = "torchrun.log"


class HdetJobError(LREnsembleError, RuntimeError):
    """The torchrun job failed: a rank exited, was killed, or the job ran out of time."""


def torchrun_command(config_path: Path, out: Path, nproc: int) -> list[str]:
    """`torchrun --standalone --nproc_per_node N -m lrensemble.methods.hdet.worker CONFIG OUT`,
    with this interpreter (`python -m torch.distributed.run` is torchrun)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc_per_node", str(nproc), "-m", "lrensemble.methods.hdet.worker",
        str(config_path), str(out),
    ]  # fmt: skip


def launch_torchrun(
    config_path: Path,
    out: Path,
    nproc: int,
    *,
    timeout: float | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Run the job and wait (at most `timeout` seconds); rank 0's progress lines go to `log`,
    everything to `out/torchrun.log`. Raises `HdetJobError` if the job does not succeed."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        torchrun_command(config_path, out, nproc),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: a timeout ends the ranks too
    )
    errors: list[str] = []
    died: list[str] = []

    def relay() -> None:
        assert proc.stdout is not None
        with open(out / LOG, "a", encoding="utf-8") as fh:
            for line in proc.stdout:
                fh.write(line)
                text = line.rstrip("\n")
                if LOG_TAG in text:
                    log(text.split(LOG_TAG, 1)[1])
                elif ERROR_TAG in text:
                    errors.append(text.split(ERROR_TAG, 1)[1])
                elif (m := re.search(r"rank\s*:\s*(\d+).*", text)) and "local_rank" in text:
                    died.append(m.group(1))
                elif (m := re.search(r"exitcode\s*:\s*(-?\d+)", text)) and died:
                    died[-1] = f"{died[-1]} (exit code {m.group(1)})"

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(timeout=5)
        raise HdetJobError(
            f"The HDET job did not finish within {timeout:g} s and was stopped; see {out / LOG}."
        ) from None
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)  # Ctrl-C: no rank outlives the command
        proc.wait()
        raise
    reader.join(timeout=5)
    if code == 0:
        return
    if errors:
        raise HdetJobError(errors[0] if errors[0].endswith(".") else f"{errors[0]}.")
    who = f"rank {died[0]}" if died else "a rank"
    raise HdetJobError(
        f"The HDET job failed: {who} exited before the end and torchrun stopped the others "
        f"(torchrun exit code {code}); see {out / LOG}."
    )


def train_in_process(
    config: HdetConfig,
    dataset: Dataset,
    out: Path,
    replicas: int,
    fingerprint: str,
    log: Callable[[str], None] = print,
) -> TrainOutcome:
    """The job's N replicas simulated in this process (`SimulatedHDET`), on the config's device:
    the same files as a torchrun job."""
    from lrensemble.device import resolve_device

    device = resolve_device(config.train.device)
    reps = [build_replica(config, dataset, r, replicas, device) for r in range(replicas)]
    total = config.train.epochs * len(reps[0].batches)
    sim = SimulatedHDET(
        [r.net for r in reps], [r.optimizer for r in reps], config.hdet.max_lr, total,
        **scheduler_options(config),
    )  # fmt: skip
    for r, sched in zip(reps, sim.schedulers, strict=True):
        r.scheduler = sched
    with torch.random.fork_rng(devices=[]):
        return train_replicas(config, reps, LocalCommunicator(sim), out, fingerprint, log)
