"""How the training loop's replicas meet: `RankCommunicator` for one replica per process under
torchrun (DDP all-reduces the gradients, the scheduler syncs over the process group) and
`LocalCommunicator` for replicas simulated in one process (`SimulatedHDET`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from lrensemble.methods.hdet.collective import replica_errors
from lrensemble.methods.hdet.scheduler import HDETScheduler
from lrensemble.methods.hdet.simulate import SimulatedHDET


class RankCommunicator:
    """This process's replica, rank `scheduler.rank` of the default process group."""

    def __init__(self, scheduler: HDETScheduler, device: torch.device) -> None:
        self.scheduler, self.device = scheduler, device
        self.replicas = scheduler.replicas
        self.lead = scheduler.rank == 0

    def average_gradients(self) -> None:
        """Nothing: DDP's backward did it."""

    def step(self, losses: Sequence[torch.Tensor]) -> None:
        self.scheduler.step(losses[0])

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        with replica_errors(self.scheduler.last_epoch, None, self.device):
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def barrier(self) -> None:
        with replica_errors(self.scheduler.last_epoch, None, self.device):
            dist.barrier()


class LocalCommunicator:
    """Every replica in this process, driven by `sim`."""

    lead = True

    def __init__(self, sim: SimulatedHDET) -> None:
        self.sim, self.replicas = sim, sim.replicas

    def average_gradients(self) -> None:
        self.sim.average_gradients()

    def step(self, losses: Sequence[torch.Tensor]) -> None:
        self.sim.step(losses)

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def barrier(self) -> None:
        """Nothing to wait for."""
