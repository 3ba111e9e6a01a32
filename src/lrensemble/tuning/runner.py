"""The sweep runner: every trial trains one member, and every finished member joins the pool.

Any number of workers (processes, machines sharing the output directory) can run the same sweep;
killing one at any moment and starting it again continues the sweep: finished trials are not
retrained, the interrupted one resumes from its member's last checkpoint, and the pool only
ever gains whole members.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import optuna
from optuna.trial import TrialState

from lrensemble.atomic import file_in_the_way, write_json
from lrensemble.data.base import Dataset
from lrensemble.data.registry import load_dataset
from lrensemble.device import resolve_device
from lrensemble.ensemble.choice import plural
from lrensemble.errors import ConfigError, DataError, LREnsembleError
from lrensemble.filing import NewMember, file_members
from lrensemble.models.fit_check import check_model_fits
from lrensemble.pool import Pool
from lrensemble.progress import Bars, progress_enabled
from lrensemble.schedules.base import Policy
from lrensemble.train.batch_plan import batch_blocker, default_chunk_size
from lrensemble.train.batched import train_members
from lrensemble.train.checkpoint import resume_epoch
from lrensemble.train.trainer import CHECKPOINT, WEIGHTS, build_model, train_member
from lrensemble.tuning.config import TuneConfig, default_storage
from lrensemble.tuning.space import (
    GRID_PARAM,
    grid_points,
    point_key,
    space_choices,
    suggest_policy,
)
from lrensemble.tuning.study import (
    Heartbeat,
    claim_lock,
    count,
    mark_worker,
    mask_url,
    open_storage,
    requeue,
    resolve_storage_url,
    retry_stale,
    with_retry,
    worker_alive,
    worker_id,
)

T = TypeVar("T")
POLL_SECONDS = 2.0
STAGING_GRACE_SECONDS = 600.0  # a live writer's staging directory is never this old


@dataclass
class SweepResult:
    """What a worker saw: the trials it finished and the state of the whole sweep at its end."""

    out_dir: Path
    study_name: str
    storage: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    elsewhere: dict[str, int] = field(default_factory=dict)  # "host:pool" -> members there
    seconds: float = 0.0

    def elsewhere_line(self) -> str | None:
        """One sentence on the members of this sweep that other workers' pools hold."""
        if not self.elsewhere:
            return None
        places = ", ".join(f"{n} in {where}" for where, n in sorted(self.elsewhere.items()))
        return (
            f"{plural(sum(self.elsewhere.values()), 'more member')} of this sweep live in other "
            f"pools ({places}); combine them with lrens pool merge"
        )


def _fingerprint(config: TuneConfig, data_checksum: str | None = None) -> str:
    """The sweep's identity: its config (not the device, nor how a report chooses teams) and
    the checksum of a user's data files, so that a file changed in place is a new sweep rather
    than the old members reused."""
    payload = config.model_dump(mode="json")
    payload["train"].pop("device", None)
    # where trials are recorded and how workers share them change no member: the study's
    # name, not its URL, identifies it (another host name for one database is the same sweep)
    for key in (
        "storage",
        "batch_members",
        "workers",
        "heartbeat_seconds",
        "grace_seconds",
        "outage_seconds",
    ):
        payload["study"].pop(key, None)
    if data_checksum is not None:
        payload["data_sha256"] = data_checksum
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _read_marker(path: Path) -> dict[str, Any]:
    """tune.json, the sweep's marker: an object, or one sentence saying it is damaged."""
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is unreadable or truncated ({exc}).") from None
    if not isinstance(marker, dict) or not isinstance(marker.get("fingerprint"), str):
        raise DataError(
            f"{path} is not a sweep's marker (an object with a 'fingerprint'); restore it or "
            "use another --out."
        )
    return marker


def _check_members(pool: Pool) -> None:
    """Check every member's cached predictions (header, shape and file size, mapped rather
    than read), so that a damaged member (a truncated file) is named before the sweep reports
    itself done with it."""
    for member in pool.member_ids():
        for split in pool.splits:
            expected = (pool.info["splits"][split], pool.num_classes)
            try:
                path = pool.member_file(member, f"{split}.npy")
                array = np.load(path, mmap_mode="r", allow_pickle=False)
                problem = None if array.shape == expected else f"shape {array.shape}"
            except (LREnsembleError, OSError, ValueError, EOFError) as exc:
                problem = str(exc)
            if problem:
                raise DataError(
                    f"Member {member} of {pool.root} is damaged ({split}.npy: {problem}); "
                    f"remove {pool.member_dir(member)} and rerun to train it again."
                )


def _event(out: Path, **fields: Any) -> None:
    """Append one JSON line to events.jsonl (a single short write: whole lines, any worker)."""
    line = json.dumps({"time": round(time.time(), 3), "pid": os.getpid(), **fields}) + "\n"
    fd = os.open(out / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _sampler(config: TuneConfig, salt: int) -> optuna.samplers.BaseSampler:
    """Optuna's sampler for random or TPE search, seeded from the sweep seed and `salt`, the
    drawing trial's number (workers sharing a study must not draw the same values).

    Grid search needs no sampler: its points are Optuna's queued trials (`enqueue_trial`),
    which workers claim atomically. Optuna's GridSampler is not used: its documentation warns
    that concurrent workers can evaluate the same point twice, and it mishandles queued points.
    """
    seed = (config.study.seed * 1_000_003 + salt) % (2**31)
    if config.search.method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


class Sweep:
    """One worker's view of a sweep in `out_dir`."""

    def __init__(
        self,
        config: TuneConfig,
        out_dir: str | os.PathLike[str],
        log: Callable[[str], None] = print,
        progress: bool | None = None,
    ) -> None:
        self.config = config
        self.out = Path(out_dir)
        self.log = log
        self.progress = progress_enabled(progress)
        self.points: dict[str, Policy] = (
            grid_points(config.search) if config.search.method == "grid" else {}
        )
        self.choices = space_choices(config.search) if config.search.method != "grid" else None
        self.storage_url = resolve_storage_url(config.study.storage, default_storage(self.out))
        self.outage = config.study.outage_seconds
        self._storage: optuna.storages.BaseStorage | None = None
        self.name = config.study_name()

    # --- set-up ----------------------------------------------------------------------------------

    def _config_record(self) -> dict[str, Any]:
        """The resolved config for tune.json, its storage URL without a password."""
        record = self.config.model_dump(mode="json")
        if record["study"].get("storage"):
            record["study"]["storage"] = mask_url(record["study"]["storage"])
        return record

    def _load_and_check(self) -> Dataset:
        """Load the data and check that the model takes it, before anything is written: a
        mistake in either leaves --out as it was."""
        dataset = load_dataset(self.config.data["name"], **self.config.params("data"))
        cfg = self.config
        probe = build_model(cfg.model["name"], dataset, cfg.train.seed, **cfg.params("model"))
        check_model_fits(
            probe, dataset.input_shape, dataset.num_classes, f"Model {cfg.model['name']!r}"
        )
        return dataset

    def _trained_nothing(self) -> bool:
        """Whether the sweep in --out has neither a member nor a member's checkpoint (a trial
        that started and died before its first epoch counts as nothing), so nothing would be
        lost by starting over with another config."""
        members = self.out / "pool" / "members"
        if members.is_dir() and any(not d.name.startswith(".") for d in members.iterdir()):
            return False
        return not any((self.out / "runs").glob(f"*/{CHECKPOINT}"))

    def _start_over(self, previous: dict[str, Any]) -> None:
        """Remove what a sweep that trained nothing left in --out (its marker, empty pool and
        default study database), so that a corrected config can use the same --out."""
        default = default_storage(self.out)
        for name in ("pool", "runs"):
            shutil.rmtree(self.out / name, ignore_errors=True)
        if previous.get("storage") == default:
            for suffix in ("", "-journal", "-wal", "-shm"):
                (self.out / f"study.db{suffix}").unlink(missing_ok=True)
        (self.out / "events.jsonl").unlink(missing_ok=True)
        (self.out / "tune.json").unlink(missing_ok=True)
        self.log(f"{self.out} held a sweep that trained nothing; starting over with this config")

    def _prepare(self) -> tuple[Dataset, Pool, optuna.Study]:
        dataset = self._load_and_check()
        if self.storage_url != default_storage(self.out):  # a bad URL or password: nothing written
            self._storage = open_storage(self.storage_url, wait=self.outage, log=self.log)
        blocking = file_in_the_way(self.out)
        if blocking is not None:
            raise ConfigError(f"--out {self.out}: {blocking} is a file, not a directory.")
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the output directory {self.out} ({exc.strerror})."
            ) from None
        fingerprint = _fingerprint(self.config, dataset.info.get("sha256"))
        with claim_lock(self.out):
            marker = self.out / "tune.json"
            if marker.exists():
                previous = _read_marker(marker)
                if previous.get("fingerprint") != fingerprint:
                    if not self._trained_nothing():
                        raise ConfigError(
                            f"{self.out} holds a sweep with a different config or data; use "
                            "another --out, or the same config and data."
                        )
                    self._start_over(previous)
            if not marker.exists():
                write_json(
                    marker,
                    {
                        "fingerprint": fingerprint,
                        "study": self.name,
                        "storage": mask_url(self.storage_url),
                        "config": self._config_record(),
                    },
                )
        pool = Pool.create(
            self.out / "pool",
            {"val": dataset.y_val.numpy(), "test": dataset.y_test.numpy()},
            dataset.num_classes,
            dataset.describe(),
        )
        pool.remove_stale_staging(older_than=STAGING_GRACE_SECONDS)
        _check_members(pool)
        storage = self._storage or open_storage(self.storage_url, wait=self.outage, log=self.log)
        study = self._retry(lambda: self._open_study(storage, fingerprint))
        return dataset, pool, study

    def _open_study(self, storage: optuna.storages.BaseStorage, fingerprint: str) -> optuna.Study:
        """The sweep's study, checked against this config and marked with it; its grid queued
        if this worker created it. Every step may be repeated after an outage."""
        study, created = self._create_or_load(storage)
        attrs = {
            "dataset": self.config.data["name"],
            "model": self.config.model["name"],
            "task": self.config.study.task,
            "fingerprint": fingerprint,
        }
        old = study.user_attrs.get("fingerprint")
        if old is not None and old != fingerprint:
            raise ConfigError(
                f"Study {self.name!r} in {mask_url(self.storage_url)} was made by another "
                "config; give [study] a different name."
            )
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        # the grid is queued once per study, by the worker that created it (creating a study
        # is atomic in every storage); later, points whose trials failed are queued again
        # when a worker finds nothing left to claim
        if self.points and (created or study.user_attrs.get("grid_queuer") == worker_id()):
            study.set_user_attr("grid_queuer", worker_id())  # others wait while it lives
            self._queue_missing_points(study)
            study.set_user_attr("grid_queued", True)
        return study

    def _retry(self, fn: Callable[[], T]) -> T:
        """`fn()`, waited out through a storage outage of up to `[study] outage_seconds`."""
        return with_retry(fn, self.storage_url, self.outage)

    def _create_or_load(self, storage: optuna.storages.BaseStorage) -> tuple[optuna.Study, bool]:
        """The sweep's study, and whether this worker created it (exactly one worker does)."""
        sampler = _sampler(self.config, 0)
        try:
            study = optuna.create_study(
                storage=storage, study_name=self.name, direction="maximize", sampler=sampler
            )
            return study, True
        except optuna.exceptions.DuplicatedStudyError:
            return optuna.load_study(study_name=self.name, storage=storage, sampler=sampler), False

    def _queue_missing_points(self, study: optuna.Study) -> int:
        """Queue every grid point that no trial covers: neither finished (complete or
        diverged), queued nor running. On a first run that is all of them; on a rerun, the
        points whose trials failed (an error, Ctrl-C) are trained again. Two workers doing this
        at once may queue a point twice; `_taken` lets one of its trials train it."""
        covered = {
            t.user_attrs.get("point") or t.params.get(GRID_PARAM)  # queued: no params yet
            for t in study.get_trials(
                deepcopy=False,
                states=(
                    TrialState.COMPLETE,
                    TrialState.PRUNED,
                    TrialState.WAITING,
                    TrialState.RUNNING,
                ),
            )
        }
        for key in self.points:
            if key not in covered:
                study.enqueue_trial({GRID_PARAM: key}, user_attrs={"point": key})
        return sum(key not in covered for key in self.points)

    # --- claiming --------------------------------------------------------------------------------

    def _claim(
        self,
        study: optuna.Study,
        limit: int,
        claimed: list[tuple[optuna.Trial, str, Policy]] | None = None,
    ) -> list[tuple[optuna.Trial, str, Policy]]:
        """Retry stale trials, then ask for up to `limit` trials, each only if one is due (a
        queued trial, or room left in a random/TPE budget), and draw each one's point at once
        (claim, draw and record happen together: a retried trial keeps its point, and no
        worker can see a claimed trial without it). Every step is atomic in the storage or
        checked after it by a rule all workers share (`_taken`, `_over_budget`), so workers
        need share nothing else. Claims go into `claimed`, so a call retried after a storage
        outage goes on from what it already holds (a trial cut off mid-claim is stale after
        the grace period and queued again)."""
        claimed = [] if claimed is None else claimed
        for number in retry_stale(study, self.config.study.grace_seconds):
            self.log(f"trial {number} was interrupted (its worker is gone); queued again")
        while len(claimed) < limit:
            if count(study, TrialState.WAITING) == 0:
                if self.config.search.method == "grid":
                    break
                used = count(study, TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
                if used >= (self.config.search.trials or 0):
                    break
            trial = study.ask()
            mark_worker(trial)
            if self.config.search.method != "grid":
                # a seed of its own for every draw: the trial's number, unique in the study
                # (a count of trials, which two workers asking at once share, drew one point
                # twice); Optuna's trial draws from the study's sampler when it suggests
                study.sampler = _sampler(self.config, trial.number)
            if self.points and "point" not in trial.user_attrs:
                # another worker took the last queued point between the count and the ask,
                # so Optuna made a new trial: a grid has nothing for it
                trial.set_user_attr("nothing_queued", True)
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                break
            if not self.points and self._over_budget(study, trial.number):
                trial.set_user_attr("over_budget", True)  # others took the budget meanwhile
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                break
            key, policy = self._policy(trial)
            trial.set_user_attr("point", key)
            winner = self._taken(study, trial.number, key) if self.points else None
            if winner is not None:  # another trial has this grid point: it trains it
                trial.set_user_attr("duplicate_of", winner)
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                continue
            claimed.append((trial, key, policy))
        return claimed

    def _over_budget(self, study: optuna.Study, number: int) -> bool:
        """Whether random/TPE trial `number` falls outside the budget: as many trials that
        have not failed have lower numbers. Failing is final, so every worker applying this
        rule leaves at most `trials` trials that did not fail (fewer, when some fail later:
        the budget refills and the loop asks again)."""
        lower = sum(
            t.number < number and t.state != TrialState.FAIL
            for t in study.get_trials(deepcopy=False)
        )
        return lower >= (self.config.search.trials or 0)

    @staticmethod
    def _taken(study: optuna.Study, number: int, key: str) -> int | None:
        """The trial that holds grid point `key` instead of trial `number`, if any: one that
        finished with it, or an active one with a lower number. Workers that do not share a
        lock (other --out directories on one database) may both queue a point; this rule,
        the same in every worker, lets exactly one of its trials train it."""
        for t in study.get_trials(deepcopy=False):
            if t.number == number or t.user_attrs.get("point") != key:
                continue
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
                return t.number
            if t.state in (TrialState.RUNNING, TrialState.WAITING) and t.number < number:
                return t.number
        return None

    def _batch_limit(self, dataset: Dataset) -> int:
        """How many trials to claim and train together: `batch_members`, bounded by memory,
        and 1 when the model cannot be trained batched."""
        cfg = self.config
        if cfg.study.batch_members == 1:
            return 1
        probe = build_model(cfg.model["name"], dataset, cfg.train.seed, **cfg.params("model"))
        blocker = batch_blocker(probe, dataset.input_shape)
        if blocker:
            self.log(f"training one member at a time: {blocker}")
            return 1
        device = resolve_device(cfg.train.device)
        return default_chunk_size(
            probe,
            cfg.train.optimizer,
            device,
            cfg.study.batch_members,
            input_shape=dataset.input_shape,
            batch_size=cfg.train.batch_size,
        )

    def _share(self) -> int:
        """At most this many trials per claim, so that `workers` workers each get a part of
        the sweep (1 worker: no limit beyond the batch)."""
        return max(1, math.ceil(self._total() / self.config.study.workers))

    def _total(self) -> int:
        return len(self.points) if self.points else int(self.config.search.trials or 0)

    # --- one trial -------------------------------------------------------------------------------

    def _policy(self, trial: optuna.Trial) -> tuple[str, Policy]:
        """The trial's point: a grid point is the one it was queued with (`suggest_categorical`
        returns the queued value); random/TPE draw from the space."""
        if self.points:
            key = trial.suggest_categorical(GRID_PARAM, list(self.points))
            return key, self.points[key]
        policy = suggest_policy(trial, self.choices)
        return point_key(policy), policy

    def _run_trials(
        self,
        trials: list[tuple[optuna.Trial, str, Policy]],
        dataset: Dataset,
        pool: Pool,
        study: optuna.Study,
    ) -> list[dict[str, Any]]:
        """Train the claimed trials (together when there are several) and file their members.
        A trial whose point is already in the pool is told that member's value; one that
        drew the same point as another trial of this batch waits for that trial's result."""
        cfg = self.config
        summaries: list[dict[str, Any]] = []
        todo: list[tuple[optuna.Trial, str, Policy]] = []
        repeats: list[tuple[optuna.Trial, str]] = []
        in_pool = set(pool.member_ids(status=None))  # read the members once
        for trial, key, policy in trials:
            record = {
                "member": key,
                "policy": policy.spec(),
                "dataset": cfg.data["name"],
                "model": cfg.model["name"],
                "model_spec": cfg.model,
                "task": cfg.study.task,
                "optimizer": cfg.train.model_dump(mode="json", exclude={"device"}),
                "seed": cfg.train.seed,
                "epochs": cfg.train.epochs,
                "pool": str((self.out / "pool").resolve()),
            }
            if self.points:  # the grid's order, for reports that list members as the sweep did
                record["point_index"] = list(self.points).index(key)
            self._record(trial, record)
            if key in in_pool:
                summaries.append(self._reuse(study, trial, key, pool))
                continue
            if key in {k for _, k, _ in todo}:
                repeats.append((trial, key))
                continue
            todo.append((trial, key, policy))
        if not todo:
            return summaries
        try:
            summaries += self._train_and_file(todo, dataset, pool, study)
        finally:
            # repeated draws of a point this batch trained: its value, or its fate
            fate = {s["member"]: s for s in summaries}
            for trial, key in repeats:
                if pool.member_dir(key).exists():
                    summaries.append(self._reuse(study, trial, key, pool))
                elif fate.get(key, {}).get("status") == "diverged":
                    self._record(trial, {"status": "diverged", "diverged_at": fate[key]["at"]})
                    self._tell(study, trial, state=TrialState.PRUNED)
                else:
                    self._tell(study, trial, state=TrialState.FAIL)
        return summaries

    def _record(self, trial: optuna.Trial, attrs: dict[str, Any]) -> None:
        """Record user attributes on a trial, waiting out a storage outage."""

        def write() -> None:
            for name, value in attrs.items():
                trial.set_user_attr(name, value)

        self._retry(write)

    def _tell(self, study: optuna.Study, trial: optuna.Trial, *args: Any, **kwargs: Any) -> None:
        """`study.tell`, waiting out a storage outage (a repeat of a tell that reached the
        database before the connection dropped is skipped)."""
        self._retry(lambda: study.tell(trial, *args, skip_if_finished=True, **kwargs))

    def _reuse(
        self, study: optuna.Study, trial: optuna.Trial, key: str, pool: Pool
    ) -> dict[str, Any]:
        """Tell a trial whose point is already a member of the pool: that member's metrics
        (its validation accuracy from the pool's cached predictions if its record lacks it)."""
        metrics = pool.member(key).get("metrics") or {}
        accuracy = (metrics.get("val") or {}).get("accuracy")
        if not isinstance(accuracy, (int, float)):
            probs, labels = pool.probs("val", [key])[0], pool.labels("val")
            accuracy = float((probs.argmax(axis=1) == labels).mean())
        self._record(trial, {"status": "complete", "metrics": metrics})
        self._tell(study, trial, float(accuracy))
        return {"member": key, "status": "reused", "metrics": metrics}

    def _train_and_file(
        self,
        todo: list[tuple[optuna.Trial, str, Policy]],
        dataset: Dataset,
        pool: Pool,
        study: optuna.Study,
    ) -> list[dict[str, Any]]:
        """Train the trials of `todo` and file their members (the heart of `_run_trials`)."""
        cfg = self.config
        summaries: list[dict[str, Any]] = []
        open_trials = {t.number for t, _, _ in todo}
        try:
            for trial, key, _ in todo:
                _event(
                    self.out,
                    event="start",
                    member=key,
                    trial=trial.number,
                    from_epoch=resume_epoch(self.out / "runs" / key / CHECKPOINT),
                )
            models = [
                build_model(cfg.model["name"], dataset, cfg.train.seed, **cfg.params("model"))
                for _ in todo
            ]
            run_dirs = [self.out / "runs" / key for _, key, _ in todo]
            if len(todo) == 1:
                results = [
                    train_member(
                        models[0],
                        dataset,
                        todo[0][2],
                        cfg.train,
                        out_dir=run_dirs[0],
                        model_spec=cfg.model,
                        progress=self.progress,
                        description=todo[0][1],
                    )
                ]
            else:
                results = train_members(
                    models,
                    dataset,
                    [p for _, _, p in todo],
                    cfg.train,
                    out_dirs=run_dirs,
                    model_spec=cfg.model,
                    chunk_size=len(todo),
                    progress=self.progress,
                    description=f"{len(todo)} members",
                )
            # every finished member into the pool at once (one vectorized prediction pass);
            # one that another worker filed meanwhile is skipped
            file_members(
                pool,
                [
                    NewMember(
                        key,
                        models[i],
                        {**result.record, "trial": trial.number, "study": self.name, "member": key},
                        method="lr_tuning",
                        weights=run_dirs[i] / WEIGHTS,
                    )
                    for i, ((trial, key, _), result) in enumerate(zip(todo, results, strict=True))
                    if result.status == "complete"
                ],
                dataset,
                eval_batch_size=cfg.train.eval_batch_size,
                device=resolve_device(cfg.train.device),
            )
            for i, ((trial, key, _), result) in enumerate(zip(todo, results, strict=True)):
                attrs = {
                    "status": result.status,
                    "metrics": result.metrics,
                    "train_seconds": result.seconds,
                }
                if result.status == "diverged":
                    attrs["diverged_at"] = result.diverged_at
                self._record(trial, attrs)
                if result.status == "diverged":
                    _event(
                        self.out,
                        event="finish",
                        member=key,
                        status="diverged",
                        at=result.diverged_at,
                    )
                    shutil.rmtree(run_dirs[i], ignore_errors=True)  # the study keeps its record
                    self._tell(study, trial, state=TrialState.PRUNED)
                    open_trials.discard(trial.number)
                    summaries.append(
                        {"member": key, "status": "diverged", "at": result.diverged_at}
                    )
                    continue
                shutil.rmtree(run_dirs[i], ignore_errors=True)
                _event(self.out, event="finish", member=key, status="complete")
                self._tell(study, trial, float(result.metrics["val"]["accuracy"]))
                open_trials.discard(trial.number)
                summaries.append(
                    {
                        "member": key,
                        "status": "complete",
                        "metrics": result.metrics,
                        "seconds": result.seconds,
                    }
                )
        except KeyboardInterrupt:
            # keep the points (and their checkpoints) for the next run
            for trial, _, _ in todo:
                if trial.number in open_trials:
                    requeue(study, study.get_trials(deepcopy=False)[trial.number])
            raise
        except BaseException:
            for trial, _, _ in todo:
                if trial.number in open_trials:
                    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        return summaries

    # --- the loop --------------------------------------------------------------------------------

    def run(self, wait: bool = True) -> SweepResult:
        start = time.perf_counter()
        dataset, pool, study = self._prepare()
        result = SweepResult(self.out, self.name, self.storage_url)
        total = self._total()
        limit = min(self._batch_limit(dataset), self._share())
        with Bars(self.progress) as bars:
            bar = bars.add(f"sweep {self.name}", total=total, completed=self._done(study))
            while True:
                trials: list[tuple[optuna.Trial, str, Policy]] = []
                self._retry(functools.partial(self._claim, study, limit, trials))
                if not trials:
                    running = self._retry(lambda: count(study, TrialState.RUNNING))
                    if running and wait:
                        time.sleep(POLL_SECONDS)  # other workers' trials, or stale ones soon
                        continue
                    if self._grid_being_queued(study, time.perf_counter() - start):
                        time.sleep(POLL_SECONDS)
                        continue
                    queued = self.points and self._queue_missing_points(study)
                    if queued:  # points whose retry was cut short (or never queued)
                        study.set_user_attr("grid_queued", True)
                        continue
                    break
                done = self._done(study)  # the claimed trials are running, not done
                if len(trials) > 1:
                    self.log(
                        f"training {len(trials)} trials together "
                        f"({self.config.train.epochs} epochs)"
                    )
                # beats from the claim to the last tell, filing included: a live trial is never
                # taken for a dead one
                with contextlib.ExitStack() as beats:
                    for trial, _, _ in trials:
                        beats.enter_context(Heartbeat(trial, self.config.study.heartbeat_seconds))
                    summaries = self._run_trials(trials, dataset, pool, study)
                for summary in summaries:
                    done += 1
                    result.trials.append(summary)
                    self.log(self._line(summary, min(done, total), total))
                bars.update(bar, completed=self._done(study))
        self._summarize(study, pool, result)
        result.seconds = time.perf_counter() - start
        return result

    def _grid_being_queued(self, study: optuna.Study, waited: float) -> bool:
        """Whether the worker that created the study may still be queueing the grid: it has
        not said it is done, it is not known dead (its process is gone on this host), and the
        grace period has not passed. Otherwise this worker queues the points itself."""
        attrs = study.user_attrs
        if not self.points or attrs.get("grid_queued"):
            return False
        queuer = attrs.get("grid_queuer")
        if not isinstance(queuer, dict) or not worker_alive(queuer):
            return False
        return waited < self.config.study.grace_seconds

    @staticmethod
    def _done(study: optuna.Study) -> int:
        return count(study, TrialState.COMPLETE, TrialState.PRUNED)

    @staticmethod
    def _line(summary: dict[str, Any], done: int, total: int) -> str:
        head = f"[{done}/{total}] {summary['member']:<32}"
        if summary["status"] == "diverged":
            return f"{head} diverged (epoch {summary['at']['epoch'] + 1}); kept out of the pool"
        val = summary["metrics"].get("val", {})
        test = summary["metrics"].get("test", {})
        tail = f" ({summary['seconds']:.1f} s)" if "seconds" in summary else " (already in pool)"
        return (
            f"{head} val acc {val.get('accuracy', float('nan')):.4f}  "
            f"test acc {test.get('accuracy', float('nan')):.4f}{tail}"
        )

    @staticmethod
    def _summarize(study: optuna.Study, pool: Pool, result: SweepResult) -> None:
        result.members = pool.member_ids()
        trials = study.get_trials(deepcopy=False)
        # the point is recorded when a trial is claimed: a trial cut short before it was
        # trained still names its point
        point = {t.number: t.user_attrs.get("point") or t.user_attrs.get("member") for t in trials}
        diverged = [point[t.number] for t in trials if t.state == TrialState.PRUNED]
        result.diverged = [p for p in dict.fromkeys(diverged) if p]
        finished = {
            point[t.number] for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        }
        retried = {t.user_attrs.get("retry_of") for t in trials}
        failed = [
            point[t.number]
            for t in trials
            if t.state == TrialState.FAIL
            and point[t.number] not in finished
            and t.number not in retried
            and "duplicate_of" not in t.user_attrs
        ]
        result.failed = [p for p in dict.fromkeys(failed) if p]
        # members of this sweep that other workers filed into their own pools
        here = set(result.members)
        for t in trials:
            if t.state == TrialState.COMPLETE and point[t.number] not in here:
                where = f"{t.user_attrs.get('worker_host', '?')}:{t.user_attrs.get('pool', '?')}"
                result.elsewhere[where] = result.elsewhere.get(where, 0) + 1


def run_sweep(
    config: TuneConfig,
    out_dir: str | os.PathLike[str],
    *,
    wait: bool = True,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
) -> SweepResult:
    """Run (or continue, or join) the sweep of `config` in `out_dir`."""
    return Sweep(config, out_dir, log=log, progress=progress).run(wait=wait)
