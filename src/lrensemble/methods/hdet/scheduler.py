"""`HDETScheduler`: a drop-in `OneCycleLR` that fans N data-parallel replicas out over a spread
of LRs (and other hyperparameters) and converges them by averaging every `sync_every` steps.

One scheduler per replica. `step(loss)` is one `advance`, then at a sync `exchange` (the
collectives) and `synchronize` (the controller and new permutations, identical on every
replica), then `apply` (this replica's values into the optimizer and model). `SimulatedHDET`
calls the same four for N replicas in one process, averaging without communication.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrensemble.errors import CheckpointError, ParameterError
from lrensemble.methods.hdet.averaging import replica_tensors
from lrensemble.methods.hdet.collective import (
    average_across_ranks,
    exchange_losses,
    replica_errors,
)
from lrensemble.methods.hdet.controller import controller_update, decay_rate
from lrensemble.methods.hdet.hyperparams import Hyperparameter
from lrensemble.methods.hdet.onecycle import onecycle_floor, onecycle_lr
from lrensemble.methods.hdet.spread import Assignment, multipliers


class HDETScheduler(LRScheduler):
    """`OneCycleLR(optimizer, max_lr, total_steps | epochs × steps_per_epoch, pct_start,
    div_factor, final_div_factor)` (cosine annealing, two phases, no momentum cycling) for one
    of `replicas` replicas, plus HDET:

    - fan-out: parameter group g of replica `rank` uses `ρ_{π_g(rank)} · η̄_g`, η̄_g the
      one-cycle LR (the controller's once it takes over), ρ the multipliers of `spread`;
    - converge: every `sync_every` steps (and at the last step) the parameters and
      floating-point buffers of `model` are averaged over the process group `group`;
    - auto-LR (`auto_lr`): at every sync from step `warmup_steps` on (default: the one-cycle
      peak), the controller moves each η̄_g toward the LRs of the replicas with the lower mean
      loss, decaying to the one-cycle floor over the sync intervals left, within
      [floor, max_lr]; `hyperparameters` are spread and controlled the same way;
    - after every sync a new permutation per slot from a generator seeded with `seed` (the
      same seed on every replica).

    Call `step(loss)` after `optimizer.step()`, `loss` this replica's training loss of the step
    (a tensor or a number; needed when `auto_lr`). Without `torch.distributed` initialised it
    is one replica (`replicas=1`): plain one-cycle. `replicas` and `rank` default to the
    group's size and this process's rank in it.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        *,
        model: nn.Module | Sequence[nn.Module] | None = None,
        replicas: int | None = None,
        rank: int | None = None,
        group: dist.ProcessGroup | None = None,
        spread: float = 0.5,
        sync_every: int = 100,
        warmup_steps: int | None = None,
        auto_lr: bool = True,
        beta: float = 0.9,
        lam: float = 0.5,
        sigma: float = 0.1,
        seed: int = 0,
        hyperparameters: Sequence[Hyperparameter] | None = None,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise ParameterError(f"optimizer must be a torch Optimizer, got {type(optimizer)}.")
        groups = len(optimizer.param_groups)
        self.total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        self.max_lrs = _per_group(max_lr, groups)
        if not 0.0 < float(pct_start) < 1.0:
            raise ParameterError(f"pct_start must be in (0, 1), got {pct_start!r}.")
        if not (float(div_factor) > 0 and float(final_div_factor) > 0):
            raise ParameterError("div_factor and final_div_factor must be positive.")
        self.pct_start, self.div_factor = float(pct_start), float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.floors = [
            onecycle_floor(m, self.div_factor, self.final_div_factor) for m in self.max_lrs
        ]

        self.group = group
        distributed = dist.is_available() and dist.is_initialized()
        if replicas is None:
            replicas = dist.get_world_size(group) if distributed else 1
        if rank is None:
            rank = dist.get_rank(group) if distributed else 0
        self.replicas = _whole("replicas", replicas, low=1)
        self.rank = _whole("rank", rank)
        if not 0 <= self.rank < self.replicas:
            raise ParameterError(f"rank must be in [0, {self.replicas}), got {self.rank}.")
        self.models = _models(model)
        if self.replicas > 1 and not self.models:
            raise ParameterError(
                "HDETScheduler needs model= (the model or models it averages at every sync) "
                "when there is more than one replica."
            )
        self.sync_every = _whole("sync_every", sync_every, low=1)
        peak = int(self.pct_start * self.total_steps)
        self.warmup_steps = _whole("warmup_steps", peak if warmup_steps is None else warmup_steps)
        if not (0.0 <= beta < 1.0 and lam >= 0.0 and sigma > 0.0):
            raise ParameterError(
                f"Need 0 <= beta < 1, lam >= 0 and sigma > 0, got {beta!r}, {lam!r}, {sigma!r}."
            )
        self.auto_lr, self.beta, self.lam, self.sigma = bool(auto_lr), beta, lam, sigma
        self.hyperparameters = list(hyperparameters or [])
        names = [h.name for h in self.hyperparameters]
        if len(set(names)) != len(names):
            raise ParameterError(f"Each hyperparameter may be spread once, got {names}.")

        # one slot per parameter group's LR, then one per hyperparameter
        self.rho = [multipliers(self.replicas, spread)] * groups + [
            multipliers(self.replicas, h.spread) for h in self.hyperparameters
        ]
        self.assignment = Assignment(self.replicas, len(self.rho), seed)
        self._lr_base: list[float] | None = None  # None: the one-cycle schedule's
        self._hyper_base = [h.value for h in self.hyperparameters]
        self._velocity = torch.zeros(len(self.rho), dtype=torch.float64)
        self._device = self._comm_device()
        self._loss_sum = torch.zeros((), dtype=torch.float64, device=self._device)
        self._loss_count = 0
        self._values: dict[str, float] = {}
        super().__init__(optimizer)

    # -- what a replica uses -------------------------------------------------------------------

    def base_lr(self) -> list[float]:
        """η̄ per parameter group at the current step, before this replica's multiplier."""
        if self._lr_base is not None:
            return list(self._lr_base)
        step = max(self.last_epoch, 0)
        return [
            onecycle_lr(
                step, self.total_steps, m, self.pct_start, self.div_factor, self.final_div_factor
            )
            for m in self.max_lrs
        ]

    def replica_values(self) -> torch.Tensor:
        """(N, S) float64: every replica's value of every slot (LR per group, then each
        hyperparameter) at the current step; row `rank` is this replica's."""
        base = torch.tensor([*self.base_lr(), *self._hyper_base], dtype=torch.float64)
        perms = torch.tensor(self.assignment.perms, dtype=torch.long)  # (S, N)
        rho = torch.stack([r[p] for r, p in zip(self.rho, perms, strict=True)])  # (S, N)
        return (rho * base[:, None]).T

    def value(self, name: str) -> float:
        """This replica's current value of hyperparameter `name` (e.g. "label_smoothing")."""
        if name not in self._values:
            raise ParameterError(
                f"No hyperparameter {name!r} is spread; spread: {sorted(self._values)}."
            )
        return self._values[name]

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return self.replica_values()[self.rank, : len(self.max_lrs)].tolist()

    # -- one step ------------------------------------------------------------------------------

    def step(self, loss: torch.Tensor | float | None = None) -> None:  # type: ignore[override]
        """One training step done: record `loss`, sync if due, set the next step's values."""
        if self.last_epoch < 0:  # LRScheduler's initial call: the values of step 0
            self.last_epoch, self._step_count = 0, 1
            self.apply()
            return
        if self.advance(loss):
            self.synchronize(self.exchange())
        self.apply()

    def advance(self, loss: torch.Tensor | float | None = None) -> bool:
        """Record this step's loss and count the step; True when a sync is due now."""
        if self.last_epoch >= self.total_steps:
            raise ParameterError(
                f"Tried to step {self.last_epoch + 1} times; total_steps is {self.total_steps}."
            )
        if loss is not None:
            value = torch.as_tensor(loss).detach()
            if value.numel() != 1:
                raise ParameterError(
                    f"step(loss) takes the step's scalar loss, got a tensor of shape "
                    f"{tuple(value.shape)}."
                )
            self._loss_sum += value.reshape(()).to(self._device, torch.float64)
            self._loss_count += 1
        self.last_epoch += 1
        self._step_count += 1
        return self.last_epoch % self.sync_every == 0 or self.last_epoch == self.total_steps

    def local_losses(self) -> torch.Tensor:
        """This replica's (loss sum, count) since the last sync, float64."""
        count = torch.tensor(float(self._loss_count), dtype=torch.float64, device=self._device)
        return torch.stack([self._loss_sum, count])

    def exchange(self) -> torch.Tensor:
        """The sync's communication: every replica's (loss sum, count), (N, 2), and the models
        averaged over the process group."""
        if self.replicas == 1:
            return self.local_losses().view(1, 2)
        if not (dist.is_available() and dist.is_initialized()):
            raise ParameterError(
                f"HDETScheduler with {self.replicas} replicas syncs over torch.distributed, "
                "which is not initialised: start with torchrun and init_process_group, or "
                "simulate the replicas in one process with SimulatedHDET."
            )
        if dist.get_world_size(self.group) != self.replicas:
            raise ParameterError(
                f"HDETScheduler was given replicas={self.replicas} but the process group has "
                f"{dist.get_world_size(self.group)} ranks."
            )
        with replica_errors(self.last_epoch, self.group, self._device):
            table = exchange_losses(self.local_losses(), self.rank, self.replicas, self.group)
            average_across_ranks(replica_tensors(self.models), self.replicas, self.group)
        return table

    def synchronize(self, table: torch.Tensor) -> None:
        """After the models are averaged: the controller (if on and past the warm-up) on every
        replica's mean loss of the interval, then new permutations. `table` is `exchange()`'s."""
        table = table.detach().to("cpu", torch.float64)
        self._loss_sum.zero_()
        self._loss_count = 0
        if self.auto_lr and self.last_epoch >= self.warmup_steps:
            if bool((table[:, 1] == 0).any()):
                raise ParameterError(
                    "auto_lr needs every replica's training loss: call scheduler.step(loss), "
                    "or pass auto_lr=False."
                )
            self._control(table[:, 0] / table[:, 1])
        self.assignment.reshuffle()

    def apply(self) -> None:
        """Put this replica's values of the current step into the optimizer and the models."""
        values = self.replica_values()[self.rank].tolist()
        groups = len(self.max_lrs)
        for group, lr in zip(self.optimizer.param_groups, values[:groups], strict=True):
            group["lr"] = lr
        self._values = {}
        for h, v in zip(self.hyperparameters, values[groups:], strict=True):
            h.apply(v, self.optimizer, self.models)
            self._values[h.name] = v
        self._last_lr = values[:groups]

    def _control(self, losses: torch.Tensor) -> None:
        groups = len(self.max_lrs)
        lr_base = torch.tensor(self.base_lr(), dtype=torch.float64)
        floors = torch.tensor(self.floors, dtype=torch.float64)
        left = math.ceil((self.total_steps - self.last_epoch) / self.sync_every)
        no_decay = torch.zeros(len(self.hyperparameters), dtype=torch.float64)

        def both(lr: Sequence[float] | torch.Tensor, hyper: Sequence[float]) -> torch.Tensor:
            return torch.cat(
                [torch.as_tensor(lr, dtype=torch.float64), torch.tensor(hyper, dtype=torch.float64)]
            )

        base, self._velocity = controller_update(
            losses,
            self.replica_values(),
            both(lr_base, self._hyper_base),
            self._velocity,
            beta=self.beta,
            lam=self.lam,
            sigma=self.sigma,
            gamma=torch.cat([decay_rate(lr_base, floors, left), no_decay]),
            low=both(floors, [h.low for h in self.hyperparameters]),
            high=both(self.max_lrs, [h.clamp_high() for h in self.hyperparameters]),
        )
        self._lr_base = base[:groups].tolist()
        self._hyper_base = base[groups:].tolist()

    def _comm_device(self) -> torch.device:
        """Where the sync's collectives run: the models' device (CUDA for NCCL)."""
        tensors = replica_tensors(self.models)
        return tensors[0].device if tensors else torch.device("cpu")

    # -- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain values and tensors (`torch.load(weights_only=True)` reads it back); each
        replica saves its own (its rank and its interval's losses differ)."""
        return {
            "replicas": self.replicas,
            "rank": self.rank,
            "total_steps": self.total_steps,
            "sync_every": self.sync_every,
            "last_epoch": self.last_epoch,
            "step_count": self._step_count,
            "lr_base": self._lr_base,
            "hyper_base": list(self._hyper_base),
            "velocity": self._velocity.tolist(),
            "loss_sum": float(self._loss_sum),
            "loss_count": self._loss_count,
            "assignment": self.assignment.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        mine = (self.replicas, self.rank, self.total_steps, self.sync_every)
        saved = tuple(state_dict.get(k) for k in ("replicas", "rank", "total_steps", "sync_every"))
        if saved != mine:
            raise CheckpointError(
                f"The scheduler state was saved for (replicas, rank, total_steps, sync_every) = "
                f"{saved}, not {mine}."
            )
        if len(state_dict["hyper_base"]) != len(self.hyperparameters):
            raise CheckpointError("The scheduler state was saved with other hyperparameters.")
        self.assignment.load_state_dict(state_dict["assignment"])
        self.last_epoch = int(state_dict["last_epoch"])
        self._step_count = int(state_dict["step_count"])
        lr_base = state_dict["lr_base"]
        self._lr_base = None if lr_base is None else [float(x) for x in lr_base]
        self._hyper_base = [float(x) for x in state_dict["hyper_base"]]
        self._velocity = torch.tensor(state_dict["velocity"], dtype=torch.float64)
        self._loss_sum.fill_(float(state_dict["loss_sum"]))
        self._loss_count = int(state_dict["loss_count"])
        self.apply()


def _total_steps(total: int | None, epochs: int | None, per_epoch: int | None) -> int:
    if total is not None:
        return _whole("total_steps", total, low=1)
    if epochs is None or per_epoch is None:
        raise ParameterError("Give total_steps, or both epochs and steps_per_epoch.")
    return _whole("epochs", epochs, low=1) * _whole("steps_per_epoch", per_epoch, low=1)


def _per_group(max_lr: float | Sequence[float], groups: int) -> list[float]:
    values = list(max_lr) if isinstance(max_lr, Sequence) else [max_lr] * groups
    if len(values) != groups:
        raise ParameterError(
            f"max_lr has {len(values)} values but the optimizer has {groups} parameter groups."
        )
    if not all(isinstance(v, int | float) and v > 0 for v in values):
        raise ParameterError(f"max_lr must be positive, got {max_lr!r}.")
    return [float(v) for v in values]


def _whole(name: str, value: Any, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ParameterError(f"{name} must be a whole number >= {low}, got {value!r}.")
    return value


def _models(model: nn.Module | Sequence[nn.Module] | None) -> list[nn.Module]:
    if model is None:
        return []
    models = [model] if isinstance(model, nn.Module) else list(model)
    if not all(isinstance(m, nn.Module) for m in models):
        raise ParameterError("model must be an nn.Module or a sequence of them.")
    return models
