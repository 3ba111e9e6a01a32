"""K models of one architecture as one: parameters and buffers stacked along a leading member
axis (`torch.func.stack_module_state`), one vectorized forward pass over all of them (`vmap` of
`functional_call` on a meta-device copy of the architecture), and the way back from a stack row
to the member's own module and to a torch optimizer and scheduler in the single-member trainer's
state (for checkpoints either trainer resumes).

Batch norm keeps per-member running statistics: the stacked buffers are updated in place under
`vmap`, as each member's own would be. With dropout, each member draws its own masks (vmap's
`randomness="different"`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.optim import Optimizer

from lrensemble.errors import ParameterError
from lrensemble.schedules.base import Policy
from lrensemble.schedules.torch_scheduler import PolicyScheduler
from lrensemble.train.batch_plan import stacked_batch_size
from lrensemble.train.optim import SAM, create_optimizer
from lrensemble.train.trainer import TrainConfig


def check_same_architecture(models: Sequence[nn.Module]) -> None:
    """Refuse models whose state dicts differ in names or shapes: they cannot be stacked."""
    first = {n: tuple(p.shape) for n, p in models[0].state_dict().items()}
    for i, m in enumerate(models[1:], 1):
        if {n: tuple(p.shape) for n, p in m.state_dict().items()} != first:
            raise ParameterError(
                f"Model {i} has another architecture than model 0; batched "
                "training needs one architecture."
            )


class StackedModels:
    """The parameters (`params`, leaves that require grad when `trainable`) and buffers of the
    stacked members, one row per member, and their vectorized forward pass."""

    def __init__(
        self, models: Sequence[nn.Module], device: torch.device, *, trainable: bool = True
    ) -> None:
        params, buffers = stack_module_state([m.to(device) for m in models])
        self.names = list(params)
        self.params = {n: p.detach().requires_grad_(trainable) for n, p in params.items()}
        self.buffers = {n: b.detach() for n, b in buffers.items()}
        self.base = copy.deepcopy(models[0]).to("meta")
        self.base.train(models[0].training)

    def _call(self, params: dict[str, Any], buffers: dict[str, Any], x: torch.Tensor) -> Any:
        return functional_call(self.base, (params, buffers), (x,))

    def forward(self, x: torch.Tensor, per_member_x: bool = False) -> torch.Tensor:
        """Every member's output on `x` (shared) or on `x[k]` (`per_member_x`), stacked: (K, ...).
        Runs in the base module's mode (train or eval)."""
        fn = vmap(self._call, in_dims=(0, 0, 0 if per_member_x else None), randomness="different")
        return fn(self.params, self.buffers, x)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
        """Every member's logits in eval mode, one (K, n, C) block per vectorized pass of
        `stacked_batch_size(batch_size, K)` samples of `x` (moved to the stack's device)."""
        device = next(iter(self.params.values())).device
        was = self.base.training
        self.base.eval()
        step = stacked_batch_size(batch_size, len(self))
        try:
            for i in range(0, len(x), step):
                yield self.forward(x[i : i + step].to(device))
        finally:
            self.base.train(was)

    def evaluate(self, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Every member's logits on all of `x` in eval mode, as float32: (K, N, C)."""
        return torch.cat([out.float() for out in self.predict(x, batch_size)], dim=1)

    def __len__(self) -> int:
        return len(next(iter(self.params.values())))

    def keep(self, rows: torch.Tensor) -> None:
        """Drop members: keep the given rows of every stacked tensor."""
        self.params = {
            n: p.detach()[rows].clone().requires_grad_(p.requires_grad)
            for n, p in self.params.items()
        }
        self.buffers = {n: b[rows] for n, b in self.buffers.items()}

    @torch.no_grad()
    def unstack_into(self, row: int, model: nn.Module) -> None:
        """Copy stack row `row` into `model`'s own parameters and buffers."""
        for n in self.names:
            model.get_parameter(n).copy_(self.params[n][row])
        for n in self.buffers:
            model.get_buffer(n).copy_(self.buffers[n][row])


def torch_optimizer(
    model: nn.Module,
    config: TrainConfig,
    policy: Policy,
    entries: Mapping[str, dict[str, torch.Tensor]],
    steps_done: int,
    steps_per_epoch: int,
) -> tuple[Optimizer, PolicyScheduler]:
    """A torch optimizer over `model` holding the per-parameter state `entries` (torch format,
    by parameter name), and its scheduler, both exactly as the single-member trainer has them
    after `steps_done` steps (what its checkpoint saves)."""
    opt = create_optimizer(
        model.parameters(),
        config.optimizer,
        lr=policy(0.0, config.epochs),  # what the single trainer starts from
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
        betas=config.betas,
        rho=config.rho,
    )
    holder = opt.base_optimizer if isinstance(opt, SAM) else opt  # SAM saves its base's
    params = dict(model.named_parameters())
    for name, entry in entries.items():
        if entry:
            holder.state[params[name]] = entry
    sched = PolicyScheduler(
        opt, policy, config.epochs, steps_per_epoch=steps_per_epoch, start_step=steps_done
    )
    return opt, sched
