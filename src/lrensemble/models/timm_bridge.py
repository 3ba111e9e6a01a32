"""Models from timm, when it is installed: `create_model("timm/<name>", ...)`.

Weights are never downloaded: `pretrained=True` needs `checkpoint_path` to a local file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from lrensemble.errors import ParameterError, UnknownNameError

PREFIX = "timm/"


def create_timm_model(
    name: str, num_classes: int, in_shape: Sequence[int], **params: Any
) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise UnknownNameError(
            f"Model {PREFIX}{name} needs timm, which is not installed "
            "(pip install 'lrensemble[timm]')."
        ) from None
    if name not in timm.list_models():
        raise UnknownNameError(f"timm has no model {name!r}.")
    if params.get("pretrained") and not params.get("checkpoint_path"):
        raise ParameterError(
            "pretrained timm weights are not downloaded: pass checkpoint_path to a local file."
        )
    in_chans = in_shape[0] if len(in_shape) == 3 else 3
    return timm.create_model(name, num_classes=num_classes, in_chans=in_chans, **params)
