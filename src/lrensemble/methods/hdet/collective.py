"""HDET's communication over a `torch.distributed` process group: the sync's loss exchange and
parameter average, each one collective, and a lost replica turned into one clear sentence.

The backend's own collectives only (gloo on CPU, NCCL on GPU); nothing home-made.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.distributed as dist

from lrensemble.errors import LREnsembleError


class ReplicaLostError(LREnsembleError, RuntimeError):
    """A collective of the sync failed: another replica exited, hung or lost its connection."""


def group_timeout(group: dist.ProcessGroup | None, device: torch.device) -> float | None:
    """The process group's timeout in seconds, when the backend tells it (gloo and NCCL do)."""
    try:
        pg = group if group is not None else dist.group.WORLD
        return float(pg._get_backend(device).options._timeout.total_seconds())
    except Exception:  # a private API: a missing attribute only costs the number
        return None


@contextmanager
def replica_errors(
    step: int, group: dist.ProcessGroup | None, device: torch.device
) -> Iterator[None]:
    """Turns the backend's error of a failed collective into a `ReplicaLostError`."""
    try:
        yield
    except RuntimeError as exc:
        timeout = group_timeout(group, device)
        limit = f"timeout of {timeout:g} s" if timeout is not None else "timeout"
        first = re.sub(r"^\[[^\]]*\]\s*", "", (str(exc).splitlines() or [""])[0])
        detail = first.split(". ")[0][:160]
        raise ReplicaLostError(
            f"HDET's sync at step {step} failed: another replica exited, lost its connection "
            f"or did not reach the sync within the process group's {limit} "
            f"(backend: {detail.rstrip('.')})."
        ) from exc


def exchange_losses(
    local: torch.Tensor, rank: int, replicas: int, group: dist.ProcessGroup | None
) -> torch.Tensor:
    """Every replica's (loss sum, count) row, (N, 2) float64: each rank fills its own row of a
    zero table and one SUM all-reduce completes it, on `local`'s device."""
    table = torch.zeros(replicas, 2, dtype=torch.float64, device=local.device)
    table[rank] = local
    dist.all_reduce(table, op=dist.ReduceOp.SUM, group=group)
    return table


@torch.no_grad()
def average_across_ranks(
    tensors: Sequence[torch.Tensor], replicas: int, group: dist.ProcessGroup | None
) -> None:
    """Every tensor set to its mean over the ranks: one SUM all-reduce per (dtype, device) of
    all tensors flattened together, then divided by N (gloo has no AVG)."""
    buckets: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for t in tensors:
        buckets.setdefault((t.dtype, t.device), []).append(t)
    for ts in buckets.values():
        flat = torch.cat([t.detach().reshape(-1) for t in ts])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        flat /= replicas
        offset = 0
        for t in ts:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()
