"""Train K members of one architecture at once: parameters stacked along a member axis, one
vectorized forward and backward (torch.func: stack_module_state, functional_call, vmap), and
functional SGD, AdamW or SAM/ASAM around SGD whose learning rate and weight decay are per-member
tensors, so every member follows its own LR policy.

Each member ends up exactly as the single-member trainer would leave it (same seed, same data
order, float tolerance): the same `model.safetensors`, `member.json` and per-epoch
`checkpoint.safetensors`, so either trainer resumes the other's members. A member whose loss
turns non-finite leaves the batch at the step the single trainer would stop; the others go on.
Batch norm keeps per-member running statistics: the stacked buffers are updated in place under
`vmap`, as each member's own would be. Synchronized batch norm and models `vmap` cannot vectorize
(`batch_plan.batch_blocker` runs a two-member step first) fall back to one-by-one training.
With dropout, each member draws its own masks (vmap's `randomness="different"`), so such members
match one-by-one training in distribution rather than number for number. A member's recorded
training time is its share of the batch's wall time.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from lrensemble.data.augment import ImageAugment
from lrensemble.data.base import Dataset
from lrensemble.data.loader import BatchLoader
from lrensemble.device import resolve_device
from lrensemble.errors import CheckpointError, ParameterError
from lrensemble.progress import Bars, progress_enabled
from lrensemble.schedules.base import Policy, from_spec
from lrensemble.schedules.torch_scheduler import PolicyScheduler
from lrensemble.train.batch_plan import batch_blocker, default_chunk_size, stacked_batch_size
from lrensemble.train.checkpoint import load_state, load_state_into
from lrensemble.train.evaluate import classification_metrics
from lrensemble.train.optim import SAM, SAM_ETA, create_optimizer, sam_radius
from lrensemble.train.trainer import (
    CHECKPOINT,
    TrainConfig,
    TrainResult,
    epoch_seed,
    finished_member,
    member_record,
    member_setup,
    remove_stale_temporaries,
    save_checkpoint,
    train_member,
    write_member,
)

log = logging.getLogger(__name__)


@dataclass
class _Member:
    index: int
    model: nn.Module
    policy: Policy
    config: TrainConfig
    out: Path | None
    setup: dict[str, Any]
    fingerprint: str
    history: list[dict[str, float]]
    start_epoch: int
    elapsed: float
    state: dict[str, Any] | None = None  # optimizer state of a resumed member (torch format)
    diverged_at: dict[str, int] | None = None


def train_members(
    models: Sequence[nn.Module],
    dataset: Dataset,
    policies: Sequence[Policy | dict[str, Any]],
    config: TrainConfig | None = None,
    *,
    out_dirs: Sequence[str | Path | None] | None = None,
    seeds: Sequence[int] | None = None,
    weight_decays: Sequence[float] | None = None,
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
        chunk_size: at most this many members train together (bounds memory); default
            `default_chunk_size` of the model, its optimizer and batch.

    Returns:
        One `TrainResult` per member, in order; each equals what
        `train_member(models[k], dataset, policies[k], config with seeds[k] and
        weight_decays[k])` returns, up to float rounding.
    """
    config = config or TrainConfig()
    k = len(models)
    if not (
        len(policies) == k
        and (out_dirs is None or len(out_dirs) == k)
        and (seeds is None or len(seeds) == k)
        and (weight_decays is None or len(weight_decays) == k)
    ):
        raise ParameterError(
            "models, policies, out_dirs, seeds and weight_decays must have one entry per member."
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
    results: list[TrainResult | None] = [None] * k
    blocker = batch_blocker(models[0], dataset.input_shape) if k > 1 else None
    if blocker or k == 1:
        if blocker:
            log.warning("training one by one: %s", blocker)
        for i in range(k):
            results[i] = train_member(
                models[i],
                dataset,
                pols[i],
                configs[i],
                out_dir=outs[i],
                model_spec=model_spec,
                resume=resume,
                progress=progress,
                description=f"{description} {i + 1}/{k}",
            )
        return results  # type: ignore[return-value]
    _check_same_architecture(models)

    device = resolve_device(config.device)
    if chunk_size is None:
        chunk_size = default_chunk_size(
            models[0],
            config.optimizer,
            device,
            input_shape=dataset.input_shape,
            batch_size=config.batch_size,
        )
    pending: list[_Member] = []
    for i in range(k):
        setup, fingerprint = member_setup(dataset, models[i], pols[i], configs[i], model_spec)
        if outs[i] is not None and resume:
            done = finished_member(outs[i], fingerprint, models[i], device)
            if done is not None:
                results[i] = done
                continue
        member = _Member(i, models[i], pols[i], configs[i], outs[i], setup, fingerprint, [], 0, 0.0)
        if outs[i] is not None:
            remove_stale_temporaries(outs[i])
            if resume and (outs[i] / CHECKPOINT).exists():
                _load_member(member, device)
        pending.append(member)
    # members that resume from different epochs cannot share steps: group them
    groups: dict[int, list[_Member]] = {}
    for m in pending:
        groups.setdefault(m.start_epoch, []).append(m)
    for start in sorted(groups):
        group = groups[start]
        for lo in range(0, len(group), chunk_size):
            chunk = group[lo : lo + chunk_size]
            for member, result in zip(
                chunk, _train_chunk(chunk, dataset, device, progress, description), strict=True
            ):
                results[member.index] = result
    return results  # type: ignore[return-value]


def _check_same_architecture(models: Sequence[nn.Module]) -> None:
    first = {n: tuple(p.shape) for n, p in models[0].state_dict().items()}
    for i, m in enumerate(models[1:], 1):
        if {n: tuple(p.shape) for n, p in m.state_dict().items()} != first:
            raise ParameterError(
                f"Model {i} has another architecture than model 0; batched "
                "training needs one architecture."
            )


def _load_member(member: _Member, device: torch.device) -> None:
    """Restore a member from its single-trainer-format checkpoint."""
    path = member.out / CHECKPOINT  # type: ignore[operator]
    state = load_state(path, device)
    if state.get("fingerprint") != member.fingerprint:
        raise CheckpointError(
            f"{path} was made with a different setup; use another output directory or delete it."
        )
    load_state_into(member.model, state["model"], str(path))
    member.state = state["optimizer"]
    member.history = list(state["history"])
    member.start_epoch = int(state["epoch"]) + 1
    member.elapsed = float(state["seconds"])


class _Stack:
    """Stacked parameters, buffers and optimizer state of the active members."""

    def __init__(self, members: list[_Member], device: torch.device) -> None:
        params, buffers = stack_module_state([m.model.to(device) for m in members])
        self.names = list(params)
        self.params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
        self.buffers = {n: b.detach().clone() for n, b in buffers.items()}
        cfg = members[0].config
        self.adamw = cfg.optimizer == "adamw"
        self.sam = cfg.optimizer in ("sam", "asam")  # SGD at gradients taken at w + e(w)
        self.adaptive = cfg.optimizer == "asam"
        self.rho = sam_radius(cfg.optimizer, cfg.rho)
        self.momentum, self.nesterov, self.betas = cfg.momentum, cfg.nesterov, cfg.betas
        self.wd = torch.tensor([m.config.weight_decay for m in members], device=device)
        self.step = 0
        self.state: dict[str, dict[str, torch.Tensor]] = {n: {} for n in self.names}
        self._restore([m.state for m in members], device)

    def _restore(self, states: list[dict[str, Any] | None], device: torch.device) -> None:
        """Stack resumed members' torch-format optimizer states (param order = names order)."""
        if all(s is None for s in states):
            return
        if any(s is None for s in states):
            raise CheckpointError("members of one batch resume from different states")
        for j, name in enumerate(self.names):
            per = [s["state"].get(j, {}) for s in states]  # type: ignore[index]
            for key in per[0]:
                if key == "step":
                    self.step = int(float(per[0][key]))
                    continue
                self.state[name][key] = torch.stack([p[key].to(device) for p in per])

    def keep(self, rows: torch.Tensor) -> None:
        """Drop members: keep the given rows of every stacked tensor."""
        self.params = {
            n: p.detach()[rows].clone().requires_grad_(True) for n, p in self.params.items()
        }
        self.buffers = {n: b[rows] for n, b in self.buffers.items()}
        self.state = {n: {k: v[rows] for k, v in st.items()} for n, st in self.state.items()}
        self.wd = self.wd[rows]

    @torch.no_grad()
    def ascend(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """SAM/ASAM's move of every member to w + e(w), e(w) = rho T_w² g / ||T_w g|| per
        member (T_w = |w| + eta for ASAM, 1 for SAM), as `SAM` does; returns the moves."""
        params = [self.params[n] for n in self.names]
        scales = [p.abs() + SAM_ETA if self.adaptive else None for p in params]
        scaled = [g if t is None else t * g for g, t in zip(grads, scales, strict=True)]
        factor = self.rho / (_member_norms(scaled) + 1e-12)
        moves = []
        for p, g, t in zip(params, grads, scales, strict=True):
            e_w = g * factor.view((-1,) + (1,) * (g.ndim - 1))
            if t is not None:
                e_w = t**2 * e_w
            p.add_(e_w)
            moves.append(e_w)
        return moves

    @torch.no_grad()
    def descend(self, moves: list[torch.Tensor]) -> None:
        """Undo `ascend`."""
        for name, e_w in zip(self.names, moves, strict=True):
            self.params[name].sub_(e_w)

    @torch.no_grad()
    def update(self, grads: list[torch.Tensor], lr: torch.Tensor) -> None:
        """One optimizer step for every member, with torch's SGD / AdamW arithmetic."""
        self.step += 1
        for name, g in zip(self.names, grads, strict=True):
            p = self.params[name]
            shape = (-1,) + (1,) * (p.ndim - 1)
            lr_k, wd_k = lr.view(shape), self.wd.view(shape)
            st = self.state[name]
            if not self.adamw:
                d = g + wd_k * p
                if self.momentum:
                    buf = st.get("momentum_buffer")
                    buf = d.clone() if buf is None else buf.mul_(self.momentum).add_(d)
                    st["momentum_buffer"] = buf
                    d = d.add(buf, alpha=self.momentum) if self.nesterov else buf
                p.sub_(lr_k * d)
            else:  # adamw
                b1, b2 = self.betas
                p.mul_(1 - lr_k * wd_k)
                m = st.setdefault("exp_avg", torch.zeros_like(p))
                v = st.setdefault("exp_avg_sq", torch.zeros_like(p))
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                c1, c2 = 1 - b1**self.step, 1 - b2**self.step
                denom = (v.sqrt() / math.sqrt(c2)).add_(1e-8)
                p.sub_((lr_k / c1) * m / denom)

    def member_state(
        self, row: int, model: nn.Module, member: _Member, steps_done: int, steps_per_epoch: int
    ) -> tuple[Any, PolicyScheduler]:
        """Unstack one member into its model and a torch optimizer + scheduler in exactly the
        state the single-member trainer would have (for its checkpoint)."""
        with torch.no_grad():
            for n in self.names:
                model.get_parameter(n).copy_(self.params[n][row])
            for n in self.buffers:
                model.get_buffer(n).copy_(self.buffers[n][row])
        cfg = member.config
        first_lr = member.policy(0.0, cfg.epochs)  # what the single trainer starts from
        opt = create_optimizer(
            model.parameters(),
            cfg.optimizer,
            lr=first_lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
            betas=cfg.betas,
            rho=cfg.rho,
        )
        holder = opt.base_optimizer if isinstance(opt, SAM) else opt  # SAM saves its base's
        params = dict(model.named_parameters())
        for n in self.names:
            entry = {k: v[row].clone() for k, v in self.state[n].items()}
            if self.adamw and entry:
                entry["step"] = torch.tensor(float(self.step))
            if entry:
                holder.state[params[n]] = entry
        sched = PolicyScheduler(opt, member.policy, cfg.epochs, steps_per_epoch)
        # the scheduler as it stands after `steps_done` steps of the single trainer
        lr = member.policy(steps_done / steps_per_epoch, cfg.epochs)
        for g in opt.param_groups:
            g["lr"] = lr
        sched.last_epoch = steps_done
        sched._step_count = steps_done + 1
        sched._last_lr = [lr for _ in opt.param_groups]
        return opt, sched


def _loaders(members: list[_Member], dataset: Dataset, device: torch.device) -> list[BatchLoader]:
    cfg = members[0].config
    augment = None
    if cfg.augment or (cfg.augment is None and dataset.image):
        augment = ImageAugment(crop_padding=cfg.crop_padding, flip=True, cutout=cfg.cutout)
    x, y = dataset.split("train")
    seeds = sorted({m.config.seed for m in members})
    shared = len(seeds) == 1
    return [
        BatchLoader(x, y, cfg.batch_size, shuffle=True, seed=s, device=device, augment=augment)
        for s in (seeds if shared else [m.config.seed for m in members])
    ]


def _train_chunk(
    members: list[_Member],
    dataset: Dataset,
    device: torch.device,
    progress: bool | None,
    description: str,
) -> list[TrainResult]:
    cfg = members[0].config
    epochs = cfg.epochs
    start_epoch = members[0].start_epoch
    loaders = _loaders(members, dataset, device)
    shared = len(loaders) == 1
    steps = len(loaders[0])
    stack = _Stack(members, device)
    base = copy.deepcopy(members[0].model).to("meta")
    active = list(range(len(members)))  # rows of `stack` -> member positions

    def forward(params: dict[str, Any], buffers: dict[str, Any], x: torch.Tensor) -> Any:
        return functional_call(base, (params, buffers), (x,))

    def batched(x: torch.Tensor, per_member_x: bool) -> torch.Tensor:
        fn = vmap(forward, in_dims=(0, 0, 0 if per_member_x else None), randomness="different")
        return fn(stack.params, stack.buffers, x)

    @torch.no_grad()
    def evaluate(x: torch.Tensor) -> torch.Tensor:
        """Logits (K, N, C) of every active member, in eval mode."""
        base.eval()
        step = stacked_batch_size(cfg.eval_batch_size, len(active))
        try:
            return torch.cat(
                [batched(x[i : i + step], False).float() for i in range(0, len(x), step)], dim=1
            )
        finally:
            base.train()

    def gradients(
        x: torch.Tensor, targets: torch.Tensor, per_member_x: bool
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Each active member's mean loss on the batch (targets (K, B)) and its gradients,
        clipped per member when the config asks."""
        logits = batched(x, per_member_x)  # (K, B, C)
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
            grads = _clip(grads, cfg.grad_clip)
        return losses.detach(), grads

    x_val, y_val = dataset.split("val")
    x_val, y_val = x_val.to(device), y_val.to(device)
    elapsed = [m.elapsed for m in members]
    with Bars(progress_enabled(progress)) as bars:
        bar = bars.add(
            f"{description} ×{len(members)}", total=epochs * steps, completed=start_epoch * steps
        )
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for epoch in range(start_epoch, epochs):
                t0 = time.perf_counter()
                torch.manual_seed(epoch_seed(cfg.seed, epoch))
                base.train()
                iters = [ld.epoch(epoch) for ld in loaders]
                loss_sum = torch.zeros(len(active), device=device)
                seen = 0
                for i in range(steps):
                    batches = [next(it) for it in iters]
                    if shared:
                        xb, yb = batches[0]
                        targets = yb.expand(len(active), -1)
                    else:
                        xb = torch.stack([batches[r][0] for r in range(len(active))])
                        targets = torch.stack([batches[r][1] for r in range(len(active))])
                    losses, grads = gradients(xb, targets, not shared)
                    if stack.sam:  # gradients again at each member's perturbed weights
                        moves = stack.ascend(grads)
                        grads = gradients(xb, targets, not shared)[1]
                        stack.descend(moves)
                    step = epoch * steps + i
                    lr = torch.tensor(
                        [members[r].policy(step / steps, epochs) for r in active], device=device
                    )
                    stack.update(grads, lr)
                    loss_sum += losses * targets.shape[1]
                    seen += targets.shape[1]
                    bars.update(bar, advance=1)
                    check = (i + 1) % cfg.divergence_check_every == 0 or i + 1 == steps
                    if check:
                        bad = ~torch.isfinite(loss_sum)
                        if bad.any():
                            for row in torch.nonzero(bad).flatten().tolist():
                                members[active[row]].diverged_at = {"epoch": epoch, "step": step}
                            keep = torch.nonzero(~bad).flatten()
                            stack.keep(keep)
                            loss_sum = loss_sum[keep]
                            active = [active[r] for r in keep.tolist()]
                            if not shared:
                                loaders = [loaders[r] for r in keep.tolist()]
                                iters = [iters[r] for r in keep.tolist()]
                    if not active:
                        break
                if not active:
                    break
                dt = time.perf_counter() - t0
                _end_of_epoch(
                    members,
                    active,
                    stack,
                    loss_sum,
                    seen,
                    epoch,
                    steps,
                    x_val,
                    y_val,
                    cfg,
                    evaluate,
                    elapsed,
                    dt,
                )
    final: dict[str, torch.Tensor] = {}  # logits (active, N, C) of the finished members
    if active:
        for split in ("val", "test"):
            x, y = dataset.split(split)
            if len(y):
                final[split] = evaluate(x.to(device))
    return [
        _finish(m, row_of(active, pos), stack, dataset, elapsed[pos], steps, final, device)
        for pos, m in enumerate(members)
    ]


def row_of(active: list[int], position: int) -> int | None:
    return active.index(position) if position in active else None


def _member_norms(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Each member's 2-norm over all its stacked tensors: (K,)."""
    k = tensors[0].shape[0]
    return torch.stack([t.reshape(k, -1).norm(dim=1) for t in tensors]).norm(dim=0)


def _clip(grads: Sequence[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Per-member gradient clipping: each member's own total norm (torch's clip_grad_norm_)."""
    norms = _member_norms(grads)
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    return [g * scale.view((-1,) + (1,) * (g.ndim - 1)) for g in grads]


def _end_of_epoch(
    members: list[_Member],
    active: list[int],
    stack: _Stack,
    loss_sum: torch.Tensor,
    seen: int,
    epoch: int,
    steps: int,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    cfg: TrainConfig,
    evaluate: Any,
    elapsed: list[float],
    dt: float,
) -> None:
    logits = evaluate(x_val) if len(y_val) else None
    for row, pos in enumerate(active):
        member = members[pos]
        elapsed[pos] += dt / len(active)  # each member's share: the members add up to wall time
        record = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum[row]) / max(seen, 1),
            "lr": member.policy((epoch + 1) * steps / steps, cfg.epochs),  # as the scheduler
        }
        if logits is not None:
            record.update(
                {f"val_{k}": v for k, v in classification_metrics(logits[row], y_val).items()}
            )
        record["seconds"] = elapsed[pos]
        member.history.append(record)
        last = epoch + 1 == cfg.epochs
        if (
            member.out is not None
            and cfg.checkpoint_every
            and not last
            and ((epoch + 1) % cfg.checkpoint_every == 0)
        ):
            opt, sched = stack.member_state(row, member.model, member, (epoch + 1) * steps, steps)
            save_checkpoint(
                member.out,
                member.fingerprint,
                member.model,
                opt,
                sched,
                [],
                member.history,
                epoch,
                elapsed[pos],
            )


def _finish(
    member: _Member,
    row: int | None,
    stack: _Stack,
    dataset: Dataset,
    elapsed: float,
    steps: int,
    final: dict[str, torch.Tensor],
    device: torch.device,
) -> TrainResult:
    """Unstack a member into its model, take its final metrics, and write its outputs."""
    cfg = member.config
    if row is None:
        result = TrainResult(
            "diverged",
            member.history,
            {},
            elapsed,
            len(member.history),
            member.out,
            member.diverged_at,
        )
    else:
        stack.member_state(row, member.model, member, cfg.epochs * steps, steps)
        metrics = {
            split: classification_metrics(logits[row], dataset.split(split)[1])
            for split, logits in final.items()
        }
        result = TrainResult(
            "complete", member.history, metrics, elapsed, len(member.history), member.out
        )
    result.record = member_record(
        member.setup, member.fingerprint, cfg, result, member.start_epoch, device
    )
    if member.out is not None:
        write_member(member.out, member.model, result)
    return result


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
    _check_same_architecture(models)
    device = resolve_device(device or "auto") if isinstance(device, (str, type(None))) else device
    was = [m.training for m in models]
    for m in models:
        m.eval()
    params, buffers = stack_module_state([m.to(device) for m in models])
    base = copy.deepcopy(models[0]).to("meta").eval()

    def forward(p: dict[str, Any], b: dict[str, Any], xb: torch.Tensor) -> Any:
        return functional_call(base, (p, b), (xb,))

    fn = vmap(forward, in_dims=(0, 0, None))
    step = stacked_batch_size(batch_size, len(models))
    try:
        out = [
            torch.softmax(fn(params, buffers, x[i : i + step].to(device)).float(), -1)
            for i in range(0, len(x), step)
        ]
    finally:
        for m, w in zip(models, was, strict=True):
            m.train(w)
    return torch.cat(out, dim=1).cpu()
