"""Inputs for an exported ensemble: read from .npy, .npz or CSV files (with the readers of the
file datasets, so both fail alike) and checked and shaped into the batch (N, *input_shape) its
members take. Every problem is one `DataError` sentence that names the file."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrensemble.data.files import (
    is_number,
    looks_like_header,
    read_csv_table,
    read_npy,
    read_npz,
)
from lrensemble.errors import DataError, ParameterError

CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
NPZ_KEYS = ("x", "x_test")


def read_inputs(
    path: str | os.PathLike[str],
    *,
    key: str | None = None,
    label_column: str | None = None,
    columns: Sequence[str] | None = None,
    label: str | int | None = None,
    size: int | None = None,
    notes: list[str] | None = None,
) -> np.ndarray:
    """The input array of a file: `.npy`; `.npz` (its only array, the array `key`, or one named
    `x` or `x_test`); `.csv`/`.tsv` (see `read_csv`; `columns`, `label` and `size` are what the
    export recorded of the training file; warnings are appended to `notes`). Shapes are checked
    later, against the ensemble (`as_batch`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if key is not None and suffix != ".npz":
        raise ParameterError("A key (--key) selects an array of a .npz file only.")
    if label_column is not None and suffix not in CSV_SUFFIXES:
        raise ParameterError("A label column (--label-column) applies to CSV inputs only.")
    if not path.exists():
        raise DataError(f"Input file {path} does not exist.")
    if path.is_dir():
        raise DataError(
            f"Input file {path} is a directory; lrens predict reads .npy, .npz or .csv files "
            "(save images as an (N, C, H, W) array)."
        )
    if suffix == ".npy":
        return read_npy(path)
    if suffix == ".npz":
        return _npz_array(path, key)
    if suffix in CSV_SUFFIXES:
        return read_csv(
            path,
            label_column,
            CSV_SUFFIXES[suffix],
            columns=columns,
            label=label,
            size=size,
            notes=notes,
        )
    raise DataError(
        f"Input file {path} has an unknown format ({suffix or 'no extension'}); give .npy, .npz "
        "or .csv."
    )


def _npz_array(path: Path, key: str | None) -> np.ndarray:
    arrays = read_npz(path)
    names = list(arrays)
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
    return arrays[key]


def _index(label_column: str, width: int) -> int | None:
    """`--label-column` as a 0-based column index; None when it is a name."""
    try:
        index = int(label_column)
    except ValueError:
        return None
    if not -width <= index < width:
        raise ParameterError(f"Label column {index} is outside the file's {width} columns.")
    return index % width


def read_csv(
    path: str | os.PathLike[str],
    label_column: str | None = None,
    delimiter: str = ",",
    *,
    columns: Sequence[str] | None = None,
    label: str | int | None = None,
    size: int | None = None,
    notes: list[str] | None = None,
) -> np.ndarray:
    """Feature rows (N, F) of a CSV file as float32.

    With a header and `columns` (the training file's feature names), those columns are taken by
    name, in any order; others (the label, ids, notes) are ignored. Otherwise every column is a
    feature except the label: `label_column` (a header name or 0-based index), else the
    recorded `label` (a header name, or an index dropped when a row holds `size` + 1 values).
    A first row of `size` + 1 cells holding none of `columns`, whose one cell that is not a
    number is a class name, is data: that column is the label. A header read by position (the
    ensemble was trained on a CSV without one: `label` an index) adds a warning to `notes`.
    """
    path = Path(path)

    def layout(first: list[str]) -> tuple[bool, list[int], None]:
        width = len(first)
        index = None if label_column is None else _index(label_column, width)
        name = label if label_column is None else label_column
        if index is None and isinstance(name, str) and name in first:
            drop, header = first.index(name), True
        else:  # a label by index (the option's, or the recorded one when a row has one extra)
            drop = index
            if label_column is None and isinstance(label, int) and width == (size or 0) + 1:
                drop = label % width if -width <= label < width else None
            words = [j for j, c in enumerate(first) if not is_number(c)]
            by_name = index is None and isinstance(name, str) and width == (size or 0) + 1
            if by_name and len(words) == 1 and columns and not set(columns) & set(first):
                drop = words[0]  # a class name in a file without a header
            header = looks_like_header(first, drop)  # a class name there is no header
        if header and notes is not None and not columns and isinstance(label, int):
            notes.append(
                f"{path} has a header, but its columns are taken by position: the ensemble was "
                "trained on a CSV without column names."
            )
        if header and columns:
            missing = [c for c in columns if c not in first]
            if missing:
                raise DataError(
                    f"Input file {path} lacks the feature column{'s' * (len(missing) > 1)} "
                    f"{', '.join(map(repr, missing))} the ensemble was trained on."
                )
            return True, [first.index(c) for c in columns], None
        return header, [j for j in range(len(first)) if j != drop], None

    return read_csv_table(path, delimiter, layout).x.astype(np.float32)


def fit_shape(a: Any, input_shape: Sequence[int] | None, what: str = "The inputs") -> Any:
    """A batch `a` (numpy or torch, (N, ...)) as (N, *input_shape): samples of that shape pass,
    flat rows (N, F) of the right size are reshaped; any other shape is one `DataError`
    sentence starting with `what` (reshaping, say, channels-last images would scramble them)."""
    if input_shape is None:
        return a
    shape, got = tuple(int(s) for s in input_shape), tuple(a.shape[1:])
    if got == shape:
        return a
    want_n, got_n = math.prod(shape), math.prod(got)
    if a.ndim == 2 and got_n == want_n:
        return a.reshape(len(a), *shape)
    if got_n != want_n:
        hint = ""
        if got_n == want_n + 1:
            hint = " (is a label column left in? drop it with --label-column)"
        raise DataError(
            f"{what} have samples of shape {got} ({got_n} values); the ensemble takes {shape} "
            f"({want_n} values){hint}."
        )
    if len(shape) > 1 and got == shape[1:] + shape[:1]:
        axes = (0, len(shape), *range(1, len(shape)))
        raise DataError(
            f"{what} have channels-last samples of shape {got}; the ensemble takes {shape}, "
            f"channels first: transpose them, e.g. x.transpose{axes}."
        )
    raise DataError(
        f"{what} have samples of shape {got}; the ensemble takes {shape} (or flat rows of "
        f"{want_n} values)."
    )


def as_batch(x: Any, input_shape: Sequence[int] | None, what: str = "The inputs") -> np.ndarray:
    """Inputs as a float32 batch (N, *input_shape) (`fit_shape`: a CSV row of 40 values becomes
    (1, 40)); text, too few dimensions, another sample shape, no samples, NaN or infinity is one
    `DataError` sentence starting with `what`."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise DataError(f"{what} hold values of type {a.dtype}, not numbers.")
    if a.ndim < 2:
        raise DataError(f"{what} need one row per sample; got shape {a.shape}.")
    if len(a) == 0:
        raise DataError(f"{what} hold no samples.")
    a = np.ascontiguousarray(fit_shape(a, input_shape, what), dtype=np.float32)
    if not np.isfinite(a).all():
        raise DataError(f"{what} contain NaN or infinite values.")
    return a


__all__ = ["as_batch", "fit_shape", "read_csv", "read_inputs"]
