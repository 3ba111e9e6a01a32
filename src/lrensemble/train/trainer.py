"""The single-member trainer: one model, one LR policy, one optimizer, from a seed.

Writes (when given an output directory) `model.safetensors` and `member.json` at the end, and a
resumable `checkpoint.safetensors` after every epoch, all atomically. A non-finite loss stops the
run cleanly and marks it diverged.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ConfigDict, Field
from torch import nn

from lrensemble import __version__
from lrensemble.atomic import write_json
from lrensemble.config import StrictModel
from lrensemble.data.augment import ImageAugment
from lrensemble.data.base import Dataset
from lrensemble.data.loader import BatchLoader
from lrensemble.device import resolve_device
from lrensemble.errors import CheckpointError
from lrensemble.models.registry import create_model
from lrensemble.progress import Bars, progress_enabled
from lrensemble.schedules.base import MAX_EPOCHS, Policy, from_spec
from lrensemble.schedules.torch_scheduler import PolicyScheduler
from lrensemble.train.checkpoint import (
    load_state,
    load_state_into,
    load_weights,
    save_state,
    save_weights,
    weights_digest,
)
from lrensemble.train.evaluate import classification_metrics, predict_logits
from lrensemble.train.hooks import TrainContext, TrainHook, weight_hooks
from lrensemble.train.optim import create_optimizer, needs_closure

MEMBER_FORMAT = 1
# what a member's identity covers: 2 since hooks and starting weights are in it (members of
# version 1 open and select as before, but do not resume or merge by fingerprint)
IDENTITY_VERSION = 2
# training settings that change no weight: where it runs, how it evaluates and checkpoints
NOT_IN_IDENTITY = {"device", "eval_batch_size", "checkpoint_every", "divergence_check_every"}
WEIGHTS = "model.safetensors"
MEMBER_JSON = "member.json"
CHECKPOINT = "checkpoint.safetensors"


MAX_SEED = 2**63 - 1


class TrainConfig(StrictModel):
    """How one member is trained (everything but the model, the data and the LR policy).

    Every number is finite, epochs at most `MAX_EPOCHS` and the seed in [0, 2**63), so a typo
    such as `weight_decay = inf` or `epochs = 10**30` is one sentence, not a broken run."""

    model_config = ConfigDict(allow_inf_nan=False)

    epochs: int = Field(30, gt=0, le=MAX_EPOCHS)
    batch_size: int = Field(128, gt=0)
    optimizer: Literal["sgd", "adamw", "sam", "asam"] = "sgd"
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(5e-4, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.999)
    rho: float | None = Field(None, gt=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0)
    augment: bool | None = None
    crop_padding: int = Field(4, ge=0)
    cutout: int = Field(0, ge=0)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    device: str = "auto"
    eval_batch_size: int = Field(1024, gt=0)
    checkpoint_every: int = Field(1, ge=0)
    divergence_check_every: int = Field(10, gt=0)


@dataclass
class TrainResult:
    """What a run produced: status ("complete" or "diverged"), per-epoch history, final metrics
    per split, wall time, and where it was written."""

    status: str
    history: list[dict[str, float]]
    metrics: dict[str, dict[str, float]]
    seconds: float
    epochs_completed: int
    out_dir: Path | None = None
    diverged_at: dict[str, int] | None = None
    record: dict[str, Any] = field(default_factory=dict)


def build_model(name: str, dataset: Dataset, seed: int = 0, **params: Any) -> nn.Module:
    """Create a registered model for `dataset`, initialized from `seed` without touching the
    global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(name, dataset.num_classes, dataset.input_shape, **params)


def library_versions() -> dict[str, str]:
    return {
        "lrensemble": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 2_654_435_761 + int(epoch) * 40_503 + 17) % (2**63)


def train_member(
    model: nn.Module,
    dataset: Dataset,
    policy: Policy | dict[str, Any],
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    hooks: Sequence[TrainHook] = (),
    model_spec: dict[str, Any] | None = None,
    resume: bool = True,
    progress: bool | None = None,
    description: str = "train",
) -> TrainResult:
    """Train `model` on `dataset` under an LR `policy` (updated every iteration).

    Args:
        model: any `nn.Module` mapping a batch of inputs to logits (N, C).
        dataset: train/val/test tensors; validation metrics are recorded every epoch.
        policy: a `Policy` or its spec.
        config: optimizer, epochs, batch size, seed, device, ... (defaults: `TrainConfig()`).
        out_dir: where to write weights, `member.json` and the resumable checkpoint.
        hooks: extra loss terms, weight masks, weight averaging (`lrensemble.train.hooks`).
        model_spec: how to rebuild the model (e.g. `{"name": "cnn1d"}`), recorded in member.json.
        resume: continue from `out_dir`'s checkpoint, or return a member already complete there.
        progress: progress bars (default: only on a terminal outside CI).

    Returns:
        A `TrainResult`; `status` is "diverged" if the loss became non-finite.
    """
    config = config or TrainConfig()
    policy = from_spec(policy)
    device = resolve_device(config.device)
    out = Path(out_dir) if out_dir is not None else None
    setup, fingerprint = member_setup(dataset, model, policy, config, model_spec, hooks)

    if out is not None and resume:
        done = finished_member(out, fingerprint, model, device)
        if done is not None:
            return done

    model.to(device)
    augment = None
    if config.augment or (config.augment is None and dataset.image):
        augment = ImageAugment(crop_padding=config.crop_padding, flip=True, cutout=config.cutout)
    x_train, y_train = dataset.split("train")
    loader = BatchLoader(
        x_train,
        y_train,
        config.batch_size,
        shuffle=True,
        seed=config.seed,
        device=device,
        augment=augment,
    )
    optimizer = create_optimizer(
        model.parameters(),
        config.optimizer,
        lr=policy(0.0, config.epochs),
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
        betas=config.betas,
        rho=config.rho,
    )
    scheduler = PolicyScheduler(optimizer, policy, config.epochs, steps_per_epoch=len(loader))
    ctx = TrainContext(model, optimizer, scheduler, loader, device, config.epochs)
    history: list[dict[str, float]] = []
    start_epoch, elapsed = 0, 0.0

    if out is not None:
        remove_stale_temporaries(out)
    if out is not None and resume and (out / CHECKPOINT).exists():
        state = load_state(out / CHECKPOINT, device)
        if state.get("fingerprint") != fingerprint:
            raise CheckpointError(f"{out / CHECKPOINT} {other_setup(state)}")
        load_state_into(model, state["model"], str(out / CHECKPOINT))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        for hook, hook_state in zip(weight_hooks(hooks), state.get("hooks", []), strict=False):
            hook.load_state_dict(hook_state)
        history = state["history"]
        start_epoch, elapsed = int(state["epoch"]) + 1, float(state["seconds"])

    try:
        for hook in hooks:
            hook.on_train_start(ctx)

        x_val, y_val = dataset.split("val")
        diverged_at: dict[str, int] | None = None
        steps = len(loader)
        with Bars(progress_enabled(progress)) as bars:
            bar = bars.add(
                description, total=config.epochs * len(loader), completed=start_epoch * len(loader)
            )
            info = ""
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                for epoch in range(start_epoch, config.epochs):
                    ctx.epoch, where = epoch, f"epoch {epoch + 1}/{config.epochs}"
                    t0 = time.perf_counter()
                    torch.manual_seed(epoch_seed(config.seed, epoch))  # dropout etc., resumable
                    model.train()
                    loss_sum = torch.zeros((), device=device)
                    seen = 0
                    for i, (xb, yb) in enumerate(loader.epoch(epoch)):
                        ctx.step = epoch * steps + i
                        loss = _train_step(ctx, hooks, xb, yb, config)
                        loss_sum += loss * len(yb)
                        seen += len(yb)
                        bars.update(bar, advance=1, info=f"{where} {info}")
                        check = (i + 1) % config.divergence_check_every == 0 or i + 1 == steps
                        # one sync per check, not per step
                        if check and not torch.isfinite(loss_sum):
                            diverged_at = {"epoch": epoch, "step": ctx.step}
                            break
                    if diverged_at is not None:
                        break
                    record = {
                        "epoch": epoch + 1,
                        "train_loss": float(loss_sum) / max(seen, 1),
                        "lr": float(optimizer.param_groups[0]["lr"]),
                    }
                    if len(y_val):
                        logits = predict_logits(model, x_val, config.eval_batch_size, device)
                        val = classification_metrics(logits, y_val)
                        record.update({f"val_{k}": v for k, v in val.items()})
                    for hook in hooks:
                        hook.on_epoch_end(ctx)
                    elapsed += time.perf_counter() - t0
                    record["seconds"] = elapsed
                    history.append(record)
                    last = epoch + 1 == config.epochs
                    if (
                        out is not None
                        and config.checkpoint_every
                        and not last
                        and ((epoch + 1) % config.checkpoint_every == 0)
                    ):
                        save_checkpoint(
                            out,
                            fingerprint,
                            model,
                            optimizer,
                            scheduler,
                            [h.state_dict() for h in weight_hooks(hooks)],
                            history,
                            epoch,
                            elapsed,
                        )
                    acc = record.get("val_accuracy")
                    info = f"loss {record['train_loss']:.4f}"
                    info += f"  val acc {acc:.4f}" if acc else ""
                    bars.update(bar, info=f"{where} {info}")

        if diverged_at is not None:
            result = TrainResult("diverged", history, {}, elapsed, len(history), out, diverged_at)
        else:
            for hook in hooks:
                hook.on_train_end(ctx)
            metrics = {}
            for split in ("val", "test"):
                x, y = dataset.split(split)
                if len(y):
                    logits = predict_logits(model, x, config.eval_batch_size, device)
                    metrics[split] = classification_metrics(logits, y)
            result = TrainResult("complete", history, metrics, elapsed, len(history), out)
    finally:
        for hook in hooks:  # however training ended: undo what the hooks set up
            hook.cleanup(ctx)
    result.record = member_record(setup, fingerprint, config, result, start_epoch, device)
    if out is not None:
        write_member(out, model, result)
    return result


def _loss(
    ctx: TrainContext,
    hooks: Sequence[TrainHook],
    xb: torch.Tensor,
    yb: torch.Tensor,
    config: TrainConfig,
) -> torch.Tensor:
    logits = ctx.model(xb)
    loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
    for hook in hooks:
        extra = hook.extra_loss(ctx, xb, yb, logits)
        if extra is not None:
            loss = loss + extra
    return loss


def _train_step(
    ctx: TrainContext,
    hooks: Sequence[TrainHook],
    xb: torch.Tensor,
    yb: torch.Tensor,
    config: TrainConfig,
) -> torch.Tensor:
    def forward_backward() -> torch.Tensor:
        loss = _loss(ctx, hooks, xb, yb, config)
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(ctx.model.parameters(), config.grad_clip)
        return loss

    opt = ctx.optimizer
    opt.zero_grad(set_to_none=True)
    loss = forward_backward()
    if needs_closure(opt):
        opt.step(forward_backward)  # SAM: gradients again at the perturbed weights
    else:
        opt.step()
    for hook in hooks:
        hook.after_step(ctx)
    ctx.scheduler.step()
    return loss.detach()


def member_setup(
    dataset: Dataset,
    model: nn.Module,
    policy: Policy,
    config: TrainConfig,
    model_spec: dict[str, Any] | None,
    hooks: Sequence[TrainHook] = (),
) -> tuple[dict[str, Any], str]:
    """What defines a member and its fingerprint: everything that changes its weights (data,
    model, policy, training settings, each hook's spec, a digest of the starting weights), and
    nothing that does not (device, progress bars). The same for the single-member and the
    batched trainer, so either resumes the other's. Call it before training touches `model`."""
    setup = {
        "dataset": dataset.describe(),
        "model": model_spec or {"class": type(model).__name__},
        "policy": policy.spec(),
        "train": config.model_dump(mode="json", exclude=NOT_IN_IDENTITY),
        "hooks": [spec for spec in (hook.spec() for hook in hooks) if spec is not None],
        "start_weights": weights_digest(model),
        "identity": IDENTITY_VERSION,
    }
    return setup, _fingerprint(setup)


def member_record(
    setup: dict[str, Any],
    fingerprint: str,
    config: TrainConfig,
    result: TrainResult,
    start_epoch: int,
    device: torch.device,
    **extra: Any,
) -> dict[str, Any]:
    """The member.json of a finished (or diverged) member."""
    return {
        "format": MEMBER_FORMAT,
        "method": "train",
        "status": result.status,
        **setup,
        "seed": config.seed,
        "epochs": config.epochs,
        "epochs_completed": result.epochs_completed,
        "resumed_from_epoch": start_epoch,
        "diverged_at": result.diverged_at,
        "metrics": result.metrics,
        "history": result.history,
        "timings": {"train_seconds": result.seconds},
        "device": str(device),
        "versions": library_versions(),
        "fingerprint": fingerprint,
        **extra,
    }


def other_setup(saved: dict[str, Any]) -> str:
    """Why a saved member or checkpoint is not the one asked for: the end of a sentence."""
    if saved.get("identity") != IDENTITY_VERSION:
        return (
            "was made by an older lrensemble, whose member identity did not cover hooks and "
            "starting weights; delete it or use another output directory."
        )
    return "was made with a different setup; use another output directory or delete it."


def save_checkpoint(
    out: Path,
    fingerprint: str,
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    hook_states: list[dict[str, Any]],
    history: list[dict[str, float]],
    epoch: int,
    elapsed: float,
) -> None:
    """The resumable state after `epoch` (0-based), one safetensors file written atomically."""
    save_state(
        out / CHECKPOINT,
        {
            "fingerprint": fingerprint,
            "identity": IDENTITY_VERSION,
            "epoch": epoch,
            "seconds": elapsed,
            "history": history,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "hooks": hook_states,
        },
    )


def write_member(out: Path, model: nn.Module, result: TrainResult) -> None:
    """Weights first, then member.json (the marker of a finished member), then drop the
    checkpoint: a crash in between leaves a member that is either complete or resumable."""
    out.mkdir(parents=True, exist_ok=True)
    if result.status == "complete":
        save_weights(model, out / WEIGHTS, {"fingerprint": result.record["fingerprint"]})
    write_json(out / MEMBER_JSON, _jsonable(result.record))
    (out / CHECKPOINT).unlink(missing_ok=True)


def remove_stale_temporaries(out: Path) -> None:
    """Delete temporary files that a killed atomic write left behind (never a real file)."""
    if out.is_dir():
        for tmp in out.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def finished_member(
    out: Path, fingerprint: str, model: nn.Module, device: torch.device
) -> TrainResult | None:
    """A member already complete (or diverged) in `out` for the same setup, loaded, or None."""
    path = out / MEMBER_JSON
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # treat an unreadable record as unfinished: it will be rewritten
    if record.get("fingerprint") != fingerprint:
        raise CheckpointError(f"{out} holds a member that {other_setup(record)}")
    if record.get("status") == "complete":
        load_weights(model, out / WEIGHTS, device)
        model.to(device)
    return TrainResult(
        record["status"],
        record.get("history", []),
        record.get("metrics", {}),
        record.get("timings", {}).get("train_seconds", 0.0),
        record.get("epochs_completed", 0),
        out,
        record.get("diverged_at"),
        record,
    )
