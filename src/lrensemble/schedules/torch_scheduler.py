"""`PolicyScheduler`: drive any torch optimizer's learning rate from a `Policy`, every iteration."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lrensemble.errors import CheckpointError, ParameterError
from lrensemble.schedules.base import Policy, from_spec


class PolicyScheduler(LRScheduler):
    """A `torch.optim.lr_scheduler.LRScheduler` that follows a policy.

    Call `step()` once per iteration, after `optimizer.step()`: at step i the LR of parameter
    group g is `policy(i / steps_per_epoch, epochs) * group_scales[g]`. Group scales default to
    each group's `"lr_scale"` entry, or 1.

    `lr_at(step)` reads the LRs of any step without moving the scheduler, and `seek(step)` (or
    `start_step=`) puts the scheduler and its optimizer where `step` calls of `step()` would:
    the way to resume from a step count rather than from a saved `state_dict`.

    Example:
        >>> import torch
        >>> from lrensemble.schedules import PolicyScheduler, create
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
        >>> sched = PolicyScheduler(opt, create("cosine", max_lr=0.1), epochs=10, steps_per_epoch=5)
        >>> round(opt.param_groups[0]["lr"], 6)
        0.1
        >>> sched.seek(25)  # half way: the cosine's midpoint
        >>> [round(lr, 6) for lr in sched.get_last_lr()], sched.lr_at(50)
        ([0.05], [0.0])
    """

    def __init__(
        self,
        optimizer: Optimizer,
        policy: Policy | dict[str, Any],
        epochs: float,
        steps_per_epoch: int = 1,
        group_scales: Sequence[float] | None = None,
        last_epoch: int = -1,
        *,
        start_step: int = 0,
    ) -> None:
        self.policy = from_spec(policy)
        if not epochs > 0:
            raise ParameterError(f"epochs must be positive, got {epochs!r}.")
        if int(steps_per_epoch) != steps_per_epoch or steps_per_epoch < 1:
            raise ParameterError(
                f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}."
            )
        self.epochs = float(epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        if group_scales is None:
            group_scales = [float(g.get("lr_scale", 1.0)) for g in optimizer.param_groups]
        if len(group_scales) != len(optimizer.param_groups):
            raise ParameterError(
                f"group_scales has {len(group_scales)} entries but the optimizer has "
                f"{len(optimizer.param_groups)} parameter groups."
            )
        self.group_scales = [float(s) for s in group_scales]
        super().__init__(optimizer, last_epoch)
        if start_step:
            self.seek(start_step)

    @property
    def progress(self) -> float:
        """Training progress in epochs at the current step."""
        return max(self.last_epoch, 0) / self.steps_per_epoch

    def lr_at(self, step: int) -> list[float]:
        """Each parameter group's LR at iteration `step` (0 = the first), whatever the
        scheduler's own position: `policy(step / steps_per_epoch, epochs) * group scale`."""
        lr = self.policy(max(_whole(step), 0) / self.steps_per_epoch, self.epochs)
        return [lr * s for s in self.group_scales]

    def seek(self, step: int) -> None:
        """Move to iteration `step`: the scheduler's state and its optimizer's LRs become what
        `step` calls of `step()` after construction leave (so a `state_dict` taken now equals
        one taken after stepping there), without stepping through the steps in between."""
        step = _whole(step)
        if step < 0:
            raise ParameterError(f"A scheduler step must be at least 0, got {step}.")
        lrs = self.lr_at(step)
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self.last_epoch = step
        # what LRScheduler's own bookkeeping holds after construction and `step` steps
        self._step_count = step + 1
        self._last_lr = list(lrs)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return self.lr_at(self.last_epoch)

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()

    def state_dict(self) -> dict[str, Any]:
        """Plain Python values only (the policy as its spec), so `torch.load(weights_only=True)`
        and JSON both round-trip it."""
        state = super().state_dict()
        state["policy"] = self.policy.spec()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        spec = state.pop("policy", None)
        if spec is not None and spec != self.policy.spec():
            raise CheckpointError(
                f"The scheduler state was saved for policy {from_spec(spec).label}, "
                f"not {self.policy.label}."
            )
        super().load_state_dict(state)


def _whole(step: int) -> int:
    try:
        if not isinstance(step, bool):
            return operator.index(step)
    except TypeError:
        pass
    raise ParameterError(f"A scheduler step must be a whole number, got {step!r}.")
