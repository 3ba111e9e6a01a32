"""The Optuna study behind a sweep: storage, claiming trials across workers, stale trials of
killed workers, and heartbeats.

Workers coordinate through the storage alone, whatever their output directories: each step
that must happen once is one atomic transition in the storage. Taking a queued trial is
Optuna's WAITING -> RUNNING (a row lock on a database server, a write transaction on SQLite,
the log's order in a journal file). A killed worker's trial is recognized as stale (its process
is gone on this host, or its heartbeat is older than the grace period); the worker whose
RUNNING -> FAIL succeeds is the one that queues its point again, so it is retried once.
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


def open_storage(
    url: str, wait: float = 0.0, log: Callable[[str], None] | None = None
) -> optuna.storages.BaseStorage:
    """An Optuna storage: a journal file for `journal:PATH` or `*.log`, else an SQLAlchemy URL
    (SQLite waits up to a minute for locks held by other workers; a database server's
    connections are checked before use, so one dropped by a restart is replaced). A server
    that is unreachable (down, restarting) is tried again with growing pauses for up to `wait`
    seconds (said once through `log`); anything else (a bad URL, a wrong password, a missing
    driver) is one sentence at once."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    shown = mask_url(url)
    deadline, pause = time.monotonic() + wait, 1.0
    while True:
        try:
            return _open(url)
        except (ImportError, ValueError) as exc:  # a missing driver, a malformed URL
            raise ConfigError(f"Cannot open the study storage {shown!r} ({_first(exc)}).") from None
        except Exception as exc:  # SQLAlchemy's and Optuna's: unreachable server, restart, ...
            if not _transient(exc) or time.monotonic() + pause > deadline:
                raise DataError(
                    f"Cannot open the study storage {shown!r} ({_first(exc)})."
                ) from None
            if log is not None and pause == 1.0:
                log(
                    f"the study storage {shown} is unreachable ({_first(exc)}); trying again "
                    f"for up to {wait:g} s ([study] outage_seconds)"
                )
            time.sleep(pause)
            pause = min(2 * pause, 16.0)


def _open(url: str) -> optuna.storages.BaseStorage:
    """`open_storage` without its error handling."""
    if url.startswith("journal:") or url.endswith(".log"):
        path = url.removeprefix("journal:")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(path)
        return optuna.storages.JournalStorage(backend)
    if url.startswith("sqlite"):
        # Python's sqlite3 begins a transaction only at the first write, so Optuna's
        # read-then-update of a trial's state (taking a queued trial, failing a stale one)
        # is not atomic between processes; the driver's own transactions are turned off
        # and every transaction begins IMMEDIATE (see `_immediate_transactions`)
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 60, "isolation_level": None}}
    else:
        kwargs = {"pool_pre_ping": True}
    for attempt in range(SCHEMA_ATTEMPTS):
        try:
            if url.startswith("sqlite"):
                return _immediate_transactions(
                    optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
                )
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception as exc:
            # workers of other machines starting together on a new database all create
            # Optuna's tables: the losers see "already exists" and simply open them again
            if attempt + 1 == SCHEMA_ATTEMPTS or not _schema_race(exc):
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


SCHEMA_ATTEMPTS = 5


def _immediate_transactions(storage: optuna.storages.RDBStorage) -> optuna.storages.RDBStorage:
    """Make every transaction of an SQLite storage take the database's write lock when it
    begins, so that a read and the update that depends on it are one step for every process
    sharing the file (without this, two workers take the same queued trial now and then)."""
    from sqlalchemy import event

    def begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(storage.engine, "begin", begin)
    storage.engine.dispose()  # connections made while creating the schema lack the hook
    return storage


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
    """Exclusive section across the workers sharing `out_dir`, for the directory's own files
    (the sweep's marker); trials are coordinated by the storage."""
    with FileLock(str(out_dir / ".claims.lock"), timeout=timeout):
        yield


def worker_id() -> dict[str, Any]:
    """This process, as other workers can check it: host and process id."""
    return {"host": HOST, "pid": os.getpid()}


def worker_alive(worker: dict[str, Any]) -> bool:
    """Whether a recorded worker may be alive: False only when it ran on this host and its
    process is gone (a process on another host cannot be checked from here)."""
    pid = worker.get("pid")
    if worker.get("host") != HOST or not isinstance(pid, int) or pid <= 0:
        return True
    return pid == os.getpid() or _alive(pid)


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


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Fail a trial and queue its point again, if this worker is the one that fails it: the
    RUNNING -> FAIL transition is atomic in the storage, so when several workers find the
    same stale trial, exactly one queues its point. The point is the one the trial was queued
    with (`fixed_params`) or drew; a random/TPE trial that never drew one is only failed,
    since its budget refills. A kill between the two steps loses no grid point (a worker that
    finds nothing left to claim queues the points no trial covers). Returns whether this
    worker failed the trial (False: it had already finished)."""
    if trial.state.is_finished():
        return False
    try:
        study.tell(trial.number, state=TrialState.FAIL)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
        return False  # another worker finished or failed it first
    params = {**trial.system_attrs.get("fixed_params", {}), **trial.params}
    if params:
        keep = {k: v for k, v in trial.user_attrs.items() if k == "point"}
        study.enqueue_trial(params, user_attrs={**keep, "retry_of": trial.number})
    return True


def retry_stale(study: optuna.Study, grace: float) -> list[int]:
    """Fail and re-queue the stale RUNNING trials that this worker is first to fail; returns
    their numbers."""
    return [
        trial.number
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if is_stale(trial, grace) and requeue(study, trial)
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
