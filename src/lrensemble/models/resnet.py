"""ResNet-18 and Wide ResNets (WRN-depth-width) for 32×32 images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lrensemble.errors import ParameterError
from lrensemble.models.base import Classifier, check_shape, norm2d
from lrensemble.models.registry import register_model


class BasicBlock(nn.Module):
    """Post-activation residual block of ResNet-18."""

    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = norm2d(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = norm2d(norm, cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), norm2d(norm, cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(Classifier):
    """ResNet-18, CIFAR variant: 3×3 stem without max pooling, four stages of two blocks."""

    def __init__(self, in_channels: int, num_classes: int, norm: str, width: int):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), norm2d(norm, width), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        cin = width
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = width * mult
            for j in range(2):
                blocks.append(BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1, norm))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


@register_model("resnet18")
def resnet18(
    num_classes: int,
    in_shape: Sequence[int] = (3, 32, 32),
    *,
    norm: str = "batch",
    width: int = 64,
) -> ResNet18:
    """ResNet-18 for small images, with batch norm, group norm (`norm="group"`) or none."""
    c, _, _ = check_shape("resnet18", tuple(in_shape), 3, "(channels, height, width)")
    if width < 1:
        raise ParameterError(f"width must be positive, got {width}.")
    return ResNet18(c, num_classes, norm, width)


class WideBlock(nn.Module):
    """Pre-activation wide residual block with optional dropout between the convolutions."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float, norm: str):
        super().__init__()
        self.bn1 = norm2d(norm, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = norm2d(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(Classifier):
    """WRN-depth-width (Zagoruyko & Komodakis 2016): depth = 6n + 4."""

    def __init__(
        self, in_channels: int, num_classes: int, depth: int, width: int, dropout: float, norm: str
    ):
        super().__init__()
        n = (depth - 4) // 6
        widths = (16, 16 * width, 32 * width, 64 * width)
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks: list[nn.Module] = []
        cin = widths[0]
        for stage in range(3):
            for j in range(n):
                stride = 2 if (stage > 0 and j == 0) else 1
                blocks.append(WideBlock(cin, widths[stage + 1], stride, dropout, norm))
                cin = widths[stage + 1]
        self.blocks = nn.Sequential(*blocks)
        self.bn = norm2d(norm, cin)
        self.head = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.blocks(self.stem(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


@register_model("wrn")
def wrn(
    num_classes: int,
    in_shape: Sequence[int] = (3, 32, 32),
    *,
    depth: int = 28,
    width: int = 10,
    dropout: float = 0.0,
    norm: str = "batch",
) -> WideResNet:
    """Wide ResNet; also created by names like `"wrn-28-10"` or `"wrn16_4"`."""
    c, _, _ = check_shape("wrn", tuple(in_shape), 3, "(channels, height, width)")
    if depth < 10 or (depth - 4) % 6:
        raise ParameterError(
            f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}."
        )
    if width < 1:
        raise ParameterError(f"WRN width must be positive, got {width}.")
    if not 0.0 <= dropout < 1.0:
        raise ParameterError(f"dropout must be in [0, 1), got {dropout}.")
    return WideResNet(c, num_classes, depth, width, dropout, norm)
