"""Predictions written as float32 .npy, atomically, to a path checked before any work is done
(so a bad `--out` fails at once and nothing is left behind)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lrensemble.atomic import file_in_the_way, write_with
from lrensemble.errors import DataError, ParameterError


def check_output_file(path: str | os.PathLike[str]) -> Path:
    """Refuse an output path that is a directory, does not end in .npy, lies under a file, or
    cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"Cannot write {path}: it is a directory; give a file name.")
    if path.suffix.lower() != ".npy":
        raise ParameterError(
            f"Cannot write {path}: the probabilities are saved as a binary .npy array, so give "
            "a file name ending in .npy."
        )
    blocking = file_in_the_way(path.parent)
    if blocking is not None:
        raise DataError(f"Cannot write {path}: {blocking} is a file, not a directory.")
    parent = next(p for p in path.parents if p.exists())
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"Cannot write {path}: {parent} is not writable.")
    return path


def save_probabilities(path: str | os.PathLike[str], probs: Any) -> Path:
    """Write probabilities (N, C) as float32 .npy (no pickle), atomically."""
    path = check_output_file(path)
    array = np.asarray(probs, dtype=np.float32)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    try:
        return write_with(path, write)
    except OSError as exc:
        raise DataError(f"Cannot write {path} ({exc.strerror or exc}).") from None


__all__ = ["check_output_file", "save_probabilities"]
