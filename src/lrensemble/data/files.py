"""Datasets from a user's own files: `.npz`/`.npy` arrays (`npz`) and CSV tables (`csv`); image
folders are in `images.py`. `data_table` turns the command line's `--data` arguments into a
`[data]` table.

Every loader reads its files once (nothing is cached or written), turns each problem with a file
into one `DataError` sentence naming it, carves missing test and validation splits with a seed,
fits a `Normalization` on the training split alone, applies it to every split and records it in
`Dataset.info`, so an exported ensemble can apply the same transform to raw inputs.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lrensemble.data.base import Dataset, carve_validation, content_digest, from_arrays
from lrensemble.data.normalize import Normalization, check_per
from lrensemble.data.registry import register_dataset
from lrensemble.errors import DataError, ParameterError

LABEL_COLUMNS = ("label", "target", "class", "y")  # default label column of a CSV with a header
SPLIT_NAMES = ("train", "test", "val")
_SHOWN = 6  # at most this many names or values in one message
_CSV_BLOCK = 4096  # CSV rows converted to floats at a time

PathSpec = str | Sequence[str]


# --- one split, its checks and the common assembly ------------------------------------------------


@dataclass
class Split:
    """One split as read from its files, before any check: inputs (N, ...), raw labels (N,)
    (integers, floats or strings), and how messages name them.

    `rows` holds the CSV line of every sample, so messages can point into the file; without
    it samples are named by their index.
    """

    x: np.ndarray
    y: np.ndarray
    x_name: str
    y_name: str
    rows: np.ndarray | None = None

    def where(self, i: int) -> str:
        return f"line {int(self.rows[i])}" if self.rows is not None else f"index {i}"


def _some(values: Sequence[Any]) -> str:
    """`a, b, c` or `a, b, c, ... (12 in all)`: lists in messages stay one short sentence."""
    shown = ", ".join(str(v) for v in list(values)[:_SHOWN])
    return shown if len(values) <= _SHOWN else f"{shown}, ... ({len(values)} in all)"


def _check_split(s: Split) -> None:
    """Numeric inputs with one row per sample, as many labels as samples, finite values."""
    if s.x.dtype.kind not in "biuf":
        raise DataError(f"{s.x_name} must hold numbers, got dtype {s.x.dtype}.")
    if s.x.ndim < 2:
        raise DataError(f"{s.x_name} must have one row per sample, got shape {s.x.shape}.")
    if len(s.x) == 0:
        raise DataError(f"{s.x_name} holds no samples.")
    if s.y.ndim == 2 and s.y.shape[1] == 1:
        s.y = s.y[:, 0]
    if s.y.ndim != 1:
        raise DataError(f"{s.y_name} must hold one label per sample, got shape {s.y.shape}.")
    if len(s.y) != len(s.x):
        raise DataError(f"{s.y_name} has {len(s.y)} labels but {s.x_name} has {len(s.x)} samples.")
    if s.x.dtype.kind == "f":
        bad = ~np.isfinite(s.x.reshape(len(s.x), -1)).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{s.x_name} contains NaN or infinite values ({s.where(i)}).")


def _class_indices(s: Split) -> np.ndarray:
    """Numeric labels as int64 class indices; missing, fractional or negative ones are errors."""
    y = s.y
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        for bad, what in (
            (np.isnan(y), "a missing label (NaN)"),
            (np.isinf(y), "an infinite label"),
        ):
            if bad.any():
                raise DataError(f"{s.y_name} has {what} ({s.where(int(np.argmax(bad)))}).")
        frac = y != np.round(y)
        if frac.any():
            i = int(np.argmax(frac))
            raise DataError(
                f"{s.y_name} holds fractions such as {y[i]:g} ({s.where(i)}); labels must be "
                "class indices 0, 1, 2, ... or class names."
            )
    elif y.dtype.kind not in "iu":
        raise DataError(f"{s.y_name} must hold class indices or names, got dtype {y.dtype}.")
    neg = y < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise DataError(
            f"{s.y_name} holds the negative label {y[i]:g} ({s.where(i)}); class indices start "
            "at 0."
        )
    return y.astype(np.int64)


def _names(s: Split) -> np.ndarray:
    names = np.char.strip(s.y.astype(str))
    empty = names == ""
    if empty.any():
        raise DataError(f"{s.y_name} has a missing label ({s.where(int(np.argmax(empty)))}).")
    return names


def _unseen(s: Split, unseen: np.ndarray, mask: np.ndarray) -> DataError:
    """Labels of `s` (at `mask`) that the training split lacks: one sentence naming the first."""
    owner = s.x_name if s.rows is not None else s.y_name  # a CSV split: its file
    return DataError(
        f"{owner} has labels that the training data lacks: {_some(unseen.tolist())} (first at "
        f"{s.where(int(np.argmax(mask)))})."
    )


def _encode_labels(
    train: Split, others: list[Split]
) -> tuple[np.ndarray, list[np.ndarray], list[str] | None]:
    """Class indices for every split, and the class names when labels are strings.

    Names become indices in sorted order of the training labels; a label of another split that
    the training split lacks is an error either way (no model could learn that class).
    """
    if train.y.dtype.kind in "US":
        classes = np.unique(_names(train))
        out = []
        for s in others:
            if s.y.dtype.kind not in "US":
                raise DataError(f"{s.y_name} holds numbers but the training labels are names.")
            names = _names(s)
            pos = np.minimum(np.searchsorted(classes, names), len(classes) - 1)
            mask = classes[pos] != names
            if mask.any():
                raise _unseen(s, np.unique(names[mask]), mask)
            out.append(pos.astype(np.int64))
        return np.searchsorted(classes, _names(train)).astype(np.int64), out, classes.tolist()
    y_train = _class_indices(train)
    seen = np.unique(y_train)
    out = []
    for s in others:
        if s.y.dtype.kind in "US":
            raise DataError(f"{s.y_name} holds names but the training labels are class indices.")
        y = _class_indices(s)
        mask = ~np.isin(y, seen)
        if mask.any():
            raise _unseen(s, np.unique(y[mask]), mask)
        out.append(y)
    return y_train, out, None


def _sample_shape(shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = [shape]
    if (
        not isinstance(shape, list | tuple)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    ):
        raise ParameterError(
            f"shape must be a list of positive integers such as [1, 64], got {shape!r}."
        )
    return tuple(shape)


def _reshape(s: Split, shape: tuple[int, ...]) -> np.ndarray:
    have = math.prod(s.x.shape[1:])
    if math.prod(shape) != have:
        raise DataError(
            f"shape {list(shape)} holds {math.prod(shape)} values per sample but {s.x_name} has "
            f"{have} (samples shaped {tuple(s.x.shape[1:])})."
        )
    return s.x.reshape(len(s.x), *shape)


def _num(value: Any) -> float:
    """`value` as a float for range checks; NaN (failing every check) when not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _check_number(name: str, value: Any, ok: bool, interval: str) -> None:
    if not ok:
        raise ParameterError(f"{name} must be a number in {interval}, got {value!r}.")


def check_options(normalize: Any, val_fraction: Any, test_fraction: Any, seed: Any) -> str:
    """Check the options every file loader shares, before any file is read; returns
    `normalize`."""
    per = check_per(normalize)
    _check_number("val_fraction", val_fraction, 0.0 <= _num(val_fraction) < 1.0, "[0, 1)")
    _check_number("test_fraction", test_fraction, 0.0 < _num(test_fraction) < 1.0, "(0, 1)")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ParameterError(f"seed must be an integer, got {seed!r}.")
    return per


def _carve(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, carved) indices: the same seeded choice `carve_validation` makes."""
    idx = torch.arange(n)
    kept, _, carved, _ = carve_validation(idx, idx, fraction, seed)
    return kept.numpy(), carved.numpy()


def assemble(
    name: str,
    train: Split,
    test: Split | None,
    val: Split | None,
    *,
    source: dict[str, Any],
    normalize: str = "channel",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
    shape: Any = None,
    scale: float = 1.0,
    classes: list[str] | None = None,
    image: bool | None = None,
) -> Dataset:
    """The `Dataset` of splits read from files: checked, labels encoded, optionally reshaped,
    test (absent `test`) and validation (absent `val`) carved from train with `seed`, then
    normalized with statistics of the final training split (inputs times `scale` first).

    `classes` (with integer labels) names the classes, as image folders do; string labels
    name them otherwise. `image` defaults to True for (N, C, H, W) inputs.
    """
    per = check_options(normalize, val_fraction, test_fraction, seed)
    shape = _sample_shape(shape)
    given = [s for s in (train, test, val) if s is not None]
    for s in given:
        _check_split(s)
    for s in given[1:]:
        if s.x.shape[1:] != train.x.shape[1:]:
            raise DataError(
                f"{s.x_name} has samples shaped {tuple(s.x.shape[1:])} but {train.x_name} has "
                f"{tuple(train.x.shape[1:])}."
            )
    keys = [k for k, s in (("test", test), ("val", val)) if s is not None]
    others = [s for s in (test, val) if s is not None]
    y_train, y_others, names = _encode_labels(train, others)
    if classes is None:
        classes = names
    num_classes = len(classes) if classes is not None else int(y_train.max()) + 1
    x_train = _reshape(train, shape) if shape else train.x
    x_by = {k: _reshape(s, shape) if shape else s.x for k, s in zip(keys, others, strict=True)}
    y_by = dict(zip(keys, y_others, strict=True))
    n_file = len(y_train)
    if test is None:
        kept, cut = _carve(len(y_train), test_fraction, seed)
        if len(cut) == 0:
            raise DataError(
                f"test_fraction {test_fraction:g} of {n_file} samples leaves no test samples; "
                "give a test file or more data."
            )
        x_by["test"], y_by["test"] = x_train[cut], y_train[cut]
        x_train, y_train = x_train[kept], y_train[kept]
    if val is None:
        kept, cut = _carve(len(y_train), val_fraction, seed)
        if len(cut) == 0 and val_fraction > 0:
            raise DataError(
                f"val_fraction {val_fraction:g} of {len(y_train)} training samples leaves no "
                "validation samples; give a validation file or more data."
            )
        x_by["val"], y_by["val"] = x_train[cut], y_train[cut]
        x_train, y_train = x_train[kept], y_train[kept]
    if len(y_train) == 0:
        raise DataError(f"Carving test and validation from {n_file} samples leaves none to train.")
    norm = Normalization.fit(x_train, per, scale)
    ds = from_arrays(
        norm.apply(x_train),
        y_train,
        norm.apply(x_by["test"]),
        y_by["test"],
        norm.apply(x_by["val"]),
        y_by["val"],
        num_classes=num_classes,
        name=name,
        image=image if image is not None else x_train.ndim == 4,
    )
    ds.info.update(
        {
            "source": source,
            "normalization": norm.to_dict(),
            "val_fraction": val_fraction if val is None else None,
            "test_fraction": test_fraction if test is None else None,
            "split_seed": seed,
            "sha256": content_digest(ds),
        }
    )
    if classes is not None:
        ds.info["classes"] = list(classes)
    return ds


# --- files ---------------------------------------------------------------------------------------


def existing_file(path: Any, what: str) -> Path:
    """`path` as a `Path` (with `~` expanded) if it is a file, else one `DataError` sentence."""
    if not isinstance(path, str | Path):
        raise ParameterError(f"{what} must be a file path, got {path!r}.")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{what} {path} does not exist.")
    if not p.is_file():
        raise DataError(f"{what} {path} is not a file.")
    return p


_ZIP_MAGIC, _NPY_MAGIC = b"PK\x03\x04", b"\x93NUMPY"


def _magic(path: Path) -> bytes:
    """The first bytes of a file, which tell .npy, .npz (zip) and other files apart."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(_NPY_MAGIC))
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc}).") from None


def _read_npy_or_npz(path: Path) -> Any:
    try:
        obj = np.load(path, allow_pickle=False)
        if hasattr(obj, "files"):  # an .npz: read every member now, so truncation fails here
            with obj:
                return {k: obj[k] for k in obj.files}
        return obj
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # an object array (the magic bytes were checked)
            raise DataError(
                f"{path} holds object arrays, but pickled arrays are refused; save arrays of "
                "numbers or strings."
            ) from None
        raise DataError(f"{path} is not a readable .npy/.npz file ({exc}).") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path} is not a readable .npy/.npz file ({exc}).") from None


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an `.npz` archive (pickled objects refused)."""
    magic = _magic(path)
    if magic.startswith(_NPY_MAGIC):
        raise DataError(f"{path} holds a single array (.npy), not an .npz archive of named arrays.")
    if not magic.startswith(_ZIP_MAGIC):
        raise DataError(f"{path} is not a .npz (zip) file.")
    return _read_npy_or_npz(path)


def read_npy(path: Path) -> np.ndarray:
    """The array of an `.npy` file (pickled objects refused)."""
    magic = _magic(path)
    if magic.startswith(_ZIP_MAGIC):
        raise DataError(f"{path} is an .npz archive, but a single .npy array is expected here.")
    if not magic.startswith(_NPY_MAGIC):
        raise DataError(f"{path} is not a .npy file.")
    return _read_npy_or_npz(path)


def _wrong_keys(path: Path, found: Sequence[str], expected: str) -> DataError:
    shown = _some(sorted(found)) if found else "no arrays"
    return DataError(f"{path} holds {shown}; expected {expected}.")


NPZ_EXPECTED = (
    "x_train, y_train, x_test, y_test and optionally x_val, y_val (or x, y with optional "
    "x_test, y_test, x_val, y_val)"
)


def _npz_splits(path: Path) -> tuple[Split, Split | None, Split | None]:
    arrays = read_npz(path)
    keys = set(arrays)
    train_keys = [p for p in (("x_train", "y_train"), ("x", "y")) if set(p) <= keys]
    pairs = [*train_keys[:1], ("x_test", "y_test"), ("x_val", "y_val")]
    allowed = {k for p in pairs for k in p}
    partial = [p for p in pairs if len(set(p) & keys) == 1]
    if len(train_keys) != 1 or keys - allowed or partial:
        raise _wrong_keys(path, list(keys), NPZ_EXPECTED)

    def split(xk: str, yk: str) -> Split | None:
        if xk not in keys:
            return None
        return Split(arrays[xk], arrays[yk], f"{xk} in {path}", f"{yk} in {path}")

    return split(*train_keys[0]), split("x_test", "y_test"), split("x_val", "y_val")


def _npz_split(spec: Any, split: str) -> Split:
    """One split from an .npz holding `x` and `y`, or from [inputs.npy, labels.npy]."""
    if isinstance(spec, str | Path):
        path = existing_file(spec, f"{split} =")
        arrays = read_npz(path)
        if set(arrays) != {"x", "y"}:
            raise _wrong_keys(path, list(arrays), "x and y")
        return Split(arrays["x"], arrays["y"], f"x in {path}", f"y in {path}")
    if isinstance(spec, list | tuple) and len(spec) == 2:
        xp, yp = (existing_file(p, f"{split} =") for p in spec)
        return Split(read_npy(xp), read_npy(yp), str(xp), str(yp))
    raise ParameterError(
        f"{split} must be an .npz file holding x and y, or a list of two .npy files "
        f"[inputs, labels]; got {spec!r}."
    )


@register_dataset("npz")
def load_npz(
    *,
    path: str | None = None,
    train: PathSpec | None = None,
    test: PathSpec | None = None,
    val: PathSpec | None = None,
    shape: list[int] | None = None,
    normalize: str = "channel",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Arrays from `.npz`/`.npy` files: `path` (one .npz) or `train`/`test`/`val` files.

    `path` holds x_train, y_train, x_test, y_test (optionally x_val, y_val), or x, y alone
    (then a seeded `test_fraction` becomes the test split). Each of `train`, `test`, `val` is
    an .npz holding x and y, or a list [inputs.npy, labels.npy]. Without validation arrays a
    seeded `val_fraction` of train is carved off. Labels are class indices or class names.
    `shape` reshapes every sample (e.g. [1, 64]); `normalize` is "channel", "feature" or
    "none", fitted on the training split.
    """
    check_options(normalize, val_fraction, test_fraction, seed)
    _sample_shape(shape)
    if path is not None and (train, test, val) != (None, None, None):
        raise ParameterError("npz takes either path or train (with test and val), not both.")
    if path is not None:
        p = existing_file(path, "path =")
        tr, te, va = _npz_splits(p)
        source: dict[str, Any] = {"path": str(path)}
    elif train is not None:
        tr = _npz_split(train, "train")
        te = _npz_split(test, "test") if test is not None else None
        va = _npz_split(val, "val") if val is not None else None
        source = {
            k: v if isinstance(v, str) else [str(p) for p in v]
            for k, v in (("train", train), ("test", test), ("val", val))
            if v is not None
        }
    else:
        raise ParameterError("npz needs path = an .npz file, or train = ... (with test, val).")
    return assemble(
        "npz",
        tr,
        te,
        va,
        source=source,
        normalize=normalize,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        shape=shape,
    )


# --- CSV -----------------------------------------------------------------------------------------


def is_number(cell: str) -> bool:
    """Whether a CSV cell reads as a float."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank row, read lazily. Cells keep their surrounding
    spaces (numpy's float parsing ignores them; names and labels are stripped where used)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path} cannot be read ({exc.strerror or exc}).") from None
    if b"\x00" in raw:
        raise DataError(f"{path} is a binary file, not a CSV text file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text, so it cannot be read as CSV.") from None
    del raw
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            if any(c and not c.isspace() for c in cells):
                yield reader.line_num, cells
    except csv.Error as exc:
        raise DataError(f"{path} line {reader.line_num} is not valid CSV ({exc}).") from None


def _floats(
    cells: Sequence[Sequence[str]],
    path: Path,
    lines: list[int],
    cols: list[int],
    names: list[str] | None,
) -> np.ndarray:
    """Feature cells as float64 (rows, F); the first non-numeric cell is an error."""
    try:
        return np.array(cells, dtype=np.float64).reshape(len(cells), len(cols))
    except ValueError:
        pass
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            if not is_number(cell):
                col = cols[c]
                named = f" ({names[col]})" if names else ""
                cell = cell.strip()
                what = "is empty" if cell == "" else f"holds {cell!r}, which is not a number"
                raise DataError(f"{path} line {lines[r]}, column {col + 1}{named} {what}.")
    return np.array([[float(c) for c in row] for row in cells], dtype=np.float64)


@dataclass
class CsvTable:
    """A CSV file as `read_csv_table` read it: the header (stripped names; None without one),
    the feature columns taken (indices, in the order taken) and the label column (an index or
    None), the features as float64 (N, F), the file line of every row and the stripped label
    cells (empty without a label column)."""

    header: list[str] | None
    columns: list[int]
    label: int | None
    x: np.ndarray
    lines: np.ndarray
    labels: list[str]


CsvLayout = Callable[[list[str]], tuple[bool, list[int], int | None]]


def looks_like_header(cells: Sequence[str], skip: int | None = None) -> bool:
    """Whether a first row is a header: one of its cells (other than column `skip`, e.g. a
    label column, whose values may be names) is not a number."""
    return any(not is_number(c) for j, c in enumerate(cells) if j != skip)


def _whole_rows(first: list[str]) -> tuple[bool, list[int], int | None]:
    return looks_like_header(first), list(range(len(first))), None


def read_csv_table(
    path: str | Path, delimiter: str = ",", layout: CsvLayout | None = None
) -> CsvTable:
    """The rows of a CSV file, the chosen columns converted to floats in blocks (so a large file
    never sits in memory as Python strings all at once).

    `layout(first_row)` (cells stripped) says whether that row is a header, which columns are
    features and which one is the label (or None); by default a first row with a cell that is
    not a number is a header and every column is a feature. Blank lines are skipped; a ragged
    row, a feature cell that is not a number, an empty label or no data rows is one `DataError`
    sentence naming the file and line.
    """
    path = Path(path)
    rows = _csv_rows(path, delimiter)
    first_line, first = next(rows, (0, []))
    first = [c.strip() for c in first]
    if not first:
        raise DataError(f"{path} holds no rows.")
    header, cols, idx = (layout or _whole_rows)(first)
    if not cols:
        raise DataError(f"{path} has no feature columns.")
    width = len(first)
    names = first if header else None
    pick = itemgetter(*cols) if len(cols) > 1 else lambda cells: (cells[cols[0]],)
    blocks: list[np.ndarray] = []
    labels: list[str] = []
    lines: list[int] = []
    block: list[Sequence[str]] = []
    for line, cells in rows if header else itertools.chain([(first_line, first)], rows):
        if len(cells) != width:
            raise DataError(
                f"{path} line {line} has {len(cells)} cells but line {first_line} has {width}; "
                "every row needs the same columns."
            )
        if idx is not None:
            cell = cells[idx].strip()
            if cell == "":
                raise DataError(f"{path} line {line} has no label (column {idx + 1}).")
            labels.append(cell)
        block.append(pick(cells))
        lines.append(line)
        if len(block) == _CSV_BLOCK:
            blocks.append(_floats(block, path, lines[-len(block) :], cols, names))
            block = []
    if block:
        blocks.append(_floats(block, path, lines[-len(block) :], cols, names))
    if not lines:
        raise DataError(f"{path} holds a header but no data rows.")
    return CsvTable(names, cols, idx, np.concatenate(blocks), np.asarray(lines), labels)


@dataclass
class _Table:
    split: Split
    features: list[str] | None  # feature column names when the file has a header
    labels: list[str]
    label_column: str | int | None  # its header name, or its index without a header


def _read_csv(path: Path, label: str | int | None, header: bool | None, delimiter: str) -> _Table:
    """One CSV file as a split: the label column as `label` says (default: a header column
    named label, target, class or y, else the last), every other column a feature."""

    def layout(first: list[str]) -> tuple[bool, list[int], int]:
        width = len(first)
        if width < 2:
            raise DataError(
                f"{path} has a single column; a CSV needs feature columns and a label; if its "
                'values are separated by another character, set delimiter (e.g. delimiter = ";").'
            )
        named = header
        idx: int | None = None
        if isinstance(label, int):
            idx = label + width if label < 0 else label
            if not 0 <= idx < width:
                raise DataError(f"label = {label} is not a column of {path}, which has {width}.")
        elif isinstance(label, str):
            if label not in first:
                raise DataError(
                    f"{path} has no column named {label!r}; its first row is {_some(first)}."
                )
            idx = first.index(label)
            named = True
        if named is None:  # a header has a non-numeric cell where features would be
            named = looks_like_header(first, idx if idx is not None else width - 1)
        if idx is None:
            lowered = [c.lower() for c in first] if named else []
            idx = next((lowered.index(n) for n in LABEL_COLUMNS if n in lowered), width - 1)
        return named, [j for j in range(width) if j != idx], idx

    table = read_csv_table(path, delimiter, layout)
    names, idx = table.header, table.label
    split = Split(table.x, np.empty(0), str(path), f"the labels of {path}", table.lines)
    features = [names[j] for j in table.columns] if names else None
    return _Table(split, features, table.labels, names[idx] if names and idx is not None else idx)


def _align_columns(table: _Table, reference: _Table) -> None:
    """Reorder `table`'s features to the training file's header order when both files have a
    header naming the same columns; different names are an error."""
    a, b = reference.features, table.features
    if a is None or b is None or a == b:
        return
    if sorted(a) != sorted(b) or len(set(a)) != len(a):
        raise DataError(
            f"{table.split.x_name} has feature columns {_some(b)} but "
            f"{reference.split.x_name} has {_some(a)}."
        )
    table.split.x = table.split.x[:, [b.index(n) for n in a]]


def _label_values(table: _Table, numeric: bool) -> np.ndarray:
    """The label cells as floats (class indices, checked later) or as strings (names)."""
    if not numeric:
        return np.array(table.labels, dtype=str)
    values = np.empty(len(table.labels))
    for i, cell in enumerate(table.labels):
        try:
            values[i] = float(cell)
        except ValueError:
            raise DataError(
                f"{table.split.x_name} line {table.split.rows[i]} has the label {cell!r}, but "
                "the training labels are class indices."
            ) from None
    return values


@register_dataset("csv")
def load_csv(
    *,
    train: str,
    test: str | None = None,
    val: str | None = None,
    label: str | int | None = None,
    header: bool | None = None,
    delimiter: str = ",",
    shape: list[int] | None = None,
    normalize: str = "channel",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """A table per split from CSV files: one row per sample, numeric features and a label.

    `label` is a column name or index (default: the header column named label, target, class
    or y, else the last column). `header` true/false, or unset to detect it (the first row has
    a non-numeric cell among the features). Labels are class indices or names (names map to
    indices in sorted order, recorded in info["classes"]). Without `test` a seeded
    `test_fraction` of train is the test split; without `val`, `val_fraction` is validation.
    """
    check_options(normalize, val_fraction, test_fraction, seed)
    _sample_shape(shape)
    if label is not None and (isinstance(label, bool) or not isinstance(label, int | str)):
        raise ParameterError(f"label must be a column name or index, got {label!r}.")
    if header is not None and not isinstance(header, bool):
        raise ParameterError(f"header must be true or false, got {header!r}.")
    if isinstance(label, str) and header is False:
        raise ParameterError(
            f"label = {label!r} names a column, which needs a header row (header = false)."
        )
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ParameterError(f"delimiter must be one character, got {delimiter!r}.")
    paths = {"train": train, "test": test, "val": val}
    tables = {
        k: _read_csv(existing_file(v, f"{k} ="), label, header, delimiter)
        for k, v in paths.items()
        if v is not None
    }
    tr = tables["train"]
    numeric = all(is_number(c) for c in tr.labels)
    for table in tables.values():
        _align_columns(table, tr)
        table.split.y = _label_values(table, numeric)
    ds = assemble(
        "csv",
        tr.split,
        tables["test"].split if "test" in tables else None,
        tables["val"].split if "val" in tables else None,
        source={k: str(v) for k, v in paths.items() if v is not None},
        normalize=normalize,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        shape=shape,
    )
    if tr.features is not None:  # so `lrens predict` takes its inputs' columns by name
        ds.info["columns"] = tr.features
    ds.info["label_column"] = tr.label_column
    return ds


# --- the command line's --data -------------------------------------------------------------------

_KIND_BY_SUFFIX = {".npz": "npz", ".csv": "csv"}
_MAIN_KEY = {"npz": "path", "csv": "train", "image_folder": "root"}


def _kind(path: str) -> str:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"--data {path} does not exist.")
    if p.is_dir():
        return "image_folder"
    suffix = p.suffix.lower()
    if suffix == ".npy":
        raise DataError(
            f"--data {path}: .npy inputs and labels come as a pair, which needs a config: "
            '[data] name = "npz", train = ["x.npy", "y.npy"].'
        )
    if suffix not in _KIND_BY_SUFFIX:
        raise DataError(
            f"--data {path}: unknown kind of file {suffix or '(no suffix)'}; give a .npz or "
            ".csv file or a folder of images."
        )
    return _KIND_BY_SUFFIX[suffix]


def data_table(items: Sequence[str]) -> dict[str, Any]:
    """The `[data]` table that `--data` arguments stand for.

    One PATH: a .npz file (`npz`, path=), a .csv file (`csv`, train=) or a folder of images
    (`image_folder`, root=). Or SPLIT=PATH items: train=PATH with optional test=PATH and
    val=PATH, all of one kind (a folder per split for images).

    Example:
        >>> data_table(["."])
        {'name': 'image_folder', 'root': '.'}
    """
    items = list(items)
    if not items:
        raise DataError("--data needs a path: a .npz or .csv file or a folder of images.")
    pairs: list[tuple[str | None, str]] = []
    for item in items:
        key, sep, value = item.partition("=")
        if sep and not Path(item).expanduser().exists():  # a file named a=b.csv is still a path
            if key not in SPLIT_NAMES:
                raise DataError(
                    f"--data {item}: {key!r} is not a split; write train=PATH, test=PATH or "
                    "val=PATH."
                )
            if not value:
                raise DataError(f"--data {item} gives no path.")
            pairs.append((key, value))
        else:
            pairs.append((None, item))
    if all(key is None for key, _ in pairs):
        if len(pairs) > 1:
            raise DataError(
                "--data takes one path, or train=PATH with optional test=PATH and val=PATH."
            )
        kind = _kind(pairs[0][1])
        return {"name": kind, _MAIN_KEY[kind]: pairs[0][1]}
    if any(key is None for key, _ in pairs):
        raise DataError("--data mixes a plain path with SPLIT=PATH items; use one form.")
    splits: dict[str, str] = {}
    for key, value in pairs:
        if key in splits:
            raise DataError(f"--data gives {key}= twice.")
        splits[key] = value  # type: ignore[index]
    if "train" not in splits:
        raise DataError("--data names splits but no train=PATH.")
    kinds = {key: _kind(value) for key, value in splits.items()}
    if len(set(kinds.values())) > 1:
        raise DataError(
            f"--data mixes kinds of files ({_some([f'{k}: {v}' for k, v in kinds.items()])}); "
            "give every split in the same format."
        )
    return {"name": kinds["train"], **{k: splits[k] for k in SPLIT_NAMES if k in splits}}


__all__ = [
    "CsvTable",
    "Split",
    "assemble",
    "check_options",
    "data_table",
    "existing_file",
    "is_number",
    "load_csv",
    "load_npz",
    "looks_like_header",
    "read_csv_table",
    "read_npy",
    "read_npz",
]
