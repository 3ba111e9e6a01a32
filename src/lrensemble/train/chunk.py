"""Members training together in one stack: each member's bookkeeping (`Member`), the stacked
state of a chunk of them (`Chunk`: models, optimizer, masks, averages, which rows are still
active) and the way between a member's own files and the stack: loading a member's
single-trainer checkpoint and starting its hooks before it is stacked, a torch optimizer and
scheduler for its checkpoints, and its final outputs (`finish_member`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from lrensemble.data.augment import ImageAugment
from lrensemble.data.base import Dataset
from lrensemble.data.loader import BatchLoader
from lrensemble.errors import CheckpointError
from lrensemble.schedules.base import Policy
from lrensemble.schedules.torch_scheduler import PolicyScheduler
from lrensemble.train.checkpoint import load_state, load_state_into
from lrensemble.train.evaluate import classification_metrics, predict_logits
from lrensemble.train.functional_optim import StackedOptimizer
from lrensemble.train.hooks import TrainContext, TrainHook, weight_hooks
from lrensemble.train.stacked import StackedModels, torch_optimizer
from lrensemble.train.stacked_hooks import StackedAverage, StackedMasks, averaging_of, stack_key
from lrensemble.train.trainer import (
    CHECKPOINT,
    TrainConfig,
    TrainResult,
    member_record,
    other_setup,
    write_member,
)

Loaders = dict[int, BatchLoader]  # one training loader per data-order seed


@dataclass
class Member:
    """One member of a batched run: what defines it, where it writes, how far it got."""

    index: int  # position in `train_members`' arguments
    model: nn.Module
    policy: Policy
    config: TrainConfig
    out: Path | None
    hooks: list[TrainHook]
    setup: dict[str, Any]
    fingerprint: str
    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 0
    elapsed: float = 0.0
    state: dict[str, Any] | None = None  # optimizer state of a resumed member (torch format)
    diverged_at: dict[str, int] | None = None


def load_member(member: Member, device: torch.device) -> None:
    """Restore a member and its hooks from its single-trainer-format checkpoint."""
    path = member.out / CHECKPOINT  # type: ignore[operator]
    state = load_state(path, device)
    if state.get("fingerprint") != member.fingerprint:
        raise CheckpointError(f"{path} {other_setup(state)}")
    load_state_into(member.model, state["model"], str(path))
    for hook, hook_state in zip(weight_hooks(member.hooks), state.get("hooks", []), strict=False):
        hook.load_state_dict(hook_state)
    member.state = state["optimizer"]
    member.history = list(state["history"])
    member.start_epoch = int(state["epoch"]) + 1
    member.elapsed = float(state["seconds"])


def training_loader(
    dataset: Dataset, config: TrainConfig, device: torch.device, loaders: Loaders, seed: int
) -> BatchLoader:
    """The training loader for data-order `seed` (one per seed, shared by its members)."""
    if seed not in loaders:
        augment = None
        if config.augment or (config.augment is None and dataset.image):
            augment = ImageAugment(
                crop_padding=config.crop_padding, flip=True, cutout=config.cutout
            )
        x, y = dataset.split("train")
        loaders[seed] = BatchLoader(
            x, y, config.batch_size, shuffle=True, seed=seed, device=device, augment=augment
        )
    return loaders[seed]


def start_hooks(member: Member, dataset: Dataset, device: torch.device, loaders: Loaders) -> None:
    """The member's hooks' `on_train_start` on its own model, before it is stacked: masks are
    checked and applied, averaging copies the model (and takes up a resumed average)."""
    if not member.hooks:
        return
    model, cfg = member.model.to(device), member.config
    loader = training_loader(dataset, cfg, device, loaders, cfg.seed)
    steps = len(loader)
    opt, sched = torch_optimizer(model, cfg, member.policy, {}, member.start_epoch * steps, steps)
    ctx = TrainContext(model, opt, sched, loader, device, cfg.epochs)
    for hook in member.hooks:
        hook.on_train_start(ctx)


@dataclass
class Chunk:
    """Members training in one stack, and where each of them stands."""

    members: list[Member]
    stack: StackedModels
    optim: StackedOptimizer
    masks: StackedMasks
    average: StackedAverage | None
    ema_before_masks: bool  # the members' EMA update comes before their masking
    device: torch.device
    steps: int  # per epoch
    active: list[int]  # stack rows -> member positions
    elapsed: list[float]  # per member position

    @classmethod
    def start(cls, members: list[Member], device: torch.device, steps: int) -> Chunk:
        cfg = members[0].config
        stack = StackedModels([m.model for m in members], device)
        optim = StackedOptimizer(
            cfg,
            stack.names,
            [m.config.weight_decay for m in members],
            device,
            [m.state for m in members],
        )
        masks = StackedMasks([m.hooks for m in members], stack)
        averaging = [averaging_of(m.hooks) for m in members]
        average = None
        if averaging[0] is not None:
            average = StackedAverage(averaging, stack)  # type: ignore[arg-type]
        key = stack_key(members[0].hooks)
        return cls(
            members,
            stack,
            optim,
            masks,
            average,
            bool(key and key[-1]),
            device,
            steps,
            list(range(len(members))),
            [m.elapsed for m in members],
        )

    def after_step(self, epoch: int) -> None:
        """The stacked hooks' `after_step`, in the members' hook order."""
        if self.average is not None and self.ema_before_masks:
            self.average.after_step(self.stack, epoch)
        self.masks.apply(self.stack)
        if self.average is not None and not self.ema_before_masks:
            self.average.after_step(self.stack, epoch)

    def keep(self, rows: torch.Tensor) -> None:
        """Drop members: keep the given stack rows."""
        self.stack.keep(rows)
        self.optim.keep(rows)
        self.masks.keep(rows)
        if self.average is not None:
            self.average.keep(rows)
        self.active = [self.active[r] for r in rows.tolist()]

    def unstack(self, row: int, steps_done: int) -> tuple[Optimizer, PolicyScheduler]:
        """Stack row `row` into its member's model, a torch optimizer and scheduler in exactly
        the state the single-member trainer has after `steps_done` steps, and its averaging
        hook's average."""
        member = self.members[self.active[row]]
        self.stack.unstack_into(row, member.model)
        if self.average is not None:
            self.average.write_into(row, averaging_of(member.hooks))  # type: ignore[arg-type]
        return torch_optimizer(
            member.model,
            member.config,
            member.policy,
            self.optim.member_entries(row),
            steps_done,
            self.steps,
        )


def finish_member(
    chunk: Chunk,
    pos: int,
    dataset: Dataset,
    final: dict[str, torch.Tensor],
    loader: BatchLoader,
) -> TrainResult:
    """Unstack a member into its model, end its hooks, take its final metrics, and write its
    outputs."""
    member, device = chunk.members[pos], chunk.device
    cfg = member.config
    elapsed = chunk.elapsed[pos]
    row = chunk.active.index(pos) if pos in chunk.active else None
    if row is None:
        result = TrainResult(
            "diverged",
            member.history,
            {},
            elapsed,
            len(member.history),
            member.out,
            member.diverged_at,
        )
    else:
        steps_done = cfg.epochs * chunk.steps
        opt, sched = chunk.unstack(row, steps_done)
        ctx = TrainContext(member.model, opt, sched, loader, device, cfg.epochs)
        ctx.epoch, ctx.step = cfg.epochs - 1, steps_done - 1
        for hook in member.hooks:
            hook.on_train_end(ctx)
        metrics = {}
        for split in ("val", "test"):
            x, y = dataset.split(split)
            if split in final:
                metrics[split] = classification_metrics(final[split][row], y)
            elif len(y):
                logits = predict_logits(member.model, x, cfg.eval_batch_size, device)
                metrics[split] = classification_metrics(logits, y)
        result = TrainResult(
            "complete", member.history, metrics, elapsed, len(member.history), member.out
        )
    result.record = member_record(
        member.setup, member.fingerprint, cfg, result, member.start_epoch, device
    )
    if member.out is not None:
        write_member(member.out, member.model, result)
    return result
