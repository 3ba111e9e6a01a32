"""Starting a model from a pre-trained checkpoint: weights from safetensors (or a torch state
dict read with `weights_only=True`, never pickle), the classifier head replaced when the class
count differs, anything else that does not fit refused in one sentence."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lrensemble.errors import CheckpointError


def classifier_name(model: nn.Module) -> str:
    """The name of the model's classifier (output layer) module: timm's own record of it, the
    built-in models' `head`, else the last linear layer."""
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if isinstance(cfg, dict) and isinstance(cfg.get("classifier"), str):
        try:
            model.get_submodule(cfg["classifier"])
            return cfg["classifier"]
        except AttributeError:
            pass
    if isinstance(getattr(model, "head", None), nn.Module):
        return "head"
    linear = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linear:
        raise CheckpointError(f"The model {type(model).__name__} has no linear classifier.")
    return linear[-1]


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file: `.safetensors`, or a torch file holding a state dict
    (possibly under a "state_dict" or "model" key), read with `weights_only=True`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"The checkpoint {path} does not exist.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, pickle and zip errors all mean "not a checkpoint"
        raise CheckpointError(f"The checkpoint {path} cannot be read ({exc}).") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"The checkpoint {path} holds no state dict of tensors.")
    return state


def load_pretrained(
    model: nn.Module, path: str | os.PathLike[str], keep_head: bool = True
) -> dict[str, Any]:
    """Load a checkpoint into `model`, keeping the model's own (freshly initialized) head where
    the checkpoint's has another shape (another class count), or always with
    `keep_head=False` (fine-tuning replaces the classifier). Returns what happened:
    `{"checkpoint": path, "head_replaced": bool}`. Missing or extra weights outside the head,
    or a shape mismatch elsewhere, are one `CheckpointError` sentence."""
    state = read_state_dict(path)
    own = model.state_dict()
    head = classifier_name(model) + "."
    head_replaced = False
    for name in [n for n in state if n.startswith(head)]:
        if name in own and (not keep_head or tuple(own[name].shape) != tuple(state[name].shape)):
            del state[name]
            head_replaced = True
    if not keep_head and not any(n.startswith(head) for n in state):
        head_replaced = True  # a backbone without a classifier: the model's own head stays
    missing = [n for n in own if n not in state and not (head_replaced and n.startswith(head))]
    extra = [n for n in state if n not in own]
    wrong = [n for n in state if n in own and tuple(state[n].shape) != tuple(own[n].shape)]
    problem = (
        f"lacks {_names(missing)}"
        if missing
        else f"has weights the model lacks ({_names(extra)})"
        if extra
        else f"has other shapes for {_names(wrong)}"
        if wrong
        else None
    )
    if problem:
        raise CheckpointError(
            f"The checkpoint {path} does not fit the model {type(model).__name__}: it {problem}."
        )
    model.load_state_dict({**own, **state})
    return {"checkpoint": str(path), "head_replaced": head_replaced}


def _names(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
