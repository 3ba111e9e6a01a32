"""Predictions and simple metrics of one model on a split, in batches on its device."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: torch.Tensor, batch_size: int = 1024, device: torch.device | None = None
) -> torch.Tensor:
    """Logits (N, C) of `model` on inputs x (N, ...), float32, on `device`."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [
            model(x[i : i + batch_size].to(device)).float() for i in range(0, len(x), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0, device=device)


def predict_proba(
    model: nn.Module, x: torch.Tensor, batch_size: int = 1024, device: torch.device | None = None
) -> torch.Tensor:
    """Softmax probabilities (N, C), float32, on the CPU: what the pool caches."""
    return torch.softmax(predict_logits(model, x, batch_size, device), dim=1).cpu()


def classification_metrics(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Accuracy and NLL (mean cross-entropy, no smoothing) of logits (N, C) against labels (N,)."""
    if len(y) == 0:
        return {}
    y = y.to(logits.device)
    return {
        "accuracy": float((logits.argmax(1) == y).float().mean()),
        "nll": float(F.cross_entropy(logits, y)),
    }


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 1024,
    device: torch.device | None = None,
) -> dict[str, float]:
    return classification_metrics(predict_logits(model, x, batch_size, device), y)
