"""Weights and training state in safetensors files, written atomically; never pickle.

A training checkpoint is one file: model weights, optimizer tensors and any hook tensors as
named tensors, and everything else (optimizer hyperparameters, scheduler state, progress) as
JSON in the file's metadata. One file means one atomic rename: a crash leaves either the
previous checkpoint or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from lrensemble.atomic import write_with
from lrensemble.errors import CheckpointError

_TENSOR = "__tensor__"
_PAIRS = "__pairs__"
_TUPLE = "__tuple__"


def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "t") -> Any:
    """Move every tensor of a nested state (dicts, lists, tuples, scalars) into `tensors` and
    return a JSON-able skeleton that `unflatten_state` turns back into the same structure."""
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}.{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {_TENSOR: key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and _TENSOR not in obj and _PAIRS not in obj:
            return {k: flatten_state(v, tensors, prefix) for k, v in obj.items()}
        return {_PAIRS: [[k, flatten_state(v, tensors, prefix)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {_TUPLE: [flatten_state(v, tensors, prefix) for v in obj]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, prefix) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if _TENSOR in skeleton:
            return tensors[skeleton[_TENSOR]]
        if _PAIRS in skeleton:
            return {k: unflatten_state(v, tensors) for k, v in skeleton[_PAIRS]}
        if _TUPLE in skeleton:
            return tuple(unflatten_state(v, tensors) for v in skeleton[_TUPLE])
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


def save_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Atomically save a nested state (tensors anywhere inside) as one safetensors file."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten_state(state, tensors)
    meta = {"lrensemble_state": json.dumps(skeleton)}
    return write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_state(path: str | os.PathLike[str], device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load what `save_state` wrote; unreadable or truncated files raise `CheckpointError`."""
    path = Path(path)
    try:
        tensors = load_file(str(path), device=str(device))
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
        skeleton = json.loads(header["__metadata__"]["lrensemble_state"])
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint {path} does not exist.") from None
    except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Checkpoint {path} is unreadable or truncated ({exc}).") from None
    return unflatten_state(skeleton, tensors)


def read_state_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The non-tensor part of a `save_state` file (tensors appear as references), read from
    its header alone; None if the file is missing or unreadable."""
    try:
        with open(path, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
        return json.loads(header["__metadata__"]["lrensemble_state"])
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None


def resume_epoch(path: str | os.PathLike[str]) -> int:
    """The epoch a run would resume at from this checkpoint (0 without a usable one)."""
    meta = read_state_metadata(path)
    return int(meta["epoch"]) + 1 if meta and "epoch" in meta else 0


def weights_digest(model: nn.Module) -> str:
    """A digest of a model's parameters and buffers (names, shapes, dtypes and values): the
    starting weights in a member's identity. Two models built from one seed agree; a model
    loaded from another checkpoint does not."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def save_weights(
    model: nn.Module, path: str | os.PathLike[str], metadata: dict[str, str] | None = None
) -> Path:
    """Atomically save a model's parameters and buffers (its state dict) as safetensors."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    return write_with(path, lambda tmp: save_file(state, str(tmp), metadata=metadata or {}))


def load_weights(
    model: nn.Module, path: str | os.PathLike[str], device: torch.device | str = "cpu"
) -> nn.Module:
    """Load safetensors weights into `model`, checking every name and shape."""
    path = Path(path)
    try:
        state = load_file(str(path), device=str(device))
    except FileNotFoundError:
        raise CheckpointError(f"Weights file {path} does not exist.") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"Weights file {path} is unreadable or truncated ({exc}).") from None
    load_state_into(model, state, str(path))
    return model


def load_state_into(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """`model.load_state_dict(state)` with mismatches reported as one `CheckpointError`."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{source} does not fit the model: "
            + (
                f"missing {', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}"
                if missing
                else ""
            )
            + ("; " if missing and unexpected else "")
            + (f"unexpected {', '.join(unexpected[:3])}" if unexpected else "")
            + "."
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise CheckpointError(
                f"{source} does not fit the model: {name} has shape {tuple(tensor.shape)}, "
                f"the model expects {tuple(own[name].shape)}."
            )
    model.load_state_dict(state)
