"""Snapshot ensembles from one pre-trained checkpoint (the StarSSE thesis, seed 002): SSE (a
chain of cosine cycles), StarSSE (every cycle from model 1), Local DE (independent fine-tunes)
and Global DE (fine-tunes of several checkpoints), with their variants.

Every member trains with the trainer (`train_member`, its epoch checkpoints and hooks) into
`DIR/runs/<id>` and is filed with `file_members` into the pool, so a killed run resumes from
the last finished member or epoch, never duplicating one, and the pool can mix these members
with a sweep's.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from lrensemble.data.base import Dataset
from lrensemble.data.registry import load_dataset
from lrensemble.device import resolve_device
from lrensemble.filing import NewMember, file_members
from lrensemble.methods.run_dir import MethodResult, MethodRun, open_run, run_fingerprint
from lrensemble.methods.snapshot.config import SnapshotConfig
from lrensemble.methods.snapshot.hooks import (
    FeatureDistance,
    FreezeBlocks,
    PredictionDiversity,
    WeightOrthogonality,
)
from lrensemble.models.fit_check import check_model_fits
from lrensemble.pool import Pool
from lrensemble.schedules import create
from lrensemble.train.checkpoint import load_weights
from lrensemble.train.hooks import TrainHook
from lrensemble.train.pretrained import load_pretrained
from lrensemble.train.trainer import WEIGHTS, train_member

MARKER = "snapshot.json"


@dataclass
class PlannedMember:
    """One member of the run: its id, where it starts, how long and how fast it trains."""

    id: str
    index: int  # 1-based: cycle i of SSE/StarSSE, fine-tune i of Local/Global DE
    start: str  # "checkpoint" or the id of the member whose weights it starts from
    checkpoint: str | None
    epochs: int
    lr: float
    seed: int
    cycle: bool  # a cycle 2+ of SSE/StarSSE (variants and freezing apply)


SnapshotResult = MethodResult  # what a run made


def fingerprint(config: SnapshotConfig, data_checksum: str | None = None) -> str:
    """The run's identity: its config and data, and the checkpoints' contents (a checkpoint
    replaced at the same path is another run)."""
    return run_fingerprint(config, data_checksum, config.snapshot.checkpoints)


def method_name(config: SnapshotConfig) -> str:
    """The members' `method` in the pool and the start of their ids: the method and the
    variant, e.g. `starsse` or `sse-mse`, so the report tells variants apart."""
    spec = config.snapshot
    return spec.method if spec.variant == "none" else f"{spec.method}-{spec.variant}"


def plan(config: SnapshotConfig, tag: str) -> list[PlannedMember]:
    """The members in training order. Ids name the method, the variant and the member's
    number, and end with `tag` (part of the run's fingerprint) so that two runs filing into
    one pool never collide."""
    spec = config.snapshot
    name = method_name(config)
    seed, phase = config.train.seed, config.phase_epochs()
    members = []
    for i in range(1, spec.member_count() + 1):
        member_id = f"{name}-{i}-{tag}"
        if spec.method in ("local_de", "global_de") or i == 1:
            checkpoint = spec.checkpoints[i - 1 if spec.method == "global_de" else 0]
            local = spec.method == "local_de"
            members.append(
                PlannedMember(
                    member_id, i, "checkpoint", checkpoint, phase, spec.lr,
                    seed + (i - 1 if local else 0), cycle=False,
                )
            )  # fmt: skip
            continue
        start = members[i - 2].id if spec.method == "sse" else members[0].id
        members.append(
            PlannedMember(
                member_id, i, start, None, config.cycle_epochs(), config.cycle_lr(),
                seed + i - 1, cycle=True,
            )
        )  # fmt: skip
    return members


class SnapshotRun(MethodRun[SnapshotConfig]):
    """One snapshot run into `out_dir` (its pool: `pool_dir`, default `out_dir/pool`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = self.config.snapshot

    # --- set-up ----------------------------------------------------------------------------------

    def _check(self, dataset: Dataset) -> None:
        """Before anything is written: the model takes the data, and every checkpoint fits it
        (one sentence each otherwise)."""
        probe = self._model(dataset, self.config.train.seed)
        check_model_fits(
            probe, dataset.input_shape, dataset.num_classes, f"Model {self.config.model['name']!r}"
        )
        for checkpoint in self.spec.checkpoints:
            load_pretrained(probe, checkpoint, keep_head=False)
        if self.spec.freeze:
            FreezeBlocks(self.spec.freeze).check(probe)

    def _prepare(self) -> tuple[Dataset, Pool, str]:
        cfg = self.config
        dataset = load_dataset(cfg.data["name"], **cfg.params("data"))
        self._check(dataset)
        fp = fingerprint(cfg, dataset.info.get("sha256"))
        pool = open_run(self.out, MARKER, fp, cfg, self.pool_dir, dataset, "a snapshot run")
        return dataset, pool, fp[:6]

    # --- members ---------------------------------------------------------------------------------

    def _start_model(self, member: PlannedMember, dataset: Dataset, pool: Pool) -> nn.Module:
        """The member's starting weights: the checkpoint with a fresh head (seeded by the
        member's seed), or a finished member's exact weights and buffers."""
        model = self._model(dataset, member.seed)
        if member.start == "checkpoint":
            load_pretrained(model, member.checkpoint, keep_head=False)  # type: ignore[arg-type]
        else:
            load_weights(model, pool.member_file(member.start, WEIGHTS))
        return model

    def _finished(self, member_id: str, dataset: Dataset, pool: Pool) -> nn.Module:
        model = self._model(dataset, self.config.train.seed)
        return load_weights(model, pool.member_file(member_id, WEIGHTS))

    def _hooks(
        self, member: PlannedMember, done: list[PlannedMember], dataset: Dataset, pool: Pool
    ) -> list[TrainHook]:
        """Cycle 2+'s variant and freezing (none for phase I and the deep ensembles)."""
        if not member.cycle:
            return []
        hooks: list[TrainHook] = []
        if self.spec.freeze:
            hooks.append(FreezeBlocks(self.spec.freeze))
        alpha, variant = self.spec.weight(), self.spec.variant
        if variant == "mse":
            hooks.append(FeatureDistance(self._finished(done[0].id, dataset, pool), alpha))
        elif variant in ("wo", "ce1", "ce2"):
            # the earlier star members, model 1 excluded: {2, ..., i - 1}
            others = [self._finished(m.id, dataset, pool) for m in done[1:]]
            seed = self.config.train.seed * 1000 + member.index
            if variant == "wo":
                hooks.append(WeightOrthogonality(others, alpha, seed))
            else:
                hooks.append(PredictionDiversity(others, alpha, seed, version=int(variant[-1])))
        return hooks

    def _record(self, member: PlannedMember, result_record: dict[str, Any]) -> dict[str, Any]:
        return {
            **result_record,
            "snapshot": {
                "method": self.spec.method,
                "variant": self.spec.variant,
                "alpha": self.spec.weight() if member.cycle else None,
                "freeze": self.spec.freeze if member.cycle else 0,
                "cycle": member.index,
                "checkpoint": member.checkpoint,
                "lr": member.lr,
            },
        }

    def run(self) -> SnapshotResult:
        start = time.perf_counter()
        dataset, pool, tag = self._prepare()
        result = SnapshotResult(self.out, self.pool_dir)
        members = plan(self.config, tag)
        done: list[PlannedMember] = []
        cfg = self.config
        for member in members:
            if member.start != "checkpoint" and member.start in result.diverged:
                self.log(f"{member.id}: skipped, its start {member.start} diverged")
                result.diverged.append(member.id)
                continue
            if pool.member_dir(member.id).exists():
                self.log(f"{member.id}: already in the pool")
                result.members.append(member.id)
                done.append(member)
                continue
            model = self._start_model(member, dataset, pool)
            hooks = self._hooks(member, done, dataset, pool)
            train_cfg = cfg.train.model_copy(update={"epochs": member.epochs, "seed": member.seed})
            run_dir = self.out / "runs" / member.id
            trained = train_member(
                model,
                dataset,
                create("cosine", max_lr=member.lr),
                train_cfg,
                out_dir=run_dir,
                hooks=hooks,
                model_spec=cfg.model,
                progress=self.progress,
                description=member.id,
            )
            if trained.status == "diverged":
                self.log(f"{member.id}: diverged (lr {member.lr:g}); kept out of the pool")
                result.diverged.append(member.id)
                shutil.rmtree(run_dir, ignore_errors=True)
                continue
            parent = member.checkpoint if member.start == "checkpoint" else member.start
            file_members(
                pool,
                [
                    NewMember(
                        member.id,
                        model,
                        self._record(member, trained.record),
                        method=method_name(cfg),
                        parent=parent,
                        weights=run_dir / WEIGHTS,
                    )
                ],
                dataset,
                eval_batch_size=cfg.train.eval_batch_size,
                device=resolve_device(cfg.train.device),
            )
            shutil.rmtree(run_dir, ignore_errors=True)
            val, test = trained.metrics["val"]["accuracy"], trained.metrics["test"]["accuracy"]
            self.log(
                f"{member.id}: val acc {val:.4f}  test acc {test:.4f} ({trained.seconds:.1f} s)"
            )
            result.members.append(member.id)
            result.trained.append(member.id)
            done.append(member)
        result.seconds = time.perf_counter() - start
        return result


def run_snapshot(
    config: SnapshotConfig,
    out_dir: str | os.PathLike[str],
    *,
    pool_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
) -> SnapshotResult:
    """Run (or resume) the snapshot method of `config` into `out_dir`."""
    return SnapshotRun(config, out_dir, pool_dir, log=log, progress=progress).run()
