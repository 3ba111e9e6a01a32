"""Shared pieces of the built-in models: the `Classifier` shape and normalization layers."""

from __future__ import annotations

import abc

import torch
from torch import nn

from lrensemble.errors import ParameterError

NORMS = ("batch", "group", "none")


class Classifier(nn.Module, abc.ABC):
    """A network split into `forward_features` (penultimate features) and a linear `head`.

    Later methods rely on the split: feature-distance losses use the features, and pruning and
    parameter-similarity measures leave the output layer (`head`) out.
    """

    head: nn.Linear

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N, D) of a batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def norm2d(kind: str, channels: int) -> nn.Module:
    """Batch norm, group norm (no running statistics) or nothing."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ParameterError(f"Unknown norm {kind!r}; use one of {', '.join(NORMS)}.")


def check_shape(name: str, in_shape: tuple[int, ...], ndim: int, example: str) -> tuple[int, ...]:
    in_shape = tuple(int(s) for s in in_shape)
    if len(in_shape) != ndim or any(s < 1 for s in in_shape):
        raise ParameterError(f"{name} takes inputs shaped {example}, got {in_shape}.")
    return in_shape
