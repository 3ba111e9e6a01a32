"""The exported ensemble on disk: `ensemble.json` says what the ensemble is (team, weights,
temperatures, architectures, input normalization), `weights.safetensors` holds every member's
weights under its own prefix. Reading checks the directory before anything is built from it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lrensemble.errors import CheckpointError

ENSEMBLE_FORMAT = 1
ENSEMBLE_KIND = "lrensemble-ensemble"
ENSEMBLE_JSON = "ensemble.json"
WEIGHTS_FILE = "weights.safetensors"

_MEMBER_KEYS = ("id", "weight", "temperature")
_WEIGHTED_MEMBER_KEYS = ("prefix", "model", "num_classes", "input_shape", "group")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in chunks (weights files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ensemble_dir(path: str | os.PathLike[str]) -> Path:
    """The directory of an exported ensemble, given it or its `ensemble.json`."""
    path = Path(path)
    return path.parent if path.name == ENSEMBLE_JSON and path.is_file() else path


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check `ensemble.json` of an exported ensemble (the directory or the file).

    Raises `CheckpointError` with one sentence when the directory is missing, is not an export,
    or its description is truncated, of another format or lacks a field.
    """
    root = ensemble_dir(path)
    if not root.exists():
        raise CheckpointError(f"Exported ensemble {root} does not exist.")
    if not root.is_dir():
        raise CheckpointError(f"{root} is not an exported ensemble: it is a file, not a directory.")
    file = root / ENSEMBLE_JSON
    if not file.is_file():
        raise CheckpointError(f"{root} is not an exported ensemble: it has no {ENSEMBLE_JSON}.")
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file} is unreadable or truncated ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != ENSEMBLE_KIND:
        raise CheckpointError(f"{file} does not describe an ensemble exported by lrensemble.")
    if manifest.get("format") != ENSEMBLE_FORMAT:
        raise CheckpointError(
            f"{file} has format {manifest.get('format')!r}; this version reads format "
            f"{ENSEMBLE_FORMAT}."
        )
    _check_fields(manifest, file)
    return manifest


def _check_fields(manifest: dict[str, Any], file: Path) -> None:
    for key in ("members", "temperature", "has_weights", "num_classes"):
        if key not in manifest:
            raise CheckpointError(f"{file} lacks {key!r}.")
    members = manifest["members"]
    if not isinstance(members, list) or not members:
        raise CheckpointError(f"{file} lists no members.")
    needed = _MEMBER_KEYS + (_WEIGHTED_MEMBER_KEYS if manifest["has_weights"] else ())
    for i, member in enumerate(members):
        missing = [k for k in needed if not isinstance(member, dict) or k not in member]
        if missing:
            raise CheckpointError(f"{file}: members[{i}] lacks {', '.join(map(repr, missing))}.")
    if manifest["has_weights"]:
        for key in ("weights_file", "weights_sha256", "input_shape"):
            if not manifest.get(key):
                raise CheckpointError(f"{file} lacks {key!r}.")


__all__ = [
    "ENSEMBLE_FORMAT",
    "ENSEMBLE_JSON",
    "ENSEMBLE_KIND",
    "WEIGHTS_FILE",
    "ensemble_dir",
    "file_sha256",
    "read_manifest",
]
