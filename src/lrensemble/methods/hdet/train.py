"""HDET's training loop, the same for ranks under torchrun (one replica per process, DDP
averaging the gradients) and for replicas simulated in one process (`SimulatedHDET`).

Every replica trains on its own share of each epoch (`ShardedBatches`) under its
`HDETScheduler`. After every epoch each replica saves its own state (the replicas differ between
syncs) and rank 0 then records the epoch as the one to resume from. At the end rank 0 writes the
averaged weights and `result.json`, the marker of a finished job; with `replica_members` every
replica also writes its weights as they were just before the last sync.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from lrensemble.atomic import write_json
from lrensemble.data.augment import ImageAugment
from lrensemble.data.base import Dataset
from lrensemble.errors import CheckpointError
from lrensemble.methods.hdet.config import HdetConfig
from lrensemble.methods.hdet.scheduler import HDETScheduler
from lrensemble.methods.hdet.shard import ShardedBatches
from lrensemble.methods.hdet.warm_init import warm_noisy_init
from lrensemble.train.checkpoint import load_state, load_state_into, save_state, save_weights
from lrensemble.train.optim import create_optimizer
from lrensemble.train.pretrained import load_pretrained
from lrensemble.train.trainer import build_model, epoch_seed

RESULT = "result.json"
CONFIG = "config.json"
AVERAGED = "averaged.safetensors"
CHECKPOINTS = "checkpoints"
LATEST = "latest.json"


def run_fingerprint(config: HdetConfig, replicas: int, data_checksum: str | None) -> str:
    """The run's identity: the config without the device, the replicas, the data's checksum
    and the init checkpoint's contents."""
    payload = config.model_dump(mode="json")
    payload["train"].pop("device", None)
    payload["replicas"] = replicas
    payload["data_sha256"] = data_checksum
    if config.hdet.init is not None:
        payload["init_sha256"] = hashlib.sha256(Path(config.hdet.init).read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def replica_file(rank: int) -> str:
    return f"replica-{rank}.safetensors"


@dataclass
class Replica:
    """One replica: `net` the model itself, `model` what is called (`net`, or DDP around it)."""

    rank: int
    net: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    batches: ShardedBatches
    scheduler: HDETScheduler | None = None
    pre_sync: dict[str, torch.Tensor] | None = None


class Communicator(Protocol):
    """How replicas meet: over a process group, or in this process."""

    replicas: int
    lead: bool  # this process writes the run's shared files (rank 0)

    def average_gradients(self) -> None: ...
    def step(self, losses: Sequence[torch.Tensor]) -> None: ...
    def all_sum(self, t: torch.Tensor) -> torch.Tensor: ...
    def barrier(self) -> None: ...


@dataclass
class TrainOutcome:
    status: str
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def scheduler_options(config: HdetConfig) -> dict[str, Any]:
    """Every `HDETScheduler` argument the config sets, but the optimizer, the steps and the
    replicas."""
    h = config.hdet
    return {
        "pct_start": h.pct_start,
        "div_factor": h.div_factor,
        "final_div_factor": h.final_div_factor,
        "spread": h.spread,
        "sync_every": h.sync_every,
        "warmup_steps": h.warmup_steps,
        "auto_lr": h.auto_lr,
        "beta": h.beta,
        "lam": h.lam,
        "sigma": h.sigma,
        "seed": h.seed,
        "hyperparameters": config.hyperparameters(),
    }


def build_net(config: HdetConfig, dataset: Dataset) -> nn.Module:
    """The model every replica starts from: built from `[train] seed`, or the `init`
    checkpoint (its head kept when it fits)."""
    net = build_model(config.model["name"], dataset, config.train.seed, **config.params("model"))
    if config.hdet.init is not None:
        load_pretrained(net, config.hdet.init, keep_head=True)
    return net


def build_replica(
    config: HdetConfig,
    dataset: Dataset,
    rank: int,
    replicas: int,
    device: torch.device,
    wrap: Callable[[nn.Module], nn.Module] = lambda m: m,
) -> Replica:
    """Replica `rank`: the shared start (wrapped, e.g. in DDP, which broadcasts rank 0's
    weights), then its own noise when `warm_init` is on, its optimizer and its batches."""
    train = config.train
    net = build_net(config, dataset).to(device)
    model = wrap(net)
    if config.hdet.warm_init:
        warm_noisy_init(net, rank=rank, seed=config.hdet.seed, nu=config.hdet.nu)
    optimizer = create_optimizer(
        net.parameters(),
        train.optimizer,
        lr=config.hdet.max_lr,
        momentum=train.momentum,
        nesterov=train.nesterov,
        weight_decay=train.weight_decay,
        betas=train.betas,
    )
    augment = None
    if train.augment or (train.augment is None and dataset.image):
        augment = ImageAugment(crop_padding=train.crop_padding, flip=True, cutout=train.cutout)
    x, y = dataset.split("train")
    batches = ShardedBatches(
        x, y, train.batch_size, rank=rank, replicas=replicas, seed=train.seed, device=device,
        augment=augment,
    )  # fmt: skip
    return Replica(rank, net, model, optimizer, batches)


def _latest(out: Path, fingerprint: str, replicas: int) -> int | None:
    """The epoch to resume after (0-based), or None to start afresh."""
    try:
        latest = json.loads((out / CHECKPOINTS / LATEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if latest.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{out / CHECKPOINTS} holds another HDET run's checkpoints; use another --out."
        )
    if latest.get("replicas") != replicas:
        raise CheckpointError(
            f"{out / CHECKPOINTS} was made by {latest.get('replicas')} replicas, not {replicas}: "
            f"resume with --nproc {latest.get('replicas')}, or use another --out."
        )
    return int(latest["epoch"])


def _checkpoint_path(out: Path, epoch: int, rank: int) -> Path:
    return out / CHECKPOINTS / f"e{epoch}-rank{rank}.safetensors"


def _resume(replica: Replica, out: Path, epoch: int) -> tuple[list[dict[str, float]], float]:
    path = _checkpoint_path(out, epoch, replica.rank)
    state = load_state(path, next(replica.net.parameters()).device)
    load_state_into(replica.net, state["model"], str(path))
    replica.optimizer.load_state_dict(state["optimizer"])
    assert replica.scheduler is not None
    replica.scheduler.load_state_dict(state["scheduler"])
    return state["history"], float(state["seconds"])


def _save_epoch(
    replicas: Sequence[Replica],
    comm: Communicator,
    out: Path,
    fingerprint: str,
    epoch: int,
    history: list[dict[str, float]],
    seconds: float,
) -> None:
    """Every replica's state after `epoch`; then rank 0 points `latest.json` at it and drops
    the older files, so a crash at any moment leaves one complete epoch to resume from."""
    for r in replicas:
        assert r.scheduler is not None
        state = {
            "model": r.net.state_dict(),
            "optimizer": r.optimizer.state_dict(),
            "scheduler": r.scheduler.state_dict(),
            "history": history,
            "seconds": seconds,
        }
        save_state(_checkpoint_path(out, epoch, r.rank), state)
    comm.barrier()
    if comm.lead:
        marker = {"fingerprint": fingerprint, "replicas": comm.replicas, "epoch": epoch}
        write_json(out / CHECKPOINTS / LATEST, marker)
        for old in (out / CHECKPOINTS).glob("e*-rank*.safetensors"):
            if not old.name.startswith(f"e{epoch}-"):
                old.unlink(missing_ok=True)


def train_replicas(
    config: HdetConfig,
    replicas: Sequence[Replica],
    comm: Communicator,
    out: Path,
    fingerprint: str,
    log: Callable[[str], None] = lambda _: None,
) -> TrainOutcome:
    """Train the local `replicas` (schedulers attached) for `[train] epochs`, resuming from
    `out`'s last complete epoch; write the outputs described in the module docstring."""
    epochs, steps = config.train.epochs, len(replicas[0].batches)
    total = epochs * steps
    (out / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    start, elapsed = 0, 0.0
    done = _latest(out, fingerprint, comm.replicas)
    if done is not None:
        for r in replicas:
            history, elapsed = _resume(r, out, done)
        start = done + 1
        log(f"resuming after epoch {start}/{epochs}")
    status = "complete"
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        torch.manual_seed(epoch_seed(config.train.seed, epoch) + replicas[0].rank)  # dropout
        for r in replicas:
            r.model.train()
        device = next(replicas[0].net.parameters()).device
        sums = torch.zeros(2, dtype=torch.float64, device=device)
        streams = [r.batches.epoch(epoch) for r in replicas]
        for i in range(steps):
            x = [next(s) for s in streams]
            losses = [_forward_backward(r, b, config) for r, b in zip(replicas, x, strict=True)]
            comm.average_gradients()
            for r, loss, (_, yb) in zip(replicas, losses, x, strict=True):
                count = len(yb)
                if config.train.grad_clip is not None:
                    nn.utils.clip_grad_norm_(r.net.parameters(), config.train.grad_clip)
                r.optimizer.step()
                sums[0] += loss.double() * count
                sums[1] += count
                if epoch * steps + i == total - 1 and config.hdet.replica_members:
                    r.pre_sync = {
                        k: v.detach().cpu().clone() for k, v in r.net.state_dict().items()
                    }
            comm.step(losses)
        sums = comm.all_sum(sums)
        train_loss = float(sums[0] / sums[1])
        elapsed += time.perf_counter() - t0
        assert replicas[0].scheduler is not None
        base = replicas[0].scheduler.base_lr()[0]
        history.append(
            {"epoch": epoch + 1, "train_loss": train_loss, "lr": base, "seconds": elapsed}
        )
        log(f"epoch {epoch + 1}/{epochs}: train loss {train_loss:.4f}, base LR {base:.3g}")
        if not torch.isfinite(sums[0]):
            status = "diverged"
            break
        every = config.train.checkpoint_every
        if epoch + 1 < epochs and every and (epoch + 1) % every == 0:
            _save_epoch(replicas, comm, out, fingerprint, epoch, history, elapsed)
    if status == "complete" and config.hdet.replica_members:
        for r in replicas:
            assert r.pre_sync is not None
            save_weights(_StateOnly(r.pre_sync), out / replica_file(r.rank))
    comm.barrier()
    if comm.lead:
        if status == "complete":
            save_weights(replicas[0].net, out / AVERAGED)
        sched = replicas[0].scheduler
        write_json(
            out / RESULT,
            {
                "fingerprint": fingerprint,
                "status": status,
                "replicas": comm.replicas,
                "epochs_completed": len(history),
                "history": history,
                "seconds": elapsed,
                "base_lr": sched.base_lr() if sched is not None else None,
                "replica_members": status == "complete" and config.hdet.replica_members,
            },
        )
    return TrainOutcome(status, history, elapsed)


def _forward_backward(
    replica: Replica, batch: tuple[torch.Tensor, torch.Tensor], config: HdetConfig
) -> torch.Tensor:
    """Replica's loss on its batch, backward done (DDP all-reduces the gradient here)."""
    assert replica.scheduler is not None
    x, y = batch
    smoothing = config.train.label_smoothing
    if config.hdet.spread_hyperparameters.label_smoothing is not None:
        smoothing = replica.scheduler.value("label_smoothing")
    replica.optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(replica.model(x), y, label_smoothing=smoothing)
    loss.backward()
    return loss.detach()


class _StateOnly(nn.Module):
    """A state dict presented as a module, for `save_weights`."""

    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._state = state

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return self._state
