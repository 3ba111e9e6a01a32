"""The converge step's tensors, and their average over replicas held in one process.

What is averaged: every parameter and every floating-point buffer (BatchNorm's running
statistics, not its integer batch counter) of the replica's model(s). A DDP wrapper yields its
module's tensors, so a wrapped and an unwrapped model are averaged alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def replica_tensors(models: Sequence[nn.Module]) -> list[torch.Tensor]:
    """The parameters and floating-point buffers of `models`, each tensor once, in a fixed order
    (the same on every replica of one architecture)."""
    seen: set[int] = set()
    out = []
    for model in models:
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point() and id(t) not in seen:
                seen.add(id(t))
                out.append(t)
    return out


@torch.no_grad()
def average_in_process(replicas: Sequence[Sequence[nn.Module]]) -> None:
    """Set every replica's tensors to their mean over the replicas (sum, then divided by N: the
    arithmetic of the all-reduce in `collective.average_across_ranks`)."""
    tensors = [replica_tensors(models) for models in replicas]
    if len({len(ts) for ts in tensors}) > 1:
        raise ValueError("The replicas do not have the same tensors to average.")
    n = len(replicas)
    for group in zip(*tensors, strict=True):
        mean = torch.stack([t.detach() for t in group]).sum(dim=0) / n
        for t in group:
            t.copy_(mean)
