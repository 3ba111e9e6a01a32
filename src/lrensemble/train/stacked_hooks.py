"""The hooks the batched trainer runs on stacked members itself: `WeightMask` (every member's
masks stacked, ones where a member masks nothing) and `WeightAveraging` (SWA or EMA averages
stacked, updated with torch's own averaging functions). Any other hook (`ExtraLoss`, whose loss
sees `ctx.model`, or a user's `TrainHook`) needs the member's own module, so such a member trains
one by one; `hooks_blocker` says why.

A member's hooks are still its own objects: they check their settings and mask the member's
weights at the start (`on_train_start`), give their state to its checkpoints and, for
averaging, put the averaged weights into the member at the end (`on_train_end`), exactly as
under the single-member trainer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn, get_swa_avg_fn, get_swa_multi_avg_fn

from lrensemble.train.hooks import TrainHook, WeightAveraging, WeightMask
from lrensemble.train.stacked import StackedModels

# where torch's AveragedModel averages SWA weights with its foreach kernel (elsewhere one
# tensor at a time): the same rule here gives the same rounding
_FOREACH_DEVICES = ("cuda", "xpu", "mtia")


def hooks_blocker(hooks: Sequence[TrainHook]) -> str | None:
    """Why a member with these hooks cannot train in a stack (None if it can): only the exact
    classes `WeightMask` and `WeightAveraging` (at most one) run stacked; a subclass may
    override what they do."""
    for hook in hooks:
        if type(hook) not in (WeightMask, WeightAveraging):
            return f"its hook {type(hook).__name__} needs the member's own model"
    if sum(type(h) is WeightAveraging for h in hooks) > 1:
        return "it averages its weights twice (two WeightAveraging hooks)"
    avg = averaging_of(hooks)
    if avg is not None and avg.mode == "ema":
        where = hooks.index(avg)
        before = any(isinstance(h, WeightMask) for h in hooks[:where])
        after = any(isinstance(h, WeightMask) for h in hooks[where + 1 :])
        if before and after:  # the stack masks all at once, before or after the average
            return "it masks its weights both before and after its EMA update"
    return None


def averaging_of(hooks: Sequence[TrainHook]) -> WeightAveraging | None:
    """The member's weight averaging hook, if any."""
    return next((h for h in hooks if isinstance(h, WeightAveraging)), None)


def stack_key(hooks: Sequence[TrainHook]) -> tuple[Any, ...]:
    """What members must share to average in one stack: the averaging settings, how many
    averages are already taken (resumed members) and whether an EMA update comes before the
    masking after each step (hook order matters there); masks may differ freely."""
    avg = averaging_of(hooks)
    if avg is None:
        return ()
    first_avg = hooks.index(avg)
    masks_after = any(isinstance(h, WeightMask) for h in hooks[first_avg + 1 :])
    n = 0 if avg.averaged is None else int(avg.averaged.n_averaged)
    return (avg.mode, avg.start_epoch, avg.decay, n, avg.mode == "ema" and masks_after)


class StackedMasks:
    """Every member's weight masks as one (K, ...) tensor per masked parameter."""

    def __init__(self, members_hooks: Sequence[Sequence[TrainHook]], stack: StackedModels) -> None:
        self.masks: dict[str, torch.Tensor] = {}
        for row, hooks in enumerate(members_hooks):
            for hook in hooks:
                if not isinstance(hook, WeightMask):
                    continue
                for name, mask in hook.masks.items():
                    p = stack.params[name]
                    if name not in self.masks:
                        self.masks[name] = torch.ones_like(p, requires_grad=False)
                    self.masks[name][row].mul_(mask.to(device=p.device, dtype=p.dtype))

    def __bool__(self) -> bool:
        return bool(self.masks)

    @torch.no_grad()
    def apply(self, stack: StackedModels) -> None:
        """Zero every member's masked weights (as each `WeightMask.apply` does)."""
        for name, mask in self.masks.items():
            stack.params[name].mul_(mask)

    def keep(self, rows: torch.Tensor) -> None:
        self.masks = {n: m[rows] for n, m in self.masks.items()}


class StackedAverage:
    """The stacked members' `WeightAveraging` averages (one setting for all of them): averaged
    parameters and buffers (K, ...) and the number of averages taken, as in torch's
    `AveragedModel` (SWA averages parameters and copies buffers; EMA averages both)."""

    def __init__(self, hooks: Sequence[WeightAveraging], stack: StackedModels) -> None:
        first = hooks[0]
        self.mode, self.start_epoch, self.decay = first.mode, first.start_epoch, first.decay
        modules = [h.averaged.module for h in hooks]  # type: ignore[union-attr]
        self.params = _stack([dict(m.named_parameters()) for m in modules], stack.names)
        self.buffers = _stack([dict(m.named_buffers()) for m in modules], list(stack.buffers))
        self.n = first.averaged.n_averaged.detach().clone()  # type: ignore[union-attr]

    def keep(self, rows: torch.Tensor) -> None:
        self.params = {n: t[rows] for n, t in self.params.items()}
        self.buffers = {n: t[rows] for n, t in self.buffers.items()}

    def after_step(self, stack: StackedModels, epoch: int) -> None:
        if self.mode == "ema" and epoch >= self.start_epoch:
            self.update(stack)

    def on_epoch_end(self, stack: StackedModels, epoch: int) -> None:
        if self.mode == "swa" and epoch >= self.start_epoch:
            self.update(stack)

    @torch.no_grad()
    def update(self, stack: StackedModels) -> None:
        """`AveragedModel.update_parameters` on every member at once."""
        ema = self.mode == "ema"
        averaged = list(self.params.values()) + (list(self.buffers.values()) if ema else [])
        current = [p.detach() for p in stack.params.values()]
        current += list(stack.buffers.values()) if ema else []
        if int(self.n) == 0:
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)
        elif ema:
            fn = get_ema_multi_avg_fn(self.decay)
            for floating in (True, False):  # torch groups them by dtype
                group = [
                    (a, c)
                    for a, c in zip(averaged, current, strict=True)
                    if a.is_floating_point() == floating
                ]
                if group:
                    fn([a for a, _ in group], [c for _, c in group], self.n)
        else:
            n = self.n.to(averaged[0].device)
            if averaged[0].device.type in _FOREACH_DEVICES:
                get_swa_multi_avg_fn()(averaged, current, n)
            else:
                avg_fn = get_swa_avg_fn()
                for a, c in zip(averaged, current, strict=True):
                    a.copy_(avg_fn(a, c, n))
        if not ema:
            for name, b in stack.buffers.items():
                self.buffers[name].copy_(b)
        self.n += 1

    @torch.no_grad()
    def write_into(self, row: int, hook: WeightAveraging) -> None:
        """Put member `row`'s average into its hook's `AveragedModel` (created by the hook's
        `on_train_start`), so that the hook's `state_dict` and `on_train_end` see it."""
        averaged = hook.averaged
        assert averaged is not None
        for name, p in averaged.module.named_parameters():
            p.copy_(self.params[name][row])
        for name, b in averaged.module.named_buffers():
            b.copy_(self.buffers[name][row])
        averaged.n_averaged.copy_(self.n)


def _stack(per_member: list[dict[str, torch.Tensor]], names: list[str]) -> dict[str, torch.Tensor]:
    return {n: torch.stack([m[n].detach() for m in per_member]) for n in names}
