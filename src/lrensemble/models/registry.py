"""The model registry: `create_model(name, num_classes, in_shape, **params)`, `list_models()`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from torch import nn

from lrensemble.errors import ParameterError
from lrensemble.registry import Registry

MODELS: Registry[nn.Module] = Registry("model")
register_model = MODELS.register

_WRN_NAME = re.compile(r"^wrn[-_]?(\d+)[-_](\d+)$")


def create_model(
    name: str, num_classes: int, in_shape: Sequence[int] | None = None, **params: Any
) -> nn.Module:
    """Build a registered model for `num_classes` classes and inputs of shape `in_shape`
    (without the batch axis; the model's default when None).

    Names like `"wrn-28-10"` expand to `wrn(depth=28, width=10)`; `"timm/<name>"` builds a timm
    model when timm is installed.

    Example:
        >>> from lrensemble.models import create_model
        >>> net = create_model("cnn1d", num_classes=10, in_shape=(1, 40))
        >>> type(net).__name__
        'CNN1d'
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ParameterError(f"num_classes must be a positive integer, got {num_classes!r}.")
    if isinstance(name, str) and name.startswith("timm/"):
        from lrensemble.models.timm_bridge import create_timm_model

        return create_timm_model(name[5:], num_classes, tuple(in_shape or (3, 224, 224)), **params)
    match = _WRN_NAME.match(name) if isinstance(name, str) else None
    if match:
        name = "wrn"
        params = {"depth": int(match[1]), "width": int(match[2]), **params}
    args: tuple[Any, ...] = (num_classes,) if in_shape is None else (num_classes, tuple(in_shape))
    return MODELS.create(name, *args, **params)


def model_for_inputs(input_shape: Sequence[int]) -> str:
    """A sensible built-in model for inputs of this shape (without the batch axis): `mlp` for
    feature vectors, `cnn1d` for signals (C, L), `resnet18` for images (C, H, W).

    Example:
        >>> model_for_inputs((64,)), model_for_inputs((1, 40)), model_for_inputs((3, 32, 32))
        ('mlp', 'cnn1d', 'resnet18')
    """
    return {1: "mlp", 2: "cnn1d", 3: "resnet18"}.get(len(tuple(input_shape)), "mlp")


def list_models() -> list[str]:
    return MODELS.names()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
