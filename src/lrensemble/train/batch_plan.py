"""Planning a batched run: whether a model can train in a stack (`batch_blocker`), how many
members fit in memory together (`default_chunk_size`, from parameters, optimizer state and the
activations a forward pass saves, measured on the meta device) and how many samples a
vectorized evaluation pass takes (`stacked_batch_size`)."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 16


def activation_bytes(model: nn.Module, input_shape: Sequence[int], batch_size: int) -> int:
    """Bytes of the tensors a training forward pass of `model` saves for its backward pass on
    a batch of `batch_size` inputs of `input_shape`, found by running that pass on the meta
    device (nothing is allocated or computed); 0 if the model cannot run there."""
    probe = copy.deepcopy(model).to("meta").train()
    seen: set[int] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
        return t

    x = torch.empty(batch_size, *input_shape, device="meta")
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            probe(x)
    except Exception as err:  # a model with operations the meta device lacks
        log.debug("no activation estimate for %s: %s", type(model).__name__, err)
        return 0
    return total


def member_bytes(
    model: nn.Module, optimizer: str, input_shape: Sequence[int] | None, batch_size: int | None
) -> int:
    """Memory one member needs while training in a stack: its parameters, gradients and
    optimizer state (4 copies of the parameters; 5 for AdamW's second moment and for SAM's
    perturbation), plus three times the activations its forward pass saves (their gradients
    in the backward pass and `vmap`'s relayouts come on top of them)."""
    copies = 5 if optimizer in ("adamw", "sam", "asam") else 4
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    saved = 0
    if input_shape is not None and batch_size is not None:
        saved = activation_bytes(model, input_shape, batch_size)
    return params * copies + 3 * saved


def memory_budget(device: torch.device | str) -> int:
    """Bytes a stack may use: half the free memory of a GPU; on other devices a quarter of the
    machine's memory (2 GiB where the system does not say)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.mem_get_info(device)[0] // 2
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3


def default_chunk_size(
    model: nn.Module,
    optimizer: str = "sgd",
    device: torch.device | str = "cpu",
    limit: int = DEFAULT_CHUNK,
    *,
    input_shape: Sequence[int] | None = None,
    batch_size: int | None = None,
) -> int:
    """How many members of this model to train together: as many as `member_bytes` fit in
    `memory_budget`, at most `limit` (at least 1). Give `input_shape` and `batch_size` so that
    activations count; without them only parameters and optimizer state do."""
    per_member = member_bytes(model, optimizer, input_shape, batch_size)
    return int(max(1, min(limit, memory_budget(device) // max(per_member, 1))))


def stacked_batch_size(batch_size: int, members: int) -> int:
    """Samples per vectorized evaluation pass of `members` stacked models: `batch_size` (one
    model's evaluation batch) shared among them, so a pass holds the activations of one model's
    batch. Larger passes of a stack outgrow the CPU caches: on the benchmark's 16 MNIST-1D CNNs,
    passes of 1,024 samples made evaluation about twice as slow as passes of 64 to 256."""
    return max(1, batch_size // max(members, 1))


def batch_blocker(model: nn.Module, input_shape: Sequence[int] | None = None) -> str | None:
    """Why `model` cannot train batched (None if it can). With `input_shape`,
    a stack of two copies also runs a training step under `vmap` on two inputs, which finds
    models `vmap` cannot vectorize, e.g. with data-dependent control flow: on the meta device
    (nothing is allocated) when the model runs there, else where its parameters are."""
    if any(isinstance(m, nn.SyncBatchNorm) for m in model.modules()):
        return "synchronized batch norm shares statistics across processes"
    if input_shape is not None:
        return _vmap_blocker(model, input_shape)
    return None


def _vmap_blocker(model: nn.Module, input_shape: Sequence[int]) -> str | None:
    for device in ("meta", None):
        probe = copy.deepcopy(model).train()
        if device is not None:
            probe = probe.to(device)
        first = next(probe.parameters(), None)
        x = torch.zeros(2, *input_shape, device=first.device if first is not None else "cpu")
        try:
            probe(x)
        except Exception:  # this device cannot run the model at all: no verdict from it
            continue
        params, buffers = stack_module_state([probe, probe])
        params = {n: p.detach().requires_grad_(True) for n, p in params.items()}

        def forward(p: dict[str, Any], b: dict[str, Any], xb: torch.Tensor) -> Any:
            return functional_call(probe, (p, b), (xb,))  # noqa: B023 (called right here)

        try:
            out = vmap(forward, in_dims=(0, 0, None), randomness="different")(params, buffers, x)
            torch.autograd.grad(out.float().sum(), list(params.values()), allow_unused=True)
        except Exception as err:
            text = str(err).strip()
            return f"vmap cannot vectorize this model ({text.splitlines()[0] if text else err!r})"
        return None
    return None
