"""Functional SGD, AdamW and SAM/ASAM around SGD for K members stacked along a leading axis.

One update moves every member, each with its own learning rate and weight decay (tensors of
shape (K,)), with the arithmetic of torch's `SGD`, `AdamW` and our `SAM`, so a stacked member
follows the path the single-member trainer's optimizer takes. The per-member state converts to
and from torch's optimizer state format, so either trainer resumes the other's checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from lrensemble.errors import CheckpointError
from lrensemble.train.optim import SAM_ETA, sam_radius
from lrensemble.train.trainer import TrainConfig


def member_norms(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Each member's 2-norm over all its stacked tensors: (K,)."""
    k = tensors[0].shape[0]
    return torch.stack([t.reshape(k, -1).norm(dim=1) for t in tensors]).norm(dim=0)


def clip_per_member(grads: Sequence[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Per-member gradient clipping: each member's own total norm (torch's clip_grad_norm_)."""
    norms = member_norms(grads)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    return [g * _per_member(scale, g) for g in grads]


def _per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (K,) tensor shaped to broadcast against a stacked (K, ...) tensor."""
    return values.view((-1,) + (1,) * (like.ndim - 1))


class StackedOptimizer:
    """The optimizer state of stacked members and the update that moves them all.

    Parameters are passed to each call as `{name: (K, ...) tensor}` in `names` order (the order
    of `model.named_parameters()`, which is also torch's parameter index in a state dict).
    """

    def __init__(
        self,
        config: TrainConfig,
        names: Sequence[str],
        weight_decays: Sequence[float],
        device: torch.device,
        states: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.names = list(names)
        self.adamw = config.optimizer == "adamw"
        self.sam = config.optimizer in ("sam", "asam")  # SGD at gradients taken at w + e(w)
        self.adaptive = config.optimizer == "asam"
        self.rho = sam_radius(config.optimizer, config.rho)
        self.momentum, self.nesterov, self.betas = config.momentum, config.nesterov, config.betas
        self.wd = torch.tensor([float(w) for w in weight_decays], device=device)
        self.step = 0
        self.state: dict[str, dict[str, torch.Tensor]] = {n: {} for n in self.names}
        if states is not None:
            self._restore(states, device)

    def _restore(self, states: Sequence[Mapping[str, Any] | None], device: torch.device) -> None:
        """Stack resumed members' torch-format optimizer states."""
        if all(s is None for s in states):
            return
        if any(s is None for s in states):
            raise CheckpointError("members of one batch resume from different states")
        for j, name in enumerate(self.names):
            per = [s["state"].get(j, {}) for s in states]  # type: ignore[index]
            for key in per[0]:
                if key == "step":
                    self.step = int(float(per[0][key]))
                    continue
                self.state[name][key] = torch.stack([p[key].to(device) for p in per])

    def keep(self, rows: torch.Tensor) -> None:
        """Drop members: keep the given rows of every stacked state tensor."""
        self.state = {n: {k: v[rows] for k, v in st.items()} for n, st in self.state.items()}
        self.wd = self.wd[rows]

    def member_entries(self, row: int) -> dict[str, dict[str, torch.Tensor]]:
        """One member's state per parameter name, as torch's optimizer keeps it (SAM's is its
        base SGD's); empty entries for parameters without state yet."""
        out: dict[str, dict[str, torch.Tensor]] = {}
        for n in self.names:
            entry = {k: v[row].clone() for k, v in self.state[n].items()}
            if self.adamw and entry:
                entry["step"] = torch.tensor(float(self.step))
            out[n] = entry
        return out

    @torch.no_grad()
    def ascend(
        self, params: Mapping[str, torch.Tensor], grads: Sequence[torch.Tensor]
    ) -> list[torch.Tensor]:
        """SAM/ASAM's move of every member to w + e(w), e(w) = rho T_w² g / ||T_w g|| per
        member (T_w = |w| + eta for ASAM, 1 for SAM), as `SAM` does; returns the moves."""
        ps = [params[n] for n in self.names]
        scales = [p.abs() + SAM_ETA if self.adaptive else None for p in ps]
        scaled = [g if t is None else t * g for g, t in zip(grads, scales, strict=True)]
        factor = self.rho / (member_norms(scaled) + 1e-12)
        moves = []
        for p, g, t in zip(ps, grads, scales, strict=True):
            e_w = g * _per_member(factor, g)
            if t is not None:
                e_w = t**2 * e_w
            p.add_(e_w)
            moves.append(e_w)
        return moves

    @torch.no_grad()
    def descend(self, params: Mapping[str, torch.Tensor], moves: Sequence[torch.Tensor]) -> None:
        """Undo `ascend`."""
        for name, e_w in zip(self.names, moves, strict=True):
            params[name].sub_(e_w)

    @torch.no_grad()
    def update(
        self, params: Mapping[str, torch.Tensor], grads: Sequence[torch.Tensor], lr: torch.Tensor
    ) -> None:
        """One optimizer step for every member at its LR `lr[k]`, with torch's SGD / AdamW
        arithmetic."""
        self.step += 1
        for name, g in zip(self.names, grads, strict=True):
            p = params[name]
            lr_k, wd_k = _per_member(lr, p), _per_member(self.wd, p)
            st = self.state[name]
            if not self.adamw:
                d = g + wd_k * p
                if self.momentum:
                    buf = st.get("momentum_buffer")
                    buf = d.clone() if buf is None else buf.mul_(self.momentum).add_(d)
                    st["momentum_buffer"] = buf
                    d = d.add(buf, alpha=self.momentum) if self.nesterov else buf
                p.sub_(lr_k * d)
            else:
                b1, b2 = self.betas
                p.mul_(1 - lr_k * wd_k)
                m = st.setdefault("exp_avg", torch.zeros_like(p))
                v = st.setdefault("exp_avg_sq", torch.zeros_like(p))
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                c1, c2 = 1 - b1**self.step, 1 - b2**self.step
                denom = (v.sqrt() / math.sqrt(c2)).add_(1e-8)
                p.sub_((lr_k / c1) * m / denom)
