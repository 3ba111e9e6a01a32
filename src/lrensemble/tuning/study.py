"""The Optuna study behind a sweep: storage, claiming trials across workers, stale trials of
killed workers, and heartbeats.

Claims are serialized by a file lock in the output directory (which workers share, as they
share the pool), so a worker asks Optuna for a trial only when one is due: a queued grid point,
a stale trial to retry, or room left in a random/TPE budget. A killed worker's trial is
recognized as stale (its process is gone on this host, or its heartbeat is older than the grace
period), marked failed by exactly one worker, and re-queued with the same parameters.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import optuna
from filelock import FileLock
from optuna.trial import TrialState

from lrensemble.errors import ConfigError, DataError

HOST = socket.gethostname()
T = TypeVar("T")
ACTIVE = (TrialState.RUNNING, TrialState.WAITING)


def resolve_storage_url(value: str | None, default: str) -> str:
    """The storage URL of `[study] storage`: `default` when unset, the value of an environment
    variable for `env:NAME` (so that a password need not sit in a config file), else as given."""
    if value is None:
        return default
    if value.startswith("env:"):
        name = value.removeprefix("env:")
        url = os.environ.get(name)
        if not url:
            raise ConfigError(
                f"study.storage names the environment variable {name}, which is unset."
            )
        return url
    return value


def mask_url(url: str) -> str:
    """`url` with any password replaced by `***`, for files and messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage: a journal file for `journal:PATH` or `*.log`, else an SQLAlchemy URL
    (SQLite waits up to a minute for locks held by other workers; a database server's
    connections are checked before use, so one dropped by a restart is replaced)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shown = mask_url(url)
    try:
        if url.startswith("journal:") or url.endswith(".log"):
            path = url.removeprefix("journal:")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(path)
            return optuna.storages.JournalStorage(backend)
        if url.startswith("sqlite"):
            kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
        else:
            kwargs = {"pool_pre_ping": True}
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            except Exception as exc:
                # workers of other machines starting together on a new database all create
                # Optuna's tables: the losers see "already exists" and simply open them again
                if attempt + 1 == SCHEMA_ATTEMPTS or not _schema_race(exc):
                    raise
                time.sleep(0.5 * (attempt + 1))
    except (ImportError, ValueError, optuna.exceptions.StorageInternalError) as exc:
        raise ConfigError(f"Cannot open the study storage {shown!r} ({_first(exc)}).") from None
    except Exception as exc:  # SQLAlchemy's errors: bad URL, unreachable server, ...
        raise DataError(f"Cannot open the study storage {shown!r} ({_first(exc)}).") from None


SCHEMA_ATTEMPTS = 5


def _schema_race(exc: BaseException) -> bool:
    """Whether creating the storage's tables failed because another worker created them."""
    text = str(exc).lower()
    return "already exists" in text or "duplicate key" in text or "unique constraint" in text


def _first(exc: BaseException) -> str:
    """The first line of an error's text, passwords masked (drivers print pages)."""
    text = str(exc).strip()
    return mask_url(text.splitlines()[0]) if text else type(exc).__name__


OUTAGE_SECONDS = 120.0  # how long a worker waits for a database that went away


def _transient(exc: BaseException) -> bool:
    """Whether an error is a database that is (perhaps briefly) unreachable."""
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        return True
    try:
        from sqlalchemy.exc import DBAPIError, OperationalError
    except ImportError:  # pragma: no cover - optuna needs SQLAlchemy for RDB storages
        return False
    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
    )


def with_retry(fn: Callable[[], T], url: str, seconds: float = OUTAGE_SECONDS) -> T:
    """`fn()`, retried with growing pauses (1, 2, 4 … 16 s) while the storage is unreachable;
    after `seconds`, one sentence. A database restart costs a waiting worker a pause, not
    its life."""
    deadline, pause = time.monotonic() + seconds, 1.0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not _transient(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise DataError(
                    f"The study storage {mask_url(url)!r} has been unreachable for "
                    f"{seconds:g} s ({_first(exc)}); rerun the same command when it is back."
                ) from None
            time.sleep(pause)
            pause = min(2 * pause, 16.0)


@contextlib.contextmanager
def claim_lock(out_dir: Path, timeout: float = 600) -> Iterator[None]:
    """Exclusive section across the workers sharing `out_dir`."""
    with FileLock(str(out_dir / ".claims.lock"), timeout=timeout):
        yield


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_stale(trial: optuna.trial.FrozenTrial, grace: float, now: float | None = None) -> bool:
    """Whether a RUNNING trial's worker is gone."""
    attrs = trial.user_attrs
    pid = int(attrs.get("worker_pid", -1))
    if attrs.get("worker_host") == HOST and pid > 0 and pid != os.getpid() and not _alive(pid):
        return True
    beat = attrs.get("heartbeat")
    if beat is None and trial.datetime_start is not None:
        beat = trial.datetime_start.timestamp()
    return beat is not None and (now or time.time()) - float(beat) > grace


def requeue(study: optuna.Study, number: int) -> bool:
    """Queue a trial's point again, then mark the trial failed (in that order: a kill in
    between leaves the point queued twice, which the sweep reuses, never lost). The point is
    the one the trial was queued with (`fixed_params`) or drew; a random/TPE trial that never
    drew one is only failed, since its budget refills. Returns whether the trial was failed
    here (False: it had already finished)."""
    frozen = study.get_trials(deepcopy=False)[number]  # a study's trials are numbered 0, 1, ...
    if frozen.state.is_finished():
        return False
    params = {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}
    if params:
        keep = {k: v for k, v in frozen.user_attrs.items() if k == "point"}
        study.enqueue_trial(params, user_attrs={**keep, "retry_of": number})
    study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    return True


def retry_stale(study: optuna.Study, grace: float) -> list[int]:
    """Re-queue and fail the stale RUNNING trials; returns their numbers. Call under the
    claim lock."""
    return [
        trial.number
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if is_stale(trial, grace) and requeue(study, trial.number)
    ]


class Heartbeat:
    """Records `heartbeat` (unix time) on a running trial every `interval` seconds."""

    def __init__(self, trial: optuna.Trial, interval: float) -> None:
        self.trial, self.interval = trial, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a missed beat is not an error
                self.trial.set_user_attr("heartbeat", time.time())

    def __enter__(self) -> Heartbeat:
        mark_worker(self.trial)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def mark_worker(trial: optuna.Trial) -> None:
    """Record which process runs the trial (right after claiming it) and a first heartbeat."""
    trial.set_user_attr("worker_host", HOST)
    trial.set_user_attr("worker_pid", os.getpid())
    trial.set_user_attr("heartbeat", time.time())


def count(study: optuna.Study, *states: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))
