"""Choosing the compute device: the GPU when there is one, overridable."""

from __future__ import annotations

import torch

from lrensemble.errors import ParameterError


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """`"auto"` picks CUDA, then Apple MPS, then the CPU; an explicit device must be usable."""
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise ParameterError(f"Unknown device {spec!r}; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError("CUDA was requested but no CUDA device is available.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ParameterError(
                f"{spec} was requested but only {torch.cuda.device_count()} CUDA devices exist."
            )
    return device
