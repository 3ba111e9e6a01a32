"""Optimizers: SGD (momentum, Nesterov), AdamW, and SAM/ASAM around a base optimizer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from lrensemble.errors import ParameterError

OPTIMIZERS = ("sgd", "adamw", "sam", "asam")
SAM_ETA = 0.01  # ASAM's offset in T_w = |w| + eta


def sam_radius(name: str, rho: float | None = None) -> float:
    """SAM's neighbourhood radius: `rho`, or the papers' CIFAR settings (0.05 for SAM, 0.5 for
    ASAM)."""
    if rho is not None:
        return rho
    return 0.5 if name == "asam" else 0.05


class SAM(Optimizer):
    """Sharpness-Aware Minimization (Foret et al. 2021) and its adaptive variant ASAM (Kwon et
    al. 2021), the LREnsemble paper's optimizer, wrapping a base optimizer.

    `step(closure)` needs a closure that recomputes the loss and calls `backward()`: gradients
    from the first backward pass give the ascent direction e(w) = rho · T_w² g / ||T_w g||
    (T_w = |w| for ASAM, 1 for SAM); the closure's gradients at w + e(w) drive the base step at w.
    The LR lives in the shared parameter groups, so any LR scheduler drives it.
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[Optimizer] = torch.optim.SGD,
        rho: float = 0.05,
        adaptive: bool = False,
        eta: float = SAM_ETA,
        **kwargs: Any,
    ) -> None:
        if rho <= 0:
            raise ParameterError(f"SAM's rho must be positive, got {rho}.")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, eta=eta, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups

    @torch.no_grad()
    def _ascend(self) -> dict[torch.Tensor, torch.Tensor]:
        scaled_grads = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                t = (p.abs() + group["eta"]) if group["adaptive"] else 1.0
                scaled_grads.append((t * p.grad).norm(2))
        if not scaled_grads:
            return {}
        norm = torch.stack(scaled_grads).norm(2)
        moves: dict[torch.Tensor, torch.Tensor] = {}
        for group in self.param_groups:
            scale = group["rho"] / (norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                t2 = (p.abs() + group["eta"]) ** 2 if group["adaptive"] else 1.0
                e_w = t2 * p.grad * scale
                p.add_(e_w)
                moves[p] = e_w
        return moves

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        if closure is None:
            raise ParameterError("SAM needs a closure that recomputes the loss and gradients.")
        moves = self._ascend()
        self.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = closure()
        with torch.no_grad():
            for p, e_w in moves.items():
                p.sub_(e_w)
        self.base_optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        self.param_groups = self.base_optimizer.param_groups


def create_optimizer(
    params: Iterable[Any],
    name: str = "sgd",
    *,
    lr: float = 0.1,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    rho: float | None = None,
) -> Optimizer:
    """Build one of `OPTIMIZERS`. SAM and ASAM wrap SGD with the given momentum and decay;
    their `rho` defaults to 0.05 (SAM) and 0.5 (ASAM), the papers' CIFAR settings."""
    if nesterov and momentum <= 0:
        raise ParameterError("Nesterov momentum needs momentum > 0.")
    sgd = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, **sgd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if name in ("sam", "asam"):
        radius = sam_radius(name, rho)
        return SAM(params, torch.optim.SGD, rho=radius, adaptive=name == "asam", **sgd)
    raise ParameterError(f"Unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}.")


def needs_closure(optimizer: Optimizer) -> bool:
    return isinstance(optimizer, SAM)
