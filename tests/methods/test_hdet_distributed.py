"""HDET over real processes (gloo, localhost): two ranks under `torchrun` with DDP follow the
simulated replicas' trajectory step for step, with equal parameters right after each sync and
the same permutations on both ranks; a rank that exits makes the other end with one sentence
naming the process group's timeout.

This file is also the ranks' program: `python tests/methods/test_hdet_distributed.py MODE OUT`
with torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lrensemble.methods.hdet import (
    HDETScheduler,
    LabelSmoothing,
    ReplicaLostError,
    SimulatedHDET,
    WeightDecay,
    multipliers,
    onecycle_lr,
    warm_noisy_init,
)

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")
STEPS, SYNC, TIMEOUT_S = 12, 4, 10
HDET = {
    "sync_every": SYNC,
    "warmup_steps": SYNC,
    "sigma": 0.05,
    "seed": 3,
    "spread": 0.5,
    "div_factor": 5.0,
    "final_div_factor": 10.0,  # a floor the few syncs of a short run do not hit
}


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    groups = [{"params": model[0].parameters()}, {"params": model[2].parameters()}]
    return torch.optim.SGD(groups, lr=0.1, momentum=0.9)


def hyperparameters() -> list:
    return [WeightDecay(1e-3), LabelSmoothing(0.1)]


def batch(step: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank `rank`'s batch of step `step`: a fixed synthetic stream, the same in every process."""
    g = torch.Generator().manual_seed(1000 * step + rank)
    return torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# -- the ranks' program ------------------------------------------------------------------------


def rank_trajectory(out: Path) -> None:
    """Under torchrun: DDP, warm noisy init after DDP's broadcast, HDETScheduler with replicas
    and rank from the process group; every step's parameters, LRs and permutations saved."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = DDP(make_model())
    rank = torch.distributed.get_rank()
    warm_noisy_init(model.module, rank=rank, seed=1)
    opt = make_optimizer(model.module)
    sched = HDETScheduler(
        opt, [0.3, 0.15], STEPS, model=model, hyperparameters=hyperparameters(), **HDET
    )
    record = {"replicas": sched.replicas, "params": [], "lrs": [], "perms": [], "base": []}
    for step in range(STEPS):
        x, y = batch(step, rank)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y, label_smoothing=sched.value("label_smoothing"))
        loss.backward()
        opt.step()
        sched.step(loss)
        record["params"].append(flat(model))
        record["lrs"].append(sched.get_last_lr())
        record["perms"].append(copy.deepcopy(sched.assignment.perms))
        record["base"].append(sched.base_lr())
    torch.save(record, out / f"rank{rank}.pt")


def rank_lost(out: Path) -> None:
    """Plain replicas (no DDP): rank 1 exits after one step; rank 0 meets the sync alone."""
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = HDETScheduler(opt, 0.1, STEPS, model=model, sync_every=3)
    for step in range(STEPS):
        if step == 1 and sched.rank == 1:
            os._exit(1)  # a crash: no goodbye to the other rank
        x, y = batch(step, sched.rank)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        sched.step(loss)


def main(mode: str, out: Path) -> int:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", timeout=timedelta(seconds=TIMEOUT_S))
    try:
        {"trajectory": rank_trajectory, "lost": rank_lost}[mode](out)
    except ReplicaLostError as exc:  # what the CLI does with an lrensemble error
        print(exc, file=sys.stderr)
        os._exit(2)  # no teardown: the other rank is gone
    torch.distributed.barrier()  # no rank tears down while another still talks to it
    torch.distributed.destroy_process_group()
    return 0


# -- the tests ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def simulate() -> dict:
    """The same run as `rank_trajectory`, two replicas in this process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models = [make_model() for _ in range(2)]
        for r, m in enumerate(models):
            warm_noisy_init(m, rank=r, seed=1)
        opts = [make_optimizer(m) for m in models]
        sim = SimulatedHDET(
            models, opts, [0.3, 0.15], STEPS, hyperparameters=hyperparameters(), **HDET
        )
        record = {"params": [], "lrs": [], "base": []}
        for step in range(STEPS):
            losses = []
            for r, (m, o, s) in enumerate(zip(models, opts, sim.schedulers, strict=True)):
                x, y = batch(step, r)
                o.zero_grad(set_to_none=True)
                loss = F.cross_entropy(m(x), y, label_smoothing=s.value("label_smoothing"))
                loss.backward()
                losses.append(loss.detach())
            sim.average_gradients()
            for o in opts:
                o.step()
            sim.step(losses)
            record["params"].append([flat(m) for m in models])
            record["lrs"].append([s.get_last_lr() for s in sim.schedulers])
            record["base"].append(sim.schedulers[0].base_lr())
        return record
    finally:
        torch.set_num_threads(threads)


def launch(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        cmd, cwd=ROOT, env={**base, **(env or {})}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside python")
def test_torchrun_ranks_follow_the_simulated_trajectory(tmp_path):
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(HERE), "trajectory"]
    result = launch([*cmd, str(tmp_path)])
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    sim = simulate()
    rho = multipliers(2, 0.5)
    assert ranks[0]["replicas"] == ranks[1]["replicas"] == 2
    assert ranks[0]["perms"] == ranks[1]["perms"]
    assert len({str(p) for p in ranks[0]["perms"]}) > 1  # redrawn at the syncs
    # the controller took over at the first sync: no longer the one-cycle value
    assert ranks[0]["base"][SYNC - 1][0] != pytest.approx(onecycle_lr(SYNC, STEPS, 0.3, 0.3, 5.0))
    floor = 0.3 / 5.0 / 10.0
    assert floor < ranks[0]["base"][SYNC][0] < 0.3  # between the syncs: the controller's value
    assert ranks[0]["base"][-1][0] == pytest.approx(floor)  # the last interval at the floor
    for step in range(STEPS):
        synced = (step + 1) % SYNC == 0
        assert torch.equal(ranks[0]["params"][step], ranks[1]["params"][step]) == synced, step
        for r in range(2):
            torch.testing.assert_close(
                ranks[r]["params"][step], sim["params"][step][r], rtol=1e-5, atol=1e-6
            )
            assert ranks[r]["lrs"][step] == pytest.approx(sim["lrs"][step][r], rel=1e-6)
            assert ranks[r]["base"][step] == pytest.approx(sim["base"][step], rel=1e-6)
            for g, lr in enumerate(ranks[r]["lrs"][step]):
                k = ranks[r]["perms"][step][g][r]
                assert lr == pytest.approx(float(rho[k]) * ranks[r]["base"][step][g], rel=1e-9)


def test_a_lost_rank_ends_the_other_with_one_sentence(tmp_path):
    env = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    cmd = [sys.executable, str(HERE), "lost", str(tmp_path)]
    base = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **env}
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            cmd, cwd=ROOT, env={**base, "RANK": str(r)}, stderr=subprocess.PIPE, text=True
        )
        for r in range(2)
    ]
    try:
        errors = [p.communicate(timeout=TIMEOUT_S + 30)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    elapsed = time.monotonic() - start
    assert procs[1].returncode == 1
    assert procs[0].returncode == 2, errors[0][-3000:]
    message = errors[0].strip().splitlines()[-1]
    assert message.startswith("HDET's sync at step 3 failed: another replica exited")
    assert f"the process group's timeout of {TIMEOUT_S} s" in message
    assert elapsed < TIMEOUT_S + 15


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
