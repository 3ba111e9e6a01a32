"""Small models: an MLP, the 1-D CNN for MNIST-1D and the Prune-and-Tune paper's LeNets."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from lrensemble.errors import ParameterError
from lrensemble.models.base import Classifier, check_shape
from lrensemble.models.registry import register_model


class MLP(Classifier):
    """Flatten, then hidden ReLU layers (optional dropout), then a linear head."""

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int], dropout: float):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_model("mlp")
def mlp(
    num_classes: int,
    in_shape: Sequence[int],
    *,
    hidden: Sequence[int] = (256, 256),
    dropout: float = 0.0,
) -> MLP:
    """Multilayer perceptron on flattened inputs of any shape."""
    if not 0.0 <= dropout < 1.0:
        raise ParameterError(f"dropout must be in [0, 1), got {dropout}.")
    if any(int(h) < 1 for h in hidden):
        raise ParameterError(f"hidden sizes must be positive, got {list(hidden)}.")
    return MLP(math.prod(in_shape), num_classes, [int(h) for h in hidden], dropout)


class CNN1d(Classifier):
    """Strided 1-D convolutions with ReLU (no normalization), a linear
    head on the flattened feature map."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int,
        channels: int,
        depth: int,
        kernel_size: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        c, length = in_shape
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [
                nn.Conv1d(c, channels, kernel_size, stride=2, padding=kernel_size // 2),
                nn.ReLU(),
            ]
            c = channels
            length = (length + 2 * (kernel_size // 2) - kernel_size) // 2 + 1
        if length < 1:
            raise ParameterError(f"Inputs of length {in_shape[1]} are too short for depth {depth}.")
        drop = [nn.Dropout(dropout)] if dropout else []  # on the features, before the head
        self.body = nn.Sequential(*layers, nn.Flatten(), *drop)
        self.head = nn.Linear(channels * length, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_model("cnn1d")
def cnn1d(
    num_classes: int,
    in_shape: Sequence[int] = (1, 40),
    *,
    channels: int = 32,
    depth: int = 3,
    kernel_size: int = 5,
    dropout: float = 0.0,
) -> CNN1d:
    """The 1-D CNN for MNIST-1D (inputs (C, L), e.g. (1, 40)): `depth` conv layers of
    `channels` channels, stride 2; optional dropout on the features before the head."""
    shape = check_shape("cnn1d", tuple(in_shape), 2, "(channels, length)")
    if channels < 1 or depth < 1 or kernel_size < 1:
        raise ParameterError("cnn1d needs channels, depth and kernel_size of at least 1.")
    _check_dropout(dropout)
    return CNN1d(shape, num_classes, channels, depth, kernel_size, dropout)


class LeNet(Classifier):
    """LeNet-5 as modernized in Prune-and-Tune: two 5×5 conv layers with ReLU and 2×2 max
    pooling, two hidden dense layers, a linear head."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int,
        widths: tuple[int, ...],
        dropout: float = 0.0,
    ):
        super().__init__()
        c1, c2, f1, f2 = widths
        c, h, w = in_shape
        side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
        if side_h < 1 or side_w < 1:
            raise ParameterError(
                f"LeNet needs images of at least 16×16, got {h}×{w}; resize them (size = 16 "
                "in the [data] table of an image folder) or choose resnet18, wrn or mlp."
            )
        self.body = nn.Sequential(
            nn.Conv2d(c, c1, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * side_h * side_w, f1),
            nn.ReLU(),
            nn.Linear(f1, f2),
            nn.ReLU(),
            *([nn.Dropout(dropout)] if dropout else []),  # on the features, before the head
        )
        self.head = nn.Linear(f2, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _check_dropout(dropout: float) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ParameterError(f"dropout must be in [0, 1), got {dropout!r}.")


# Widths (conv1, conv2, dense1, dense2). The paper gives only parameter counts (253,290,
# 1,007,306 and 4,017,546 on CIFAR-10); these widths reproduce them exactly, each size doubling
# every width of the one before.
LENET_WIDTHS = {"s": (16, 32, 256, 128), "m": (32, 64, 512, 256), "l": (64, 128, 1024, 512)}


def _lenet(size: str):
    def factory(
        num_classes: int, in_shape: Sequence[int] = (3, 32, 32), *, dropout: float = 0.0
    ) -> LeNet:
        shape = check_shape(f"lenet_{size}", tuple(in_shape), 3, "(channels, height, width)")
        _check_dropout(dropout)
        return LeNet(shape, num_classes, LENET_WIDTHS[size], dropout)

    factory.__doc__ = f"LeNet-{size.upper()} of Prune-and-Tune (widths {LENET_WIDTHS[size]})."
    return factory


for _size in LENET_WIDTHS:
    register_model(f"lenet_{_size}")(_lenet(_size))
