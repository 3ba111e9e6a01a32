"""Hooks into the trainer: extra loss terms, fixed weight masks and weight averaging.

The later methods are built from these: feature-distance and diversity losses (snapshot
variants), pruning masks (Prune-and-Tune) and averaging (SWA-style members).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from lrensemble.errors import ParameterError

if TYPE_CHECKING:
    from lrensemble.data.loader import BatchLoader


@dataclass
class TrainContext:
    """What hooks see: the live objects and the position in training."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader: BatchLoader
    device: torch.device
    epochs: int
    epoch: int = 0
    step: int = 0
    extras: dict[str, Any] = field(default_factory=dict)


class TrainHook:
    """Base class: override what you need. `state_dict`/`load_state_dict` make a hook resumable
    (tensors are fine: they go to the safetensors checkpoint). `spec()` describes the hook in
    the member's identity: override it to include every setting that changes the weights, or
    to return None for a hook that only observes (logging, timing), which changes no member.
    `cleanup` undoes what `on_train_start` set up, however training ends (diverged, errors)."""

    def spec(self) -> dict[str, Any] | None:
        """JSON-able description, part of the member's fingerprint. The default: the class
        and the hook's public attributes that are plain values (numbers, strings, lists of
        them); override it when a setting lives elsewhere."""
        cls = type(self)
        plain = {k: v for k, v in vars(self).items() if not k.startswith("_") and _plain(v)}
        return {"hook": f"{cls.__module__}.{cls.__qualname__}", **plain}

    def on_train_start(self, ctx: TrainContext) -> None: ...

    def extra_loss(
        self, ctx: TrainContext, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor | None:
        return None

    def after_step(self, ctx: TrainContext) -> None: ...

    def on_epoch_end(self, ctx: TrainContext) -> None: ...

    def on_train_end(self, ctx: TrainContext) -> None: ...

    def cleanup(self, ctx: TrainContext) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _plain(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str, type(None))):
        return True
    return isinstance(value, (list, tuple)) and all(_plain(v) for v in value)


def _function_digest(fn: Callable[..., Any]) -> str:
    """A digest of a function's code, constants and captured plain values, so that two
    lambdas of one scope, or one closure over different numbers, are told apart."""
    code = getattr(fn, "__code__", None)
    digest = hashlib.sha256(repr(fn).encode() if code is None else code.co_code)
    if code is not None:
        digest.update(repr(code.co_consts).encode())
        for cell in getattr(fn, "__closure__", None) or ():
            value = cell.cell_contents
            digest.update(repr(value).encode() if _plain(value) else type(value).__name__.encode())
    return digest.hexdigest()[:16]


def weight_hooks(hooks: Sequence[TrainHook]) -> list[TrainHook]:
    """The hooks that are part of a member's identity (a spec; observers have None): the ones
    whose state a checkpoint keeps, in order, so that adding or dropping an observer between a
    run and its resume never hands one hook another's state."""
    return [hook for hook in hooks if hook.spec() is not None]


class ExtraLoss(TrainHook):
    """Add `weight * fn(ctx, x, y, logits)` to the training loss of every batch.

    The member's identity covers `fn`'s name, code, constants and captured plain values;
    `describe` names what else the loss depends on (e.g. a digest of a reference model's
    weights, or a captured tensor), so that two losses with one function but different
    references are told apart."""

    def __init__(
        self,
        fn: Callable[[TrainContext, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
        weight: float = 1.0,
        describe: Mapping[str, Any] | None = None,
    ) -> None:
        self.fn, self.weight = fn, float(weight)
        self.describe = dict(describe or {})

    def spec(self) -> dict[str, Any]:
        fn = f"{getattr(self.fn, '__module__', '?')}.{getattr(self.fn, '__qualname__', self.fn)}"
        return {
            "hook": "ExtraLoss",
            "fn": fn,
            "code": _function_digest(self.fn),
            "weight": self.weight,
            **self.describe,
        }

    def extra_loss(self, ctx, x, y, logits):  # type: ignore[no-untyped-def]
        return self.weight * self.fn(ctx, x, y, logits)


class WeightMask(TrainHook):
    """Keep masked weights at exactly zero: `masks` maps parameter names to boolean (or 0/1)
    tensors of the parameter's shape; False entries are zeroed at the start and after every
    optimizer step, whatever momentum or weight decay would do to them."""

    def __init__(self, masks: Mapping[str, torch.Tensor]) -> None:
        self.masks = dict(masks)
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def spec(self) -> dict[str, Any]:
        """The masked parameters and a digest of the masks' values."""
        digest = hashlib.sha256()
        for name in sorted(self.masks):
            mask = self.masks[name].detach().to("cpu", torch.bool).contiguous()
            digest.update(name.encode() + str(tuple(mask.shape)).encode())
            digest.update(mask.numpy().tobytes())
        return {"hook": "WeightMask", "parameters": sorted(self.masks), "masks": digest.hexdigest()}

    def on_train_start(self, ctx: TrainContext) -> None:
        params = dict(ctx.model.named_parameters())
        unknown = sorted(set(self.masks) - set(params))
        if unknown:
            raise ParameterError(f"Masks name parameters the model lacks: {', '.join(unknown)}.")
        self._pairs = []
        for name, mask in self.masks.items():
            p = params[name]
            if tuple(mask.shape) != tuple(p.shape):
                raise ParameterError(
                    f"The mask of {name} has shape {tuple(mask.shape)}, the parameter "
                    f"{tuple(p.shape)}."
                )
            self._pairs.append((p, mask.to(device=p.device, dtype=p.dtype)))
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        for p, m in self._pairs:
            p.mul_(m)

    def after_step(self, ctx: TrainContext) -> None:
        self.apply()


class WeightAveraging(TrainHook):
    """Average weights during training with torch's `AveragedModel`: `mode="swa"` (equal
    average of the weights at the end of each epoch from `start_epoch` on) or `mode="ema"`
    (exponential moving average after every step). At the end the averaged weights replace the
    model's and batch-norm statistics are recomputed on the training data."""

    def __init__(self, mode: str = "swa", start_epoch: int = 0, decay: float = 0.999) -> None:
        if mode not in ("swa", "ema"):
            raise ParameterError(f"Weight averaging mode must be 'swa' or 'ema', got {mode!r}.")
        if not 0.0 < decay < 1.0:
            raise ParameterError(f"EMA decay must be in (0, 1), got {decay}.")
        self.mode, self.start_epoch, self.decay = mode, int(start_epoch), float(decay)
        self.averaged: AveragedModel | None = None
        self._pending: dict[str, Any] | None = None

    def spec(self) -> dict[str, Any]:
        spec = {"hook": "WeightAveraging", "mode": self.mode, "start_epoch": self.start_epoch}
        return {**spec, "decay": self.decay} if self.mode == "ema" else spec

    def on_train_start(self, ctx: TrainContext) -> None:
        fn = get_ema_multi_avg_fn(self.decay) if self.mode == "ema" else None
        self.averaged = AveragedModel(ctx.model, multi_avg_fn=fn, use_buffers=self.mode == "ema")
        if self._pending is not None:
            self.averaged.load_state_dict(self._pending)
            self._pending = None

    def after_step(self, ctx: TrainContext) -> None:
        if self.mode == "ema" and ctx.epoch >= self.start_epoch:
            self.averaged.update_parameters(ctx.model)  # type: ignore[union-attr]

    def on_epoch_end(self, ctx: TrainContext) -> None:
        if self.mode == "swa" and ctx.epoch >= self.start_epoch:
            self.averaged.update_parameters(ctx.model)  # type: ignore[union-attr]

    def on_train_end(self, ctx: TrainContext) -> None:
        assert self.averaged is not None
        if int(self.averaged.n_averaged) == 0:
            return
        ctx.model.load_state_dict(self.averaged.module.state_dict())
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in ctx.model.modules()):
            update_bn((xb for xb, _ in ctx.loader.epoch(ctx.epochs)), ctx.model, ctx.device)

    def state_dict(self) -> dict[str, Any]:
        return {} if self.averaged is None else {"averaged": self.averaged.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "averaged" in state:
            if self.averaged is not None:
                self.averaged.load_state_dict(state["averaged"])
            else:
                self._pending = state["averaged"]
