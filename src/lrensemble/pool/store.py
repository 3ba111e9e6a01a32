"""`Pool`: create, open, add members to and read a pool directory."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from lrensemble import __version__
from lrensemble.arrays import ShapeError, check_labels, check_probs, softmax
from lrensemble.atomic import file_in_the_way, write_json, write_with
from lrensemble.errors import DataError, ParameterError

POOL_FORMAT = 1
UNKNOWN_METHOD = "unknown"  # how commands name the method of a record that names none
WEIGHTS_FILE = "model.safetensors"  # a member's weights, when it has them
POOL_JSON = "pool.json"
MEMBER_JSON = "member.json"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
CORRUPT_DIR = "corrupt"  # a member's predictions on corrupted test sets
_CORRUPTION = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
_CORRUPT_FILE = re.compile(
    r"^(?P<name>[a-z0-9][a-z0-9_]{0,63})-(?P<severity>[1-9][0-9]*)-seed(?P<seed>[0-9]+)\.npy$"
)


def labels_checksum(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{what}: {path} is missing.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{what}: {path} is unreadable or truncated ({exc}).") from None


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{what}: {path} is missing.") from None
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{what}: {path} is unreadable or truncated ({exc}).") from None


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _json_type(value: Any) -> str:
    """How JSON calls the type of a parsed value, for messages."""
    if value is None:
        return "null"
    return next((n for t, n in _JSON_TYPES.items() if isinstance(value, t)), "a number")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite JSON number (booleans are not numbers)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bad(path: Path, key: str, expected: str, value: Any) -> DataError:
    """The one-sentence error for a field of the wrong shape, naming the file and the key."""
    shown = json.dumps(value)  # as the file spells it: "3", true, null, [...]
    shown = shown if len(shown) <= 40 else _json_type(value)
    return DataError(f"{path}: {key!r} must be {expected}, not {shown}.")


def _check_info(info: Any, path: Path) -> dict[str, Any]:
    """pool.json's fields, checked once when a pool is opened, so that every reader can trust
    them: split names are simple names (they become file names), sizes non-negative ints."""
    if not isinstance(info, dict):
        raise DataError(f"{path} must hold a JSON object, not {_json_type(info)}.")
    if not _is_int(info.get("format")) or info["format"] != POOL_FORMAT:
        raise DataError(
            f"{path.parent} has pool format {info.get('format')!r}; this version reads format "
            f"{POOL_FORMAT}."
        )
    for key in ("num_classes", "splits", "labels_sha256"):
        if key not in info:
            raise DataError(f"{path} lacks {key!r}.")
    if not _is_int(info["num_classes"]) or info["num_classes"] < 1:
        raise _bad(path, "num_classes", "a positive integer", info["num_classes"])
    splits, sums = info["splits"], info["labels_sha256"]
    if not isinstance(splits, dict) or not splits:
        raise _bad(path, "splits", "an object of split names and sizes", splits)
    for split, size in splits.items():
        if not _ID.match(split):
            raise DataError(f"{path}: split name {split!r} is not a simple name.")
        if not _is_int(size) or size < 0:
            raise _bad(path, f"splits.{split}", "a non-negative integer", size)
    if not isinstance(sums, dict) or set(sums) != set(splits):
        raise _bad(path, "labels_sha256", "an object with a checksum per split", sums)
    for split, digest in sums.items():
        if not isinstance(digest, str):
            raise _bad(path, f"labels_sha256.{split}", "a string", digest)
    if not isinstance(info.get("dataset", {}), dict):
        raise _bad(path, "dataset", "an object", info["dataset"])
    return info


def _check_record(record: Any, path: Path) -> dict[str, Any]:
    """A member record whose fields read by every command (status, method, parent, policy,
    epochs, timings, metrics, snapshot) have their documented shapes; anything else a producer
    recorded is kept as is."""
    if not isinstance(record, dict):
        raise DataError(f"{path} must hold a JSON object, not {_json_type(record)}.")
    if not isinstance(record.get("status", ""), str):
        raise _bad(path, "status", "a string", record["status"])
    for key in ("method", "parent"):
        if not isinstance(record.get(key), str | None):
            raise _bad(path, key, "a string or null", record[key])
    snapshot = record.get("snapshot")
    if snapshot is not None and not (
        isinstance(snapshot, dict) and _is_int(snapshot.get("cycle", 1))
    ):
        raise _bad(path, "snapshot", "an object with an integer cycle, or null", snapshot)
    policy = record.get("policy")
    if policy is not None:
        if not isinstance(policy, dict):
            raise _bad(path, "policy", "an object (a policy spec) or null", policy)
        if "name" not in policy:
            raise DataError(f"{path}: 'policy' lacks its 'name'.")
        if not isinstance(policy["name"], str):
            raise _bad(path, "policy.name", "a string", policy.get("name"))
        if "max_lr" in policy and not _is_number(policy["max_lr"]):
            raise _bad(path, "policy.max_lr", "a finite number", policy["max_lr"])
    epochs = record.get("epochs")
    if epochs is not None and (not _is_int(epochs) or epochs < 1):
        raise _bad(path, "epochs", "a positive integer or null", epochs)
    timings = record.get("timings")
    if timings is not None:
        if not isinstance(timings, dict):
            raise _bad(path, "timings", "an object or null", timings)
        seconds = timings.get("train_seconds")
        if seconds is not None and (not _is_number(seconds) or seconds < 0):
            raise _bad(path, "timings.train_seconds", "a non-negative number or null", seconds)
    metrics = record.get("metrics")
    if metrics is not None and not (
        isinstance(metrics, dict) and all(isinstance(v, dict) for v in metrics.values())
    ):
        raise _bad(path, "metrics", "an object of metrics per split", metrics)
    return record


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    write_with(path, write)


def _as_probs(array: Any, logits: bool, what: str) -> np.ndarray:
    """One member's predictions (N, C) as checked float32 probabilities; `what` names them in
    errors ("The val predictions of m"). Logits are converted with softmax when `logits`."""
    p = np.asarray(array)
    if p.dtype.kind not in "fiu":
        raise ParameterError(f"{what} must be numbers, not an array of dtype {p.dtype}.")
    if logits:
        if not np.all(np.isfinite(p)):
            raise ParameterError(f"{what} contain NaN or infinite logits.")
        p = softmax(p)
    try:
        checked, _ = check_probs(p)
    except ParameterError as exc:
        hint = (
            ""
            if logits
            else (" If they are logits, import them with logits=True (lrens pool import --logits).")
        )
        raise type(exc)(
            f"{what} are not probabilities: {str(exc)[0].lower()}{str(exc)[1:]}{hint}"
        ) from None
    return checked[0].astype(np.float32)


def _check_corruption(name: Any, severity: Any, seed: Any) -> None:
    """A corruption's name (lower-case letters, digits, underscores), a positive integer
    severity and a non-negative integer seed: they make a file name."""
    if not isinstance(name, str) or not _CORRUPTION.match(name):
        raise ParameterError(
            f"A corruption name must be lower-case letters, digits and underscores, got {name!r}."
        )
    if not _is_int(severity) or severity < 1:
        raise ParameterError(f"A severity must be a positive integer, got {severity!r}.")
    if not _is_int(seed) or seed < 0:
        raise ParameterError(f"A corruption seed must be a non-negative integer, got {seed!r}.")


def check_member_id(member_id: str) -> str:
    if not isinstance(member_id, str) or not _ID.match(member_id):
        raise ParameterError(
            f"Member id {member_id!r} must be 1-128 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit."
        )
    return member_id


class Pool:
    """A pool directory. `Pool.create` makes one (or opens a matching one); `Pool.open` reads
    one; `add_member` writes a member atomically (a crash never leaves a half member).
    `add_corrupted` caches a member's predictions on a corrupted test set beside them, in
    `members/<id>/corrupt/<name>-<severity>-seed<seed>.npy` (pools without them read as
    before)."""

    def __init__(self, root: Path, info: dict[str, Any]) -> None:
        self.root = root
        self.info = info
        self._labels: dict[str, np.ndarray] = {}

    # --- creating and opening --------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        labels: Mapping[str, Any],
        num_classes: int,
        dataset: Mapping[str, Any] | str | None = None,
    ) -> Pool:
        """Create a pool for these labels, or open the pool already there if its labels match
        (so that a resumed run or a second worker shares it)."""
        root = Path(root)
        if (
            isinstance(num_classes, bool)
            or not isinstance(num_classes, int | np.integer)
            or num_classes < 1
        ):
            raise ParameterError(f"num_classes must be a positive integer, not {num_classes!r}.")
        checked = {}
        for split, y in labels.items():
            if not _ID.match(split):
                raise ParameterError(f"Split name {split!r} is not a simple name.")
            checked[split] = check_labels(y, num_classes=num_classes)
        if not checked:
            raise ParameterError("A pool needs labels for at least one split.")
        info = {
            "format": POOL_FORMAT,
            "dataset": {"name": dataset} if isinstance(dataset, str) else dict(dataset or {}),
            "num_classes": int(num_classes),
            "splits": {s: len(y) for s, y in checked.items()},
            "labels_sha256": {s: labels_checksum(y) for s, y in checked.items()},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "lrensemble": __version__,
        }
        if (root / POOL_JSON).exists():
            pool = cls.open(root)
            if pool.info["labels_sha256"] != info["labels_sha256"]:
                raise DataError(
                    f"{root} already holds a pool for other labels; choose another directory."
                )
            if pool.num_classes != info["num_classes"]:
                raise DataError(
                    f"{root} already holds a pool of {pool.num_classes} classes, not "
                    f"{info['num_classes']}; choose another directory."
                )
            return pool
        blocking = file_in_the_way(root)
        if blocking is not None:
            raise DataError(f"Cannot create the pool {root}: {blocking} is a file.")
        try:
            root.mkdir(parents=True, exist_ok=True)
            (root / "members").mkdir(exist_ok=True)
            for split, y in checked.items():
                _save_npy(root / "labels" / f"{split}.npy", y)
            write_json(root / POOL_JSON, info)  # last: its presence marks a complete pool
        except OSError as exc:
            raise DataError(f"Cannot create the pool {root} ({exc.strerror or exc}).") from None
        return cls(root, info)

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Pool:
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise DataError(f"{root} is a file, not a pool directory.")
        if not root.is_dir():
            raise DataError(f"Pool directory {root} does not exist.")
        if not (root / POOL_JSON).exists():
            raise DataError(f"{root} is not a pool: it has no {POOL_JSON}.")
        info = _read_json(root / POOL_JSON, "The pool description")
        return cls(root, _check_info(info, root / POOL_JSON))

    # --- reading ---------------------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return int(self.info["num_classes"])

    @property
    def splits(self) -> list[str]:
        return list(self.info["splits"])

    def _check_split(self, split: str) -> None:
        if split not in self.info["splits"]:
            raise ParameterError(
                f"The pool has no split {split!r}; it has {', '.join(self.splits)}."
            )

    def _inside(self, path: Path) -> Path:
        """`path`, refused when a symbolic link leads it out of the pool (a crafted pool must
        not make lrensemble read files elsewhere)."""
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise DataError(f"{path} is a link to {path.resolve()}, outside the pool {self.root}.")
        return path

    def labels(self, split: str) -> np.ndarray:
        self._check_split(split)
        if split not in self._labels:
            path = self._inside(self.root / "labels" / f"{split}.npy")
            y = _load_npy(path, f"The {split} labels")
            if labels_checksum(y) != self.info["labels_sha256"][split]:
                raise DataError(f"The {split} labels of {self.root} do not match their checksum.")
            try:
                y = check_labels(y, self.info["splits"][split], self.num_classes)
            except ParameterError as exc:
                raise DataError(f"{path} does not fit {self.root / POOL_JSON}: {exc}") from None
            self._labels[split] = y
        return self._labels[split]

    def member_ids(self, status: str | None = "complete") -> list[str]:
        """Ids of the members (sorted), by default only complete ones."""
        ids = []
        members = self.root / "members"
        if members.is_dir():
            for d in sorted(members.iterdir()):
                if d.name.startswith("."):
                    continue
                if d.is_symlink():
                    raise DataError(
                        f"Member directory {d} is a symbolic link; members must lie in the pool."
                    )
                if not (d / MEMBER_JSON).exists():
                    continue
                if status is None or self.member(d.name).get("status", "complete") == status:
                    ids.append(d.name)
        return ids

    def ordered_member_ids(self, status: str | None = "complete") -> list[str]:
        """Member ids in the order their producer defined them: a sweep's grid order
        (`point_index`), then trial number, then id. Every command that chooses a team reads
        members in this order, so ties between members resolve the same way everywhere."""

        def key(member: str) -> tuple[float, float, str]:
            record = self.member(member)
            index, trial = record.get("point_index"), record.get("trial")
            return (
                float(index) if isinstance(index, int) else float("inf"),
                float(trial) if isinstance(trial, int) else float("inf"),
                member,
            )

        return sorted(self.member_ids(status), key=key)

    def member(self, member_id: str) -> dict[str, Any]:
        """A member's record (member.json); its status, policy, epochs, timings and metrics
        have their documented shapes, or a `DataError` names the file and the key."""
        directory = self.member_dir(member_id)
        if not directory.is_dir():
            raise ParameterError(f"The pool has no member {member_id!r}.")
        path = self.member_file(member_id, MEMBER_JSON)
        return _check_record(_read_json(path, f"The record of member {member_id}"), path)

    def member_dir(self, member_id: str) -> Path:
        """A member's directory; a link there is refused (it would lead out of the pool)."""
        directory = self.root / "members" / check_member_id(member_id)
        if directory.is_symlink():
            raise DataError(
                f"Member directory {directory} is a symbolic link; members must lie in the pool."
            )
        return directory

    def member_file(self, member_id: str, name: str) -> Path:
        """The path of a member's file (`val.npy`, `model.safetensors`), refused when it is a
        link that leads out of the pool."""
        return self._inside(self.member_dir(member_id) / name)

    def probs(self, split: str, member_ids: Sequence[str] | None = None) -> np.ndarray:
        """Cached probabilities (M, N, C), float32, of the given (default: all complete)
        members, in the order given."""
        self._check_split(split)
        ids = self.member_ids() if member_ids is None else list(member_ids)
        if not ids:
            raise DataError(f"The pool {self.root} has no complete members.")
        n = self.info["splits"][split]
        out = None  # allocated once the first file has the expected shape (pool.json may lie)
        for i, member_id in enumerate(ids):
            self.member(member_id)  # a clear error for an unknown id
            p = _load_npy(
                self.member_file(member_id, f"{split}.npy"),
                f"The {split} predictions of member {member_id}",
            )
            if p.dtype.kind not in "fiu":
                raise DataError(
                    f"The {split} predictions of member {member_id} are of dtype {p.dtype}, not "
                    "numbers."
                )
            if p.shape != (n, self.num_classes):
                raise ShapeError(
                    f"The {split} predictions of member {member_id} have shape {p.shape}, the "
                    f"pool expects {(n, self.num_classes)}."
                )
            if out is None:
                out = np.empty((len(ids), n, self.num_classes), dtype=np.float32)
            out[i] = p
        return out

    # --- predictions on corrupted test sets ------------------------------------------------------

    def corrupted_file(self, member_id: str, name: str, severity: int, seed: int = 0) -> Path:
        """Where a member's probabilities on a corrupted test set lie:
        `members/<id>/corrupt/<name>-<severity>-seed<seed>.npy`."""
        _check_corruption(name, severity, seed)
        return self.member_file(member_id, f"{CORRUPT_DIR}/{name}-{severity}-seed{seed}.npy")

    def add_corrupted(
        self, member_id: str, name: str, severity: int, probs: Any, seed: int = 0
    ) -> Path:
        """Cache a complete member's probabilities (N_test, C) on the test set under corruption
        `name` at `severity` (made with `seed`); written atomically, replacing an older file.
        Their labels are the test labels."""
        self._check_split("test")
        if self.member(member_id).get("status", "complete") != "complete":
            raise ParameterError(f"Member {member_id} is not complete.")
        path = self.corrupted_file(member_id, name, severity, seed)
        expected = (self.info["splits"]["test"], self.num_classes)
        p = np.asarray(probs)
        if p.shape != expected:
            raise ShapeError(
                f"The {name}-{severity} predictions of {member_id} have shape {p.shape}, the "
                f"pool expects {expected}."
            )
        checked = _as_probs(p, False, f"The {name}-{severity} predictions of {member_id}")
        try:
            _save_npy(path, checked)
        except OSError as exc:
            raise DataError(f"Could not write {path} ({exc.strerror or exc}).") from None
        return path

    def corrupted(
        self, name: str, severity: int, member_ids: Sequence[str] | None = None, seed: int = 0
    ) -> np.ndarray:
        """Cached probabilities (M, N_test, C), float32, of the given (default: all complete)
        members on the test set under corruption `name` at `severity`; one missing or damaged
        file is one sentence."""
        self._check_split("test")
        ids = self.member_ids() if member_ids is None else list(member_ids)
        if not ids:
            raise DataError(f"The pool {self.root} has no complete members.")
        expected = (self.info["splits"]["test"], self.num_classes)
        out = np.empty((len(ids), *expected), dtype=np.float32)
        for i, member_id in enumerate(ids):
            self.member(member_id)  # a clear error for an unknown id
            what = f"The {name}-{severity} predictions of member {member_id}"
            path = self.corrupted_file(member_id, name, severity, seed)
            if not path.exists():
                raise DataError(
                    f"{what} are not cached; compute them with lrens evaluate --corruptions."
                )
            p = _load_npy(path, what)
            if p.dtype.kind != "f" or p.shape != expected:
                raise DataError(
                    f"{path} holds {p.dtype} values of shape {p.shape}, not probabilities of "
                    f"shape {expected}; delete it to compute it again."
                )
            out[i] = p
        return out

    def corruptions(
        self, member_ids: Sequence[str] | None = None, seed: int = 0
    ) -> list[tuple[str, int]]:
        """(corruption, severity) pairs cached (with `seed`) for every one of the given
        (default: all complete) members, sorted; empty when there are no members."""
        ids = self.member_ids() if member_ids is None else list(member_ids)
        common: set[tuple[str, int]] | None = None
        for member_id in ids:
            found = set()
            folder = self.member_file(member_id, CORRUPT_DIR)
            for path in folder.glob(f"*-seed{seed}.npy") if folder.is_dir() else []:
                match = _CORRUPT_FILE.match(path.name)
                if match and int(match["seed"]) == seed:
                    found.add((match["name"], int(match["severity"])))
            common = found if common is None else common & found
            if not common:
                return []
        return sorted(common or ())

    # --- writing ---------------------------------------------------------------------------------

    def add_member(
        self,
        member_id: str,
        probs: Mapping[str, Any],
        record: Mapping[str, Any],
        weights: str | os.PathLike[str] | None = None,
        logits: bool = False,
        files: Mapping[str, str | os.PathLike[str]] | None = None,
    ) -> Path:
        """Write a member: its predictions per split (all of the pool's splits), its record,
        optionally its weights file and other files of its own (`files`: name in the member's
        directory -> source, e.g. a pruned member's masks), copied. The member appears
        atomically, all or nothing."""
        check_member_id(member_id)
        target = self.member_dir(member_id)
        if target.exists():
            raise ParameterError(f"The pool already has a member {member_id!r}.")
        missing = [s for s in self.splits if s not in probs]
        if missing:
            raise ParameterError(f"Member {member_id} lacks predictions for {', '.join(missing)}.")
        arrays = {}
        for split in self.splits:
            p = np.asarray(probs[split])
            if p.shape != (self.info["splits"][split], self.num_classes):
                raise ShapeError(
                    f"The {split} predictions of {member_id} have shape {p.shape}, the pool "
                    f"expects {(self.info['splits'][split], self.num_classes)}."
                )
            arrays[split] = _as_probs(p, logits, f"The {split} predictions of {member_id}")
        (self.root / "members").mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{member_id}.", dir=self.root / "members"))
        try:
            for split, p in arrays.items():
                _save_npy(staging / f"{split}.npy", p)
            if weights is not None:
                write_with(staging / "model.safetensors", lambda tmp: shutil.copyfile(weights, tmp))
            for name, source in (files or {}).items():
                if not _ID.match(name) or name in (MEMBER_JSON, WEIGHTS_FILE):
                    raise ParameterError(f"A member's file name must be simple, got {name!r}.")
                write_with(staging / name, lambda tmp, src=source: shutil.copyfile(src, tmp))
            write_json(staging / MEMBER_JSON, {"id": member_id, "status": "complete", **record})
            os.rename(staging, target)
        except OSError as exc:
            if target.exists():
                raise ParameterError(f"The pool already has a member {member_id!r}.") from None
            raise DataError(f"Could not write member {member_id} to {self.root} ({exc}).") from None
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def remove_stale_staging(self, older_than: float) -> list[str]:
        """Delete staging directories that killed writers left behind, if untouched for
        `older_than` seconds (a live writer's staging is recent); returns their names."""
        removed = []
        members = self.root / "members"
        now = time.time()
        for d in members.glob(".*") if members.is_dir() else []:
            with contextlib.suppress(OSError):
                if d.is_dir() and now - d.stat().st_mtime > older_than:
                    shutil.rmtree(d)
                    removed.append(d.name)
        return removed


def import_predictions(
    root: str | os.PathLike[str],
    labels: Mapping[str, str | os.PathLike[str]],
    pattern: str,
    logits: bool = False,
    num_classes: int | None = None,
    dataset: str | None = None,
) -> Pool:
    """Build a pool from plain `.npy` files: `labels` maps split names to label files;
    `pattern` locates predictions with `{member}` and `{split}` placeholders, e.g.
    `"preds/{member}_{split}.npy"`. Logits are converted with softmax only when `logits=True`.

    Every file is read and checked (shapes (N, C) with one C for all, probabilities or logits,
    labels in [0, C)) before anything is written, so a failed import creates or changes
    nothing; the class count is the files' (or `num_classes`, which they must match)."""
    if "{member}" not in pattern or "{split}" not in pattern:
        raise ParameterError("The predictions pattern needs both {member} and {split}.")
    if not labels:
        raise ParameterError("Give labels for at least one split (e.g. val=labels_val.npy).")
    label_arrays: dict[str, np.ndarray] = {}
    for split, path in labels.items():
        if not _ID.match(split):
            raise ParameterError(f"Split name {split!r} is not a simple name.")
        try:
            label_arrays[split] = check_labels(_load_npy(Path(path), f"The {split} labels"))
        except ParameterError as exc:
            raise type(exc)(f"The {split} labels in {path}: {exc}") from None
    files = _prediction_files(pattern, list(label_arrays))
    loaded: dict[str, dict[str, np.ndarray]] = {}
    classes: dict[int, Path] = {}  # each class count found, with a file that has it
    for member, paths in files.items():
        loaded[member] = {}
        for split, path in paths.items():
            p = _load_npy(path, f"The {split} predictions of {member}")
            n = len(label_arrays[split])
            if p.ndim != 2 or p.shape[0] != n:
                raise ShapeError(
                    f"{path} has shape {p.shape}; the {split} labels ask for ({n}, classes)."
                )
            classes.setdefault(p.shape[1], path)
            loaded[member][split] = p
    if len(classes) > 1:
        (c1, f1), (c2, f2) = list(classes.items())[:2]
        raise ShapeError(
            f"The prediction files disagree on the number of classes: {f1} has {c1}, {f2} has {c2}."
        )
    c = next(iter(classes))
    if num_classes is not None and num_classes != c:
        raise ShapeError(f"{classes[c]} has {c} classes, not the {num_classes} asked for.")
    for split, y in label_arrays.items():
        if len(y) and (y.min() < 0 or y.max() >= c):
            raise ParameterError(
                f"The {split} labels in {labels[split]} lie in [{y.min()}, {y.max()}]; the "
                f"predictions have {c} classes."
            )
    arrays = {
        member: {
            s: _as_probs(p, logits, f"The predictions in {files[member][s]}") for s, p in d.items()
        }
        for member, d in loaded.items()
    }
    pool = Pool.create(root, label_arrays, c, dataset or "imported")
    existing = set(pool.member_ids(status=None))
    for member, probs in arrays.items():
        if member not in existing:
            pool.add_member(member, probs, {"method": "import", "source": pattern})
    return pool


def _prediction_files(pattern: str, splits: list[str]) -> dict[str, dict[str, Path]]:
    """The prediction file of every member and split: members are found with the first
    split's files, and each must have a file for every split."""
    first = splits[0]
    regex = re.compile(
        "^"
        + re.escape(pattern.replace("{split}", first)).replace(
            re.escape("{member}"), "(?P<member>[A-Za-z0-9][A-Za-z0-9._-]*)"
        )
        + "$"
    )
    base = Path(pattern.replace("{split}", first).replace("{member}", "*"))
    candidates = sorted(base.parent.glob(base.name)) if base.parent.is_dir() else []
    members = sorted({m["member"] for c in candidates if (m := regex.match(str(c)))})
    if not members:
        raise DataError(f"No prediction files match {pattern.replace('{split}', first)}.")
    files = {}
    for member in members:
        if len(member) > 128:
            path = pattern.replace("{split}", first).replace("{member}", member)
            raise ParameterError(f"{path}: a member id has at most 128 characters.")
        files[member] = {
            s: Path(pattern.replace("{member}", member).replace("{split}", s)) for s in splits
        }
    return files
