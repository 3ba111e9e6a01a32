"""`EnsembleModel`: a chosen ensemble as one `nn.Module` that returns calibrated probabilities,
and `load_ensemble`, which builds it from an exported directory.

Members that share an architecture are one group: their parameters and buffers are stacked
(`torch.func.stack_module_state`) and evaluated by one `vmap(functional_call)`, as
`predict_proba_many` evaluates a pool's members. The combination is exactly
`ChosenEnsemble.combine`: each member's softmax at its temperature, the weighted mean, then the
ensemble's temperature as softmax(log p / T).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from lrensemble.data.normalize import Normalization
from lrensemble.device import resolve_device
from lrensemble.ensemble.checks import check_weights
from lrensemble.ensemble.metrics import NLL_CLIP
from lrensemble.errors import CheckpointError, LREnsembleError, ParameterError
from lrensemble.export.inputs import as_batch, fit_shape
from lrensemble.export.manifest import ENSEMBLE_JSON, ensemble_dir, file_sha256, read_manifest
from lrensemble.models import create_model
from lrensemble.train.checkpoint import load_state_into

log = logging.getLogger(__name__)


def _tempered(p: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """softmax(log p / T) over the last axis, with T broadcast against p; rows whose T is 1
    stay as they are (as `apply_temperature`)."""
    scaled = torch.softmax(torch.log(p.clamp_min(NLL_CLIP)) / temperature, dim=-1)
    return torch.where(temperature == 1.0, p, scaled)


class _Group(nn.Module):
    """Members of one architecture: stacked parameters (`p0`, `p1`, ...) and buffers (`b0`,
    ...), evaluated by one vmapped forward, or one by one if vmap cannot vectorize the model."""

    def __init__(self, models: Sequence[nn.Module], rows: Sequence[int]) -> None:
        super().__init__()
        params, buffers = stack_module_state([m.eval() for m in models])
        self.param_names, self.buffer_names = list(params), list(buffers)
        for j, name in enumerate(self.param_names):
            self.register_parameter(f"p{j}", nn.Parameter(params[name].detach(), False))
        for j, name in enumerate(self.buffer_names):
            self.register_buffer(f"b{j}", buffers[name].detach())
        self.register_buffer("rows", torch.tensor(list(rows), dtype=torch.long), persistent=False)
        # a weightless skeleton; kept out of the module tree so that .to() leaves it alone
        self._skeleton = [copy.deepcopy(models[0]).to("meta").eval()]
        self.vectorized = len(models) > 1

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        params = {n: getattr(self, f"p{j}") for j, n in enumerate(self.param_names)}
        buffers = {n: getattr(self, f"b{j}") for j, n in enumerate(self.buffer_names)}
        return params, buffers

    def _one(self, params: dict[str, Any], buffers: dict[str, Any], x: torch.Tensor) -> Any:
        return functional_call(self._skeleton[0], (params, buffers), (x,))

    def _looped(self, params: dict[str, Any], buffers: dict[str, Any], x: torch.Tensor) -> Any:
        return torch.stack(
            [
                self._one(
                    {n: p[k] for n, p in params.items()}, {n: b[k] for n, b in buffers.items()}, x
                )
                for k in range(len(self.rows))
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (K, N, C) of the group's K members."""
        params, buffers = self._state()
        if not self.vectorized:
            return self._looped(params, buffers, x)
        try:
            return vmap(self._one, in_dims=(0, 0, None))(params, buffers, x)
        except Exception as err:
            out = self._looped(params, buffers, x)  # raises the model's own error, if any
            self.vectorized = False
            log.warning("evaluating members one by one: vmap cannot vectorize them (%s)", err)
            return out


def _architecture(model: nn.Module) -> Hashable:
    return (
        type(model).__qualname__,
        tuple((n, tuple(t.shape), t.dtype) for n, t in model.state_dict().items()),
    )


class EnsembleModel(nn.Module):
    """A weighted, temperature-calibrated ensemble of models: `forward(x)` takes inputs as the
    members saw them in training (already normalized) and returns probabilities (N, C).

    Args:
        models: the members (their weights are copied into stacks; the modules are not kept).
        weights: soft-vote weights (normalized to sum 1).
        member_temperatures: each member's temperature (default 1).
        temperature: the ensemble's temperature.
        groups: a group key per member; members with equal keys share an architecture and are
            evaluated together (default: same class and same parameter names and shapes).
        input_shape: the shape of one sample; `forward` reshapes rows of that size and refuses
            others (None: inputs are passed as they are).
        normalization: the transform from raw inputs to what the members saw (`normalize`).
        ids, classes, manifest: member ids, class names and the export's description.

    The module stays in eval mode: members use their running statistics and no dropout.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        weights: Sequence[float],
        member_temperatures: Sequence[float] | None = None,
        temperature: float = 1.0,
        *,
        groups: Sequence[Hashable] | None = None,
        input_shape: Sequence[int] | None = None,
        normalization: Normalization | None = None,
        ids: Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        k = len(models)
        if k == 0:
            raise ParameterError("An ensemble needs at least one member.")
        temps = [float(t) for t in member_temperatures or [1.0] * k]
        keys = [_architecture(m) for m in models] if groups is None else list(groups)
        if len(temps) != k or len(keys) != k or (ids is not None and len(ids) != k):
            raise ParameterError(f"Give one temperature, group and id per member ({k}).")
        if not all(np.isfinite(t) and t > 0 for t in [*temps, float(temperature)]):
            raise ParameterError("Temperatures must be positive numbers.")
        w = check_weights(list(weights), k)
        self.register_buffer("vote_weights", torch.tensor(w, dtype=torch.float32))
        self.register_buffer("member_temperatures", torch.tensor(temps, dtype=torch.float32))
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        order: dict[Hashable, list[int]] = {}
        for i, key in enumerate(keys):
            order.setdefault(key, []).append(i)
        self.groups = nn.ModuleList(
            _Group([models[i] for i in rows], rows) for rows in order.values()
        )
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.normalization = normalization
        self.ids = list(ids) if ids is not None else [f"m{i}" for i in range(k)]
        self.classes = list(classes) if classes is not None else None
        self.manifest = manifest or {}
        first = next(self.groups[0].parameters(), None)
        self.dtype = torch.float32 if first is None else first.dtype
        super().train(False)

    def train(self, mode: bool = True) -> EnsembleModel:
        """Stays in eval mode: an exported ensemble is for inference."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.vote_weights.device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated ensemble probabilities (N, C) of normalized inputs (N, *input_shape)."""
        x = torch.as_tensor(x)
        if not x.is_floating_point():
            x = x.float()
        if self.input_shape is not None and tuple(x.shape[1:]) != self.input_shape:
            x = torch.as_tensor(as_batch(x, self.input_shape))
        x = x.to(self.device, dtype=self.dtype)
        total = None
        for group in self.groups:
            probs = torch.softmax(group(x).float(), dim=-1)  # (K, N, C)
            probs = _tempered(probs, self.member_temperatures[group.rows].view(-1, 1, 1))
            part = torch.tensordot(self.vote_weights[group.rows], probs, dims=1)
            total = part if total is None else total + part
        return _tempered(total, self.temperature)

    def normalize(self, raw: Any) -> Any:
        """Raw inputs (numpy or torch, (N, *input_shape) or flat rows) transformed as the
        members' training inputs were; unchanged when no normalization was recorded."""
        if self.normalization is None:
            return raw
        return self.normalization.apply(fit_shape(raw, self.input_shape))

    @torch.no_grad()
    def predict_proba(
        self, raw_inputs: Any, batch_size: int = 1024, *, normalized: bool = False
    ) -> np.ndarray:
        """Probabilities (N, C), float32, of raw inputs (numpy or torch; flat rows of the right
        size are reshaped), normalized first unless `normalized`, in batches of `batch_size`."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}.")
        x = as_batch(raw_inputs, self.input_shape)
        if not normalized:
            x = np.ascontiguousarray(self.normalize(x), dtype=np.float32)
        out = [
            self(torch.from_numpy(x[i : i + batch_size])).float().cpu().numpy()
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(out).astype(np.float32, copy=False)


def _member_model(
    member: dict[str, Any], tensors: dict[str, torch.Tensor], source: Path
) -> nn.Module:
    """One member rebuilt from its spec, with its prefixed tensors (taken out of `tensors`)."""
    spec = member["model"]
    params = {k: v for k, v in spec.items() if k != "name"}
    model = create_model(spec["name"], int(member["num_classes"]), member["input_shape"], **params)
    prefix = f"{member['prefix']}."
    state = {k[len(prefix) :]: tensors.pop(k) for k in list(tensors) if k.startswith(prefix)}
    load_state_into(model, state, f"{source} (member {member['id']})")
    return model


def load_ensemble(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> EnsembleModel:
    """Load an exported ensemble (its directory or its ensemble.json) onto `device` ("cpu",
    "auto", "cuda", ...). A missing, truncated or foreign directory or weights file, or an
    export without weights, raises one `CheckpointError` sentence."""
    manifest = read_manifest(path)
    root = ensemble_dir(path)
    if not manifest["has_weights"]:
        missing = manifest.get("missing_weights") or []
        raise CheckpointError(
            f"{root} holds no weights (members {', '.join(missing) or 'of it'} have no model "
            "weights or spec, e.g. predictions imported into a pool), so it cannot predict."
        )
    target = resolve_device(device)
    weights_path = root / Path(str(manifest["weights_file"])).name
    if not weights_path.is_file():
        raise CheckpointError(f"Weights file {weights_path} of the ensemble does not exist.")
    if file_sha256(weights_path) != manifest["weights_sha256"]:
        raise CheckpointError(
            f"Weights file {weights_path} does not match the checksum in ensemble.json: it is "
            "truncated or from another export."
        )
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"Weights file {weights_path} is unreadable ({exc}).") from None
    try:
        models = [_member_model(m, tensors, weights_path) for m in manifest["members"]]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        if isinstance(exc, LREnsembleError):
            raise
        raise CheckpointError(f"{root / ENSEMBLE_JSON} is malformed ({exc!r}).") from None
    if tensors:
        raise CheckpointError(
            f"Weights file {weights_path} holds tensors of no member ({next(iter(tensors))})."
        )
    norm = manifest.get("normalization")
    ensemble = EnsembleModel(
        models,
        [m["weight"] for m in manifest["members"]],
        [m["temperature"] for m in manifest["members"]],
        float(manifest["temperature"]),
        groups=[m["group"] for m in manifest["members"]],
        input_shape=manifest["input_shape"],
        normalization=None if norm is None else Normalization.from_dict(norm),
        ids=[m["id"] for m in manifest["members"]],
        classes=manifest.get("classes"),
        manifest=manifest,
    )
    return ensemble.to(target)


__all__ = ["EnsembleModel", "load_ensemble"]
