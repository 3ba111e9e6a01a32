"""The model registry: `create_model(name, num_classes, in_shape, **params)`, `list_models()`."""

from __future__ import annotations

import inspect
import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from lrensemble.errors import LREnsembleError, ParameterError
from lrensemble.registry import Registry, check_parameters

MODELS: Registry[nn.Module] = Registry("model")
register_model = MODELS.register

# what create_model passes itself, from the data
DATA_ARGUMENTS = frozenset({"num_classes", "in_shape"})
_WRN_NAME = re.compile(r"^wrn[-_]?(\d+)[-_](\d+)$")


# A built-in model with more parameters than this is a typo (e.g. channels = 10**9), refused
# before any memory is allocated.
MAX_PARAMETERS = 1_000_000_000


def create_model(
    name: str, num_classes: int, in_shape: Sequence[int] | None = None, **params: Any
) -> nn.Module:
    """Build a registered model for `num_classes` classes and inputs of shape `in_shape`
    (without the batch axis; the model's default when None).

    Names like `"wrn-28-10"` expand to `wrn(depth=28, width=10)`; `"timm/<name>"` builds a timm
    model when timm is installed. A parameter of the wrong type, a model of more than
    `MAX_PARAMETERS` parameters or any other value the model cannot be built with is one
    `ParameterError` naming the model.

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
    name, params = _expand(name, params)
    check_model_params(name, params)
    args: tuple[Any, ...] = (num_classes,) if in_shape is None else (num_classes, tuple(in_shape))
    factory = MODELS.get(name)
    _check_size(name, factory, args, params)
    try:
        return factory(*args, **params)
    except LREnsembleError:
        raise
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ParameterError(
            f"model {name!r} cannot be built with {_shown(params)} ({reason})."
        ) from None


def check_model_params(name: str, params: dict[str, Any]) -> None:
    """Refuse an unknown model, unknown or missing parameters, and values whose type differs
    from the parameter's default (e.g. `channels = "wide"`), in one sentence, without building
    anything. timm models are checked by timm when built."""
    if isinstance(name, str) and name.startswith("timm/"):
        return
    name, params = _expand(name, params)
    factory = MODELS.get(name)
    check_parameters(factory, params, f"model {name!r}")
    signature = inspect.signature(factory).parameters
    for key in DATA_ARGUMENTS & set(params):
        raise ParameterError(
            f"model {name!r}: {key} comes from the data, not from the model's parameters."
        )
    if not getattr(factory, "__module__", "").startswith("lrensemble."):
        return  # a model registered by a user: its factory checks its own parameters
    for key, value in params.items():
        default = signature[key].default if key in signature else None
        kind = _kind(default)
        if kind is not None and not _fits(value, default):
            raise ParameterError(f"model {name!r}: {key} must be {kind}, got {value!r}.")


def _expand(name: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`wrn-28-10` as `wrn` with depth 28 and width 10; other names unchanged."""
    match = _WRN_NAME.match(name) if isinstance(name, str) else None
    if match:
        return "wrn", {"depth": int(match[1]), "width": int(match[2]), **params}
    return name, params


_KINDS = ((bool, "true or false", "booleans"), (int, "an integer", "integers"))
_KINDS += ((float, "a finite number", "finite numbers"), (str, "a string", "strings"))


def _kind(default: Any) -> str | None:
    """What a parameter with this default takes, in words (None: anything)."""
    for cls, one, many in _KINDS:
        if isinstance(default, cls):
            return one
        if isinstance(default, (list, tuple)) and default and isinstance(default[0], cls):
            return f"a list of {many}"
    return None


def _fits(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool | np.bool_)
    if isinstance(default, int):
        return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
    if isinstance(default, float):
        number = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
        return number and math.isfinite(value)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, (list, tuple)) and default:
        return isinstance(value, (list, tuple)) and all(_fits(v, default[0]) for v in value)
    return True


def _check_size(name: str, factory: Any, args: tuple[Any, ...], params: dict[str, Any]) -> None:
    """Build the model on the meta device (no memory, no random numbers drawn) and refuse it
    if it has more than `MAX_PARAMETERS` parameters."""
    try:
        with torch.device("meta"):
            probe = factory(*args, **params)
        count = sum(p.numel() for p in probe.parameters())
    except Exception:  # the real build below says what is wrong
        return
    if count > MAX_PARAMETERS:
        raise ParameterError(
            f"model {name!r} with {_shown(params)} would have {count:,} parameters, more than "
            f"{MAX_PARAMETERS:,}; choose smaller values."
        )


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in params.items()) or "its defaults"


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
