"""Inputs for an exported ensemble: read from .npy, .npz or CSV files, and checked and shaped
into the batch (N, *input_shape) its members take. Every problem is one `DataError` sentence
that names the file."""

from __future__ import annotations

import csv
import math
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrensemble.errors import DataError, ParameterError

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
NPZ_KEYS = ("x", "x_test")


def read_inputs(
    path: str | os.PathLike[str], *, key: str | None = None, label_column: str | None = None
) -> np.ndarray:
    """The input array of a file: `.npy`; `.npz` (its only array, the array `key`, or one named
    `x` or `x_test`); `.csv`/`.tsv` (numbers, one sample per row; a first row with a cell that is
    not a number is a header; `label_column`, a header name or a 0-based index, is dropped when
    present). Shapes are checked later, against the ensemble (`as_batch`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if key is not None and suffix != ".npz":
        raise ParameterError("A key (--key) selects an array of a .npz file only.")
    if label_column is not None and suffix not in CSV_SUFFIXES:
        raise ParameterError("A label column (--label-column) applies to CSV inputs only.")
    if not path.exists():
        raise DataError(f"Input file {path} does not exist.")
    if path.is_dir():
        raise DataError(f"Input file {path} is a directory.")
    if suffix == ".npy":
        return _load(path, lambda: np.load(path, allow_pickle=False))
    if suffix == ".npz":
        return _load(path, lambda: _npz_array(path, key))
    if suffix in CSV_SUFFIXES:
        return read_csv(path, label_column, CSV_SUFFIXES[suffix])
    raise DataError(
        f"Input file {path} has an unknown format ({suffix or 'no extension'}); give .npy, .npz "
        "or .csv."
    )


def _load(path: Path, loader: Any) -> np.ndarray:
    try:
        return np.asarray(loader())
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(f"Input file {path} is unreadable or truncated ({exc}).") from None


def _npz_array(path: Path, key: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as npz:
        names = list(npz.files)
        if key is None:
            if len(names) == 1:
                key = names[0]
            else:
                key = next((k for k in NPZ_KEYS if k in names), None)
                if key is None:
                    raise DataError(
                        f"Input file {path} holds arrays {', '.join(names) or '(none)'}; name the "
                        "inputs with --key."
                    )
        elif key not in names:
            raise DataError(
                f"Input file {path} has no array {key!r}; it has {', '.join(names) or 'none'}."
            )
        return npz[key]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _label_index(label_column: str | None, header: list[str] | None, width: int) -> int | None:
    if label_column is None:
        return None
    if header is not None and label_column in header:
        return header.index(label_column)
    try:
        index = int(label_column)
    except ValueError:
        return None  # a named label column that this file does not have: nothing to drop
    if not -width <= index < width:
        raise ParameterError(f"Label column {index} is outside the file's {width} columns.")
    return index % width


def read_csv(
    path: str | os.PathLike[str], label_column: str | None = None, delimiter: str = ","
) -> np.ndarray:
    """Numeric rows (N, F) of a CSV file as float32, without its header and label column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Input file {path} is unreadable ({exc}).") from None
    reader = csv.reader(text.splitlines(), delimiter=delimiter)
    try:
        rows = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise DataError(f"Input file {path} is not valid CSV ({exc}).") from None
    if not rows:
        raise DataError(f"Input file {path} holds no rows.")
    first = [c.strip() for c in rows[0][1]]
    header = first if any(c and not _is_number(c) for c in first) else None
    body = rows[1:] if header is not None else rows
    width = len(first)
    drop = _label_index(label_column, header, width)
    values: list[list[float]] = []
    for line, row in body:
        if len(row) != width:
            raise DataError(
                f"Input file {path} line {line} has {len(row)} values; the first row has {width}."
            )
        try:
            values.append([float(c) for j, c in enumerate(row) if j != drop])
        except ValueError:
            j, cell = next((j, c) for j, c in enumerate(row) if j != drop and not _is_number(c))
            raise DataError(
                f"Input file {path} line {line}, column {j + 1}: {cell.strip()!r} is not a number."
            ) from None
    if not values:
        raise DataError(f"Input file {path} holds a header but no rows.")
    return np.asarray(values, dtype=np.float32)


def as_batch(x: Any, input_shape: Sequence[int] | None, what: str = "The inputs") -> np.ndarray:
    """Inputs as a float32 batch (N, *input_shape): rows of the right size are reshaped (a
    CSV row of 40 values becomes (1, 40)); anything else (text, too few dimensions, another
    sample size, no samples, NaN or infinity) is one `DataError` sentence starting with
    `what`."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise DataError(f"{what} hold values of type {a.dtype}, not numbers.")
    if a.ndim < 2:
        raise DataError(f"{what} need one row per sample; got shape {a.shape}.")
    if len(a) == 0:
        raise DataError(f"{what} hold no samples.")
    if input_shape is not None and tuple(a.shape[1:]) != tuple(input_shape):
        want, got = math.prod(input_shape), math.prod(a.shape[1:])
        if want != got:
            hint = ""
            if got == want + 1:
                hint = " (is a label column left in? drop it with --label-column)"
            raise DataError(
                f"{what} have samples of shape {tuple(a.shape[1:])} ({got} values); the ensemble "
                f"takes {tuple(input_shape)} ({want} values){hint}."
            )
        a = a.reshape(len(a), *input_shape)
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise DataError(f"{what} contain NaN or infinite values.")
    return a


__all__ = ["as_batch", "read_csv", "read_inputs"]
