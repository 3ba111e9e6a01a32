"""N HDET replicas in one process, with the semantics of N ranks under DDP: for tests, CPU users
and small models.

Each replica has its own model, optimizer and `HDETScheduler` (rank r of N); each computes its
gradient at its own weights on its own batch, `average_gradients` gives every replica the mean
gradient (what DDP's all-reduce does), each optimizer applies it with its replica's LR, and
`step(losses)` runs the schedulers' own advance / synchronize / apply, the models averaged in
memory where ranks would all-reduce.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from lrensemble.errors import ParameterError
from lrensemble.methods.hdet.averaging import average_in_process
from lrensemble.methods.hdet.scheduler import HDETScheduler


class SimulatedHDET:
    """Drives N replicas: `models[r]` trained by `optimizers[r]`, scheduled by
    `schedulers[r]`, an `HDETScheduler(optimizers[r], max_lr, ..., replicas=N, rank=r,
    model=models[r], **hdet)` (every `HDETScheduler` argument but `replicas`, `rank`, `model`
    and `group` may be given)."""

    def __init__(
        self,
        models: Sequence[nn.Module],
        optimizers: Sequence[Optimizer],
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        **hdet: Any,
    ) -> None:
        if len(models) != len(optimizers) or not models:
            raise ParameterError(
                f"Give one optimizer per model, got {len(models)} models and "
                f"{len(optimizers)} optimizers."
            )
        taken = sorted({"replicas", "rank", "model", "group"} & set(hdet))
        if taken:
            raise ParameterError(f"SimulatedHDET sets {taken} itself.")
        self.models, self.optimizers = list(models), list(optimizers)
        n = len(models)
        self.schedulers = [
            HDETScheduler(opt, max_lr, total_steps, replicas=n, rank=r, model=m, **hdet)
            for r, (m, opt) in enumerate(zip(models, optimizers, strict=True))
        ]

    @property
    def replicas(self) -> int:
        return len(self.models)

    @torch.no_grad()
    def average_gradients(self) -> None:
        """Every replica's gradient becomes the mean over replicas (DDP's all-reduce: sum,
        divided by N); a replica without a gradient for a parameter contributes zeros."""
        params = [list(m.parameters()) for m in self.models]
        for group in zip(*params, strict=True):
            grads = [p.grad for p in group if p.grad is not None]
            if not grads:
                continue
            mean = torch.stack(grads).sum(dim=0) / self.replicas
            for p in group:
                if p.grad is None:
                    p.grad = mean.clone()
                else:
                    p.grad.copy_(mean)

    def step(self, losses: Sequence[torch.Tensor | float | None]) -> None:
        """After every optimizer stepped: each scheduler's step with its replica's loss, the
        sync (models averaged, controller, permutations) at the same steps as N ranks."""
        if len(losses) != self.replicas:
            raise ParameterError(f"Give one loss per replica ({self.replicas}), got {len(losses)}.")
        due = [s.advance(loss) for s, loss in zip(self.schedulers, losses, strict=True)]
        if due[0]:
            table = torch.stack([s.local_losses() for s in self.schedulers])
            average_in_process([s.models for s in self.schedulers])
            for s in self.schedulers:
                s.synchronize(table)
        for s in self.schedulers:
            s.apply()

    def train_step(
        self,
        batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> list[float]:
        """One data-parallel step: replica r's loss on `batches[r]`, the mean gradient applied
        by every optimizer, then `step`. Returns the replicas' losses."""
        if len(batches) != self.replicas:
            raise ParameterError(
                f"Give one batch per replica ({self.replicas}), got {len(batches)}."
            )
        losses = []
        for model, opt, (x, y) in zip(self.models, self.optimizers, batches, strict=True):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            losses.append(loss.detach())
        self.average_gradients()
        for opt in self.optimizers:
            opt.step()
        self.step(losses)
        return [float(loss) for loss in losses]
