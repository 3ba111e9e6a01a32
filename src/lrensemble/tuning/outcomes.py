"""The sweep's trials that produced no member (diverged or failed), read from the run
directory beside a pool: its study (tune.json names it), else its events.jsonl.

A diverged trial files no member, so the pool alone cannot tell the report about it. All of
this is optional: a pool without a sweep beside it simply has no such trials, and a study that
cannot be read never stops a report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TUNE_JSON = "tune.json"
EVENTS = "events.jsonl"


def trials_without_member(
    pool_dir: str | Path, members: set[str]
) -> tuple[list[dict[str, Any]], str | None]:
    """Diverged and failed trials of the sweep whose pool is `pool_dir` (a run directory's
    `pool/`) whose point is not among `members`, one per point (its last trial), and a
    warning when the study could not be read and the list comes from events.jsonl (without
    policies). Each entry: member, trial, status, policy, diverged_at (as the
    trainer records it, epoch from 0) and epoch (from 1, as progress bars count)."""
    pool = Path(pool_dir).resolve()
    run = pool.parent
    marker = run / TUNE_JSON
    if pool.name != "pool" or not marker.is_file():
        return [], None
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
        study, storage = info["study"], info["storage"]
        if not (isinstance(study, str) and isinstance(storage, str)):
            raise TypeError("study and storage are not strings")
        entries = _from_study(study, storage, members)
        return entries, None
    except Exception as exc:  # an optional section: any failure falls back to the events
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    entries = _from_events(run / EVENTS, members)
    warning = (
        f"The sweep's study (named in {marker}) could not be read ({reason}); the trials "
        "that produced no member come from events.jsonl, without their policies."
    )
    return entries, warning if entries else None


def _storage_file(url: str) -> Path | None:
    """The local file of a SQLite or journal storage URL (None for a database server)."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    if url.startswith("journal:") or url.endswith(".log"):
        return Path(url.removeprefix("journal:"))
    return None


def _from_study(name: str, url: str, members: set[str]) -> list[dict[str, Any]]:
    import optuna
    from optuna.trial import TrialState

    from lrensemble.tuning.study import open_storage

    local = _storage_file(url)
    if local is None:  # a database server may be slow or unreachable: a report never waits
        raise ConnectionError("the study is on a database server; the report reads local ones")
    if not local.is_file():  # opening it would create an empty one
        raise FileNotFoundError(f"{local} does not exist")
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    found: dict[str, dict[str, Any]] = {}
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        key = attrs.get("member") or attrs.get("point")  # the point is recorded at claim
        status = attrs.get("status")
        failed = trial.state in (TrialState.PRUNED, TrialState.FAIL) or status == "diverged"
        if not isinstance(key, str) or key in members or not failed:
            continue
        if status not in ("diverged", "failed"):
            status = "diverged" if trial.state == TrialState.PRUNED else "failed"
        at = attrs.get("diverged_at") if status == "diverged" else None
        at = at if isinstance(at, dict) else None
        # trials come in order: a point's last trial wins
        found[key] = _entry(key, trial.number, status, attrs.get("policy"), at)
    return list(found.values())


def _from_events(path: Path, members: set[str]) -> list[dict[str, Any]]:
    """Members whose last `finish` event is not "complete" and that are not in the pool, with
    where they diverged when the event records it (`at`)."""
    last: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a killed worker
        if isinstance(event, dict) and event.get("event") == "finish":
            key, status = event.get("member"), event.get("status")
            if isinstance(key, str) and isinstance(status, str):
                at = event.get("at")
                last[key] = _entry(key, None, status, None, at if isinstance(at, dict) else None)
    return [e for key, e in last.items() if e["status"] != "complete" and key not in members]


def _entry(
    member: str, trial: int | None, status: str, policy: Any, at: dict[str, Any] | None
) -> dict[str, Any]:
    """One trial without a member; `epoch` counts from 1 (the trainer's `at` from 0)."""
    epoch = at.get("epoch") if at is not None else None
    return {
        "member": member,
        "trial": trial,
        "status": status,
        "policy": policy,
        "diverged_at": at,
        "epoch": epoch + 1 if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
    }
