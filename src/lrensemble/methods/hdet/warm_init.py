"""Warm noisy init: every replica starts from the same checkpoint plus its own noise, so the
replicas explore distinct neighbourhoods of a good solution (seed 004, §3.5)."""

from __future__ import annotations

import torch
from torch import nn

from lrensemble.errors import ParameterError


@torch.no_grad()
def warm_noisy_init(model: nn.Module, *, rank: int, seed: int = 0, nu: float = 0.01) -> None:
    """Add N(0, (ν·RMS(p))²) noise to every floating-point parameter p of `model`, drawn on the
    CPU from a generator seeded by (`seed`, `rank`): independent per replica, reproducible, the
    same on any device. Call it after any initial broadcast (DDP's constructor copies rank 0's
    weights to every rank: wrap first, then add the noise), or the noise is overwritten."""
    if not float(nu) >= 0.0:
        raise ParameterError(f"nu must be a non-negative number, got {nu!r}.")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < 2**20:
        raise ParameterError(f"rank must be a whole number in [0, 2^20), got {rank!r}.")
    generator = torch.Generator().manual_seed((int(seed) << 20) + rank)
    for p in model.parameters():
        if not p.is_floating_point() or p.numel() == 0:
            continue
        rms = p.detach().double().pow(2).mean().sqrt().item()
        noise = torch.randn(p.shape, generator=generator, dtype=torch.float64)
        p.add_((float(nu) * rms * noise).to(p.device, p.dtype))
