"""Train K members of one architecture at once: parameters stacked along a member axis, one
vectorized forward and backward (`stacked.StackedModels`), and a functional optimizer whose
learning rate and weight decay are per-member tensors (`functional_optim.StackedOptimizer`), so
every member follows its own LR policy.

Each member ends up exactly as the single-member trainer would leave it (same seed, same data
order, float tolerance): the same `model.safetensors`, `member.json` and per-epoch
`checkpoint.safetensors`, so either trainer resumes the other's members. A member whose loss
turns non-finite leaves the batch at the step the single trainer would stop; the others go on.
Weight masks and weight averaging run stacked (`stacked_hooks`). Members with other hooks, and
models that cannot be stacked (synchronized batch norm, models `vmap` cannot vectorize:
`batch_plan.batch_blocker` runs a two-member step first) train one by one through
`train_member`, with a logged reason. With dropout, each member draws its own masks, so such
members match one-by-one training in distribution rather than number for number. A member's
recorded training time is its share of the batch's wall time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lrensemble.data.base import Dataset
from lrensemble.device import resolve_device
from lrensemble.errors import ParameterError
from lrensemble.progress import Bars, progress_enabled
from lrensemble.schedules.base import Policy, from_spec
from lrensemble.train.batch_plan import batch_blocker, default_chunk_size
from lrensemble.train.chunk import (
    Chunk,
    Loaders,
    Member,
    finish_member,
    load_member,
    start_hooks,
    training_loader,
)
from lrensemble.train.evaluate import classification_metrics
from lrensemble.train.functional_optim import clip_per_member
from lrensemble.train.hooks import TrainHook, weight_hooks
from lrensemble.train.stacked import StackedModels, check_same_architecture
from lrensemble.train.stacked_hooks import averaging_of, hooks_blocker, stack_key
from lrensemble.train.trainer import (
    CHECKPOINT,
    TrainConfig,
    TrainResult,
    epoch_seed,
    finished_member,
    member_setup,
    remove_stale_temporaries,
    save_checkpoint,
    train_member,
)

log = logging.getLogger(__name__)


def train_members(
    models: Sequence[nn.Module],
    dataset: Dataset,
    policies: Sequence[Policy | dict[str, Any]],
    config: TrainConfig | None = None,
    *,
    out_dirs: Sequence[str | Path | None] | None = None,
    seeds: Sequence[int] | None = None,
    weight_decays: Sequence[float] | None = None,
    hooks: Sequence[Sequence[TrainHook]] | None = None,
    model_spec: dict[str, Any] | None = None,
    chunk_size: int | None = None,
    resume: bool = True,
    progress: bool | None = None,
    description: str = "batch",
) -> list[TrainResult]:
    """Train `models[k]` under `policies[k]`, several at once.

    Args:
        models: K models of one architecture (each initialized as you like, e.g. from its seed).
        dataset, config: as for `train_member`; the config is shared.
        out_dirs: one output directory per member (or None), as for `train_member`.
        seeds: per-member seed (data order, recorded in member.json); default: all
            `config.seed`, the paper's setting, in which all members see the same batches and
            the batch is shared by the vectorized forward pass.
        weight_decays: per-member weight decay (default: `config.weight_decay` for all).
        hooks: per-member hooks, one sequence per model, as `train_member`'s `hooks`.
            `WeightMask` and `WeightAveraging` run in the stack; a member with any other hook
            trains one by one through `train_member`.
        chunk_size: at most this many members train together (bounds memory); default
            `default_chunk_size` of the model, its optimizer and batch.

    Returns:
        One `TrainResult` per member, in order; each equals what
        `train_member(models[k], dataset, policies[k], config with seeds[k] and
        weight_decays[k], hooks=hooks[k])` returns, up to float rounding.
    """
    config = config or TrainConfig()
    k = len(models)
    if not (
        len(policies) == k
        and (out_dirs is None or len(out_dirs) == k)
        and (seeds is None or len(seeds) == k)
        and (weight_decays is None or len(weight_decays) == k)
        and (hooks is None or len(hooks) == k)
    ):
        raise ParameterError(
            "models, policies, out_dirs, seeds, weight_decays and hooks must have one entry "
            "per member."
        )
    if chunk_size is not None and chunk_size < 1:
        raise ParameterError(f"chunk_size must be at least 1, got {chunk_size}.")
    configs = [
        config.model_copy(
            update={
                "seed": config.seed if seeds is None else int(seeds[i]),
                "weight_decay": config.weight_decay
                if weight_decays is None
                else float(weight_decays[i]),
            }
        )
        for i in range(k)
    ]
    outs = [
        None if out_dirs is None or out_dirs[i] is None else Path(out_dirs[i]) for i in range(k)
    ]
    pols = [from_spec(p) for p in policies]
    member_hooks = [[] if hooks is None else list(hooks[i]) for i in range(k)]
    results: list[TrainResult | None] = [None] * k

    alone = _one_by_one(models, dataset, member_hooks)
    for i in alone:
        results[i] = train_member(
            models[i],
            dataset,
            pols[i],
            configs[i],
            out_dir=outs[i],
            hooks=member_hooks[i],
            model_spec=model_spec,
            resume=resume,
            progress=progress,
            description=f"{description} {i + 1}/{k}",
        )
    stacked = [i for i in range(k) if i not in alone]
    if not stacked:
        return results  # type: ignore[return-value]
    check_same_architecture([models[i] for i in stacked])

    device = resolve_device(config.device)
    if chunk_size is None:
        chunk_size = default_chunk_size(
            models[stacked[0]],
            config.optimizer,
            device,
            input_shape=dataset.input_shape,
            batch_size=config.batch_size,
        )
    loaders: Loaders = {}
    pending: list[Member] = []
    for i in stacked:
        setup, fingerprint = member_setup(
            dataset, models[i], pols[i], configs[i], model_spec, member_hooks[i]
        )
        if outs[i] is not None and resume:
            done = finished_member(outs[i], fingerprint, models[i], device)
            if done is not None:
                results[i] = done
                continue
        member = Member(
            i, models[i], pols[i], configs[i], outs[i], member_hooks[i], setup, fingerprint
        )
        if outs[i] is not None:
            remove_stale_temporaries(outs[i])
            if resume and (outs[i] / CHECKPOINT).exists():
                load_member(member, device)
        start_hooks(member, dataset, device, loaders)
        pending.append(member)
    # members that resume from different epochs or average differently cannot share steps
    groups: dict[tuple[Any, ...], list[Member]] = {}
    for m in pending:
        groups.setdefault((m.start_epoch, stack_key(m.hooks)), []).append(m)
    for key in sorted(groups, key=lambda g: g[0]):
        group = groups[key]
        for lo in range(0, len(group), chunk_size):
            chunk = group[lo : lo + chunk_size]
            trained = _train_chunk(chunk, dataset, device, loaders, progress, description)
            for member, result in zip(chunk, trained, strict=True):
                results[member.index] = result
    return results  # type: ignore[return-value]


def _one_by_one(
    models: Sequence[nn.Module], dataset: Dataset, member_hooks: list[list[TrainHook]]
) -> list[int]:
    """The members to train one by one, each with the reason logged: those whose hooks cannot
    run in a stack, and all of them when the model cannot be stacked or one member is left."""
    k = len(models)
    alone = []
    averaging_seen: set[int] = set()  # a shared averaging hook holds one member's average
    for i, hooks in enumerate(member_hooks):
        why = hooks_blocker(hooks) if k > 1 else None
        avg = averaging_of(hooks)
        if why is None and avg is not None:
            if id(avg) in averaging_seen:
                why = "its WeightAveraging hook is another member's too"
            averaging_seen.add(id(avg))
        if why:
            log.warning("training member %d/%d one by one: %s", i + 1, k, why)
            alone.append(i)
    rest = [i for i in range(k) if i not in alone]
    if len(rest) > 1:
        blocker = batch_blocker(models[rest[0]], dataset.input_shape)
        if blocker is None:
            return alone
        log.warning("training one by one: %s", blocker)
    return sorted(alone + rest)


def _train_chunk(
    members: list[Member],
    dataset: Dataset,
    device: torch.device,
    loaders: Loaders,
    progress: bool | None,
    description: str,
) -> list[TrainResult]:
    cfg = members[0].config
    epochs = cfg.epochs
    start_epoch = members[0].start_epoch
    seeds = sorted({m.config.seed for m in members})
    shared = len(seeds) == 1
    feeds = [
        training_loader(dataset, cfg, device, loaders, s)
        for s in (seeds if shared else [m.config.seed for m in members])
    ]
    steps = len(feeds[0])
    chunk = Chunk.start(members, device, steps)
    stack = chunk.stack
    x_val, y_val = dataset.split("val")
    x_val, y_val = x_val.to(device), y_val.to(device)
    with Bars(progress_enabled(progress)) as bars:
        bar = bars.add(
            f"{description} ×{len(members)}", total=epochs * steps, completed=start_epoch * steps
        )
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for epoch in range(start_epoch, epochs):
                t0 = time.perf_counter()
                torch.manual_seed(epoch_seed(cfg.seed, epoch))
                stack.base.train()
                iters = [ld.epoch(epoch) for ld in feeds]
                loss_sum = torch.zeros(len(chunk.active), device=device)
                seen = 0
                for i in range(steps):
                    batches = [next(it) for it in iters]
                    if shared:
                        xb, yb = batches[0]
                        targets = yb.expand(len(chunk.active), -1)
                    else:
                        xb = torch.stack([b[0] for b in batches])
                        targets = torch.stack([b[1] for b in batches])
                    losses, grads = _gradients(stack, cfg, xb, targets, not shared)
                    if chunk.optim.sam:  # gradients again at each member's perturbed weights
                        moves = chunk.optim.ascend(stack.params, grads)
                        grads = _gradients(stack, cfg, xb, targets, not shared)[1]
                        chunk.optim.descend(stack.params, moves)
                    step = epoch * steps + i
                    lr = torch.tensor(
                        [members[r].policy(step / steps, epochs) for r in chunk.active],
                        device=device,
                    )
                    chunk.optim.update(stack.params, grads, lr)
                    chunk.after_step(epoch)
                    loss_sum += losses * targets.shape[1]
                    seen += targets.shape[1]
                    bars.update(bar, advance=1)
                    check = (i + 1) % cfg.divergence_check_every == 0 or i + 1 == steps
                    if check:
                        bad = ~torch.isfinite(loss_sum)
                        if bad.any():
                            for row in torch.nonzero(bad).flatten().tolist():
                                members[chunk.active[row]].diverged_at = {
                                    "epoch": epoch,
                                    "step": step,
                                }
                            keep = torch.nonzero(~bad).flatten()
                            chunk.keep(keep)
                            loss_sum = loss_sum[keep]
                            if not shared:
                                feeds = [feeds[r] for r in keep.tolist()]
                                iters = [iters[r] for r in keep.tolist()]
                    if not chunk.active:
                        break
                if not chunk.active:
                    break
                dt = time.perf_counter() - t0
                _end_of_epoch(chunk, loss_sum, seen, epoch, x_val, y_val, dt)
    final: dict[str, torch.Tensor] = {}  # logits (active, N, C) of the finished members
    if chunk.active and chunk.average is None:  # averaged members are evaluated once averaged
        for split in ("val", "test"):
            x, y = dataset.split(split)
            if len(y):
                final[split] = stack.evaluate(x.to(device), cfg.eval_batch_size)
    return [
        finish_member(
            chunk,
            pos,
            dataset,
            final,
            training_loader(dataset, cfg, device, loaders, m.config.seed),
        )
        for pos, m in enumerate(members)
    ]


def _gradients(
    stack: StackedModels,
    cfg: TrainConfig,
    x: torch.Tensor,
    targets: torch.Tensor,
    per_member_x: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Each active member's mean loss on the batch (targets (K, B)) and its gradients, clipped
    per member when the config asks."""
    logits = stack.forward(x, per_member_x)  # (K, B, C)
    k, b, c = logits.shape
    losses = (
        F.cross_entropy(
            logits.reshape(k * b, c),
            targets.reshape(-1),
            label_smoothing=cfg.label_smoothing,
            reduction="none",
        )
        .view(k, b)
        .mean(dim=1)
    )
    grads = list(torch.autograd.grad(losses.sum(), list(stack.params.values())))
    if cfg.grad_clip is not None:
        grads = clip_per_member(grads, cfg.grad_clip)
    return losses.detach(), grads


def _end_of_epoch(
    chunk: Chunk,
    loss_sum: torch.Tensor,
    seen: int,
    epoch: int,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    dt: float,
) -> None:
    """Each active member's history record, its averaging, and its checkpoint when due."""
    members, active, cfg = chunk.members, chunk.active, chunk.members[0].config
    logits = chunk.stack.evaluate(x_val, cfg.eval_batch_size) if len(y_val) else None
    if chunk.average is not None:
        chunk.average.on_epoch_end(chunk.stack, epoch)
    for row, pos in enumerate(active):
        member = members[pos]
        chunk.elapsed[pos] += dt / len(active)  # each member's share: they add up to wall time
        record = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum[row]) / max(seen, 1),
            "lr": member.policy(epoch + 1, cfg.epochs),  # as the scheduler after the epoch
        }
        if logits is not None:
            record.update(
                {f"val_{k}": v for k, v in classification_metrics(logits[row], y_val).items()}
            )
        record["seconds"] = chunk.elapsed[pos]
        member.history.append(record)
        last = epoch + 1 == cfg.epochs
        if (
            member.out is not None
            and cfg.checkpoint_every
            and not last
            and ((epoch + 1) % cfg.checkpoint_every == 0)
        ):
            opt, sched = chunk.unstack(row, (epoch + 1) * chunk.steps)
            save_checkpoint(
                member.out,
                member.fingerprint,
                member.model,
                opt,
                sched,
                [h.state_dict() for h in weight_hooks(member.hooks)],
                member.history,
                epoch,
                chunk.elapsed[pos],
            )


@torch.no_grad()
def predict_proba_many(
    models: Sequence[nn.Module],
    x: torch.Tensor,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Softmax probabilities of several models of one architecture on inputs x, in one
    vectorized pass per batch: (K, N, C) float32 on the CPU. Models with batch norm are
    evaluated with their running statistics (eval mode). `batch_size` is one model's
    evaluation batch: each pass takes `stacked_batch_size(batch_size, K)` samples."""
    if not models:
        raise ParameterError("predict_proba_many needs at least one model.")
    check_same_architecture(models)
    device = resolve_device(device or "auto") if isinstance(device, (str, type(None))) else device
    stack = StackedModels(models, device, trainable=False)
    out = [torch.softmax(logits.float(), -1) for logits in stack.predict(x, batch_size)]
    return torch.cat(out, dim=1).cpu()
