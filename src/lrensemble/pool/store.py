"""`Pool`: create, open, add members to and read a pool directory."""

from __future__ import annotations

import contextlib
import hashlib
import json
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
from lrensemble.atomic import write_json, write_with
from lrensemble.ensemble.checks import ShapeError, check_labels, check_probs, softmax
from lrensemble.errors import DataError, ParameterError

POOL_FORMAT = 1
POOL_JSON = "pool.json"
MEMBER_JSON = "member.json"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def labels_checksum(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()


def _read_json(path: Path, what: str) -> dict[str, Any]:
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


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    write_with(path, write)


def check_member_id(member_id: str) -> str:
    if not isinstance(member_id, str) or not _ID.match(member_id):
        raise ParameterError(
            f"Member id {member_id!r} must be 1-128 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit."
        )
    return member_id


class Pool:
    """A pool directory. `Pool.create` makes one (or opens a matching one); `Pool.open` reads
    one; `add_member` writes a member atomically (a crash never leaves a half member)."""

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
            same = (
                pool.info["labels_sha256"] == info["labels_sha256"]
                and pool.num_classes == info["num_classes"]
            )
            if not same:
                raise DataError(
                    f"{root} already holds a pool for other labels; choose another directory."
                )
            return pool
        root.mkdir(parents=True, exist_ok=True)
        (root / "members").mkdir(exist_ok=True)
        for split, y in checked.items():
            _save_npy(root / "labels" / f"{split}.npy", y)
        write_json(root / POOL_JSON, info)  # last: its presence marks a complete pool
        return cls(root, info)

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Pool:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"Pool directory {root} does not exist.")
        if not (root / POOL_JSON).exists():
            raise DataError(f"{root} is not a pool: it has no {POOL_JSON}.")
        info = _read_json(root / POOL_JSON, "The pool description")
        if info.get("format") != POOL_FORMAT:
            raise DataError(
                f"{root} has pool format {info.get('format')!r}; this version reads format "
                f"{POOL_FORMAT}."
            )
        for key in ("num_classes", "splits", "labels_sha256"):
            if key not in info:
                raise DataError(f"{root / POOL_JSON} lacks {key!r}.")
        return cls(root, info)

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

    def labels(self, split: str) -> np.ndarray:
        self._check_split(split)
        if split not in self._labels:
            y = _load_npy(self.root / "labels" / f"{split}.npy", f"The {split} labels")
            if labels_checksum(y) != self.info["labels_sha256"][split]:
                raise DataError(f"The {split} labels of {self.root} do not match their checksum.")
            self._labels[split] = y.astype(np.int64)
        return self._labels[split]

    def member_ids(self, status: str | None = "complete") -> list[str]:
        """Ids of the members (sorted), by default only complete ones."""
        ids = []
        members = self.root / "members"
        if members.is_dir():
            for d in sorted(members.iterdir()):
                if d.name.startswith(".") or not (d / MEMBER_JSON).exists():
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
        path = self.root / "members" / check_member_id(member_id) / MEMBER_JSON
        if not path.parent.is_dir():
            raise ParameterError(f"The pool has no member {member_id!r}.")
        return _read_json(path, f"The record of member {member_id}")

    def member_dir(self, member_id: str) -> Path:
        return self.root / "members" / check_member_id(member_id)

    def probs(self, split: str, member_ids: Sequence[str] | None = None) -> np.ndarray:
        """Cached probabilities (M, N, C), float32, of the given (default: all complete)
        members, in the order given."""
        self._check_split(split)
        ids = self.member_ids() if member_ids is None else list(member_ids)
        if not ids:
            raise DataError(f"The pool {self.root} has no complete members.")
        n = self.info["splits"][split]
        out = np.empty((len(ids), n, self.num_classes), dtype=np.float32)
        for i, member_id in enumerate(ids):
            self.member(member_id)  # a clear error for an unknown id
            p = _load_npy(
                self.member_dir(member_id) / f"{split}.npy",
                f"The {split} predictions of member {member_id}",
            )
            if p.shape != (n, self.num_classes):
                raise ShapeError(
                    f"The {split} predictions of member {member_id} have shape {p.shape}, the "
                    f"pool expects {(n, self.num_classes)}."
                )
            out[i] = p
        return out

    # --- writing ---------------------------------------------------------------------------------

    def add_member(
        self,
        member_id: str,
        probs: Mapping[str, Any],
        record: Mapping[str, Any],
        weights: str | os.PathLike[str] | None = None,
        logits: bool = False,
    ) -> Path:
        """Write a member: its predictions per split (all of the pool's splits), its record and
        optionally its weights file (copied). The member appears atomically, all or nothing."""
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
            if logits:
                p = softmax(p)
            if p.shape != (self.info["splits"][split], self.num_classes):
                raise ShapeError(
                    f"The {split} predictions of {member_id} have shape {p.shape}, the pool "
                    f"expects {(self.info['splits'][split], self.num_classes)}."
                )
            try:
                checked, _ = check_probs(p)
            except ParameterError as exc:
                raise type(exc)(
                    f"The {split} predictions of {member_id} are not probabilities: "
                    f"{str(exc)[0].lower()}{str(exc)[1:]} If they are logits, import them with "
                    "logits=True (lrens pool import --logits)."
                ) from None
            arrays[split] = checked[0].astype(np.float32)
        (self.root / "members").mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{member_id}.", dir=self.root / "members"))
        try:
            for split, p in arrays.items():
                _save_npy(staging / f"{split}.npy", p)
            if weights is not None:
                write_with(staging / "model.safetensors", lambda tmp: shutil.copyfile(weights, tmp))
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
    `"preds/{member}_{split}.npy"`. Logits are converted with softmax only when `logits=True`."""
    if "{member}" not in pattern or "{split}" not in pattern:
        raise ParameterError("The predictions pattern needs both {member} and {split}.")
    label_arrays = {s: _load_npy(Path(p), f"The {s} labels") for s, p in labels.items()}
    if not label_arrays:
        raise ParameterError("Give labels for at least one split (e.g. val=labels_val.npy).")
    first = next(iter(label_arrays))
    regex = re.compile(
        "^"
        + re.escape(pattern.replace("{split}", first)).replace(
            re.escape("{member}"), "(?P<member>[A-Za-z0-9][A-Za-z0-9._-]*)"
        )
        + "$"
    )
    base = Path(pattern.replace("{split}", first).replace("{member}", "*"))
    candidates = sorted(base.parent.glob(base.name)) if base.parent.exists() else []
    members = sorted({m["member"] for c in candidates if (m := regex.match(str(c)))})
    if not members:
        raise DataError(f"No prediction files match {pattern.replace('{split}', first)}.")
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for member in members:
        arrays[member] = {}
        for split in label_arrays:
            path = Path(pattern.replace("{member}", member).replace("{split}", split))
            arrays[member][split] = _load_npy(path, f"The {split} predictions of {member}")
    if num_classes is None:
        num_classes = int(np.asarray(arrays[members[0]][first]).shape[-1])
    pool = Pool.create(root, label_arrays, num_classes, dataset or "imported")
    existing = set(pool.member_ids(status=None))
    for member in members:
        if member in existing:
            continue
        pool.add_member(
            member, arrays[member], {"method": "import", "source": pattern}, logits=logits
        )
    return pool
