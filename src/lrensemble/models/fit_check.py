"""Whether a model takes a dataset's inputs: one forward pass on the meta device (nothing is
allocated or computed), so a mismatch is one sentence before anything is written or trained."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from lrensemble.errors import ParameterError


def check_model_fits(
    model: nn.Module, input_shape: Sequence[int], num_classes: int, name: str = "the model"
) -> None:
    """Raise `ParameterError` unless `model` maps a batch of `input_shape` inputs to
    (batch, num_classes) logits.

    Example:
        >>> from lrensemble.models import create_model
        >>> check_model_fits(create_model("mlp", 3, (8,)), (8,), 3)
        >>> check_model_fits(create_model("mlp", 3, (8,)), (9,), 3)
        Traceback (most recent call last):
        ...
        lrensemble.errors.ParameterError: the model cannot take inputs of shape (9,) ...
    """
    shape = tuple(int(s) for s in input_shape)
    probe = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(2, *shape, device="meta")
    try:
        with torch.no_grad():
            out = probe(x)
    except NotImplementedError:
        return  # an operation the meta device lacks: training will tell
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ParameterError(
            f"{name} cannot take inputs of shape {shape} ({first}); reshape the data (the "
            "[data] shape option) or choose a model for such inputs."
        ) from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ParameterError(
            f"{name} returns {got} for a batch of 2 inputs; it should return logits of shape "
            f"(2, {num_classes})."
        )
