"""Corrupted test sets: a dataset's test inputs under a named corruption at a severity from 1
to 5, deterministic from a seed, computed locally and cached on disk (never downloaded).

Images (N, C, H, W) get the CIFAR-10-C corruptions (`corrupt_images`); 1-D signals (N, C, L)
get their counterparts for time series (`corrupt_signals`); feature vectors get none. Inputs
are corrupted where the corruption has its meaning, in the raw space: the dataset's recorded
normalization is inverted (images to pixel values in [0, 1]), the inputs corrupted and clipped
to their valid range, then normalized again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lrensemble.atomic import write_with
from lrensemble.data import corrupt_images, corrupt_signals
from lrensemble.data.base import Dataset
from lrensemble.data.corrupt_images import IMAGE_CORRUPTIONS
from lrensemble.data.corrupt_signals import SIGNAL_CORRUPTIONS
from lrensemble.data.normalize import Normalization
from lrensemble.errors import DataError, ParameterError, UnknownNameError
from lrensemble.paths import cache_dir

SEVERITIES = (1, 2, 3, 4, 5)
CACHE_FOLDER = "corruptions"
Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
CORRUPTIONS: dict[str, dict[str, Corruption]] = {
    "image": IMAGE_CORRUPTIONS,
    "signal": SIGNAL_CORRUPTIONS,
}
# the code behind every corrupted set (both kinds share helpers and this module's rounding)
_CODE = (corrupt_images.__file__, corrupt_signals.__file__, __file__)
_TOLERANCE = 0.01  # how far (of the range) pixel values may stray before they are refused


def input_kind(shape: tuple[int, ...]) -> str | None:
    """`"image"` for samples (C, H, W), `"signal"` for (C, L), None for anything else."""
    return {3: "image", 2: "signal"}.get(len(shape))


def list_corruptions(dataset: Dataset) -> list[str]:
    """The corruptions that apply to the dataset's inputs, in the benchmark's order; none for
    feature vectors."""
    kind = input_kind(dataset.input_shape)
    return list(CORRUPTIONS[kind]) if kind else []


def check_severity(severity: object) -> int:
    """`severity` if it is an integer from 1 to 5, else a `ParameterError` sentence."""
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
        raise ParameterError(f"A severity must be an integer from 1 to 5, got {severity!r}.")
    if int(severity) not in SEVERITIES:
        raise ParameterError(f"A severity must be an integer from 1 to 5, got {severity}.")
    return int(severity)


def check_corruption(dataset: Dataset, name: str) -> str:
    """`name` if it is a corruption of the dataset's kind of inputs, else one sentence."""
    kind = input_kind(dataset.input_shape)
    if kind is None:
        raise ParameterError(
            f"Corruptions apply to images (C, H, W) and signals (C, L); {dataset.name} has "
            f"samples shaped {tuple(dataset.input_shape)}."
        )
    if name not in CORRUPTIONS[kind]:
        raise UnknownNameError(
            f"Unknown corruption {name!r} for {kind}s; known: {', '.join(CORRUPTIONS[kind])}."
        )
    return name


def generator(name: str, seed: int) -> np.random.Generator:
    """The random numbers of corruption `name` under `seed`: the same at every severity."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def corrupt(x: np.ndarray, kind: str, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Raw inputs corrupted: images (N, C, H, W) in [0, 1] or signals (N, C, L) as recorded."""
    severity = check_severity(severity)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"A corruption seed must be a non-negative integer, got {seed!r}.")
    if kind not in CORRUPTIONS or name not in CORRUPTIONS[kind]:
        raise UnknownNameError(f"Unknown corruption {name!r} for {kind}s.")
    x = np.ascontiguousarray(x, dtype=np.float32)
    return CORRUPTIONS[kind][name](x, severity, generator(name, seed))


def _normalization(dataset: Dataset) -> Normalization:
    record = dataset.info.get("normalization")
    if record is None:  # a caller's own arrays: used as they are
        return Normalization("none", 1.0, (), (), tuple(dataset.input_shape))
    return Normalization.from_dict(record)


def _pixels(dataset: Dataset, norm: Normalization) -> tuple[np.ndarray, float]:
    """The test images as values in [0, 1], and the pixel value that 1 stands for (1 or 255),
    found from the range of the raw pixels (after the recorded scale)."""
    scaled = norm.invert(dataset.x_test.numpy()) * np.float32(norm.scale)
    lo, hi = float(scaled.min()), float(scaled.max())
    for top in (1.0, 255.0):
        if lo >= -_TOLERANCE * top and hi <= (1 + _TOLERANCE) * top:
            return np.clip(scaled / np.float32(top), 0.0, 1.0), top
    raise DataError(
        f"Image corruptions need pixel values in [0, 1] or [0, 255]; the test images of "
        f"{dataset.name} range from {lo:.4g} to {hi:.4g}."
    )


def cache_key(dataset: Dataset, name: str, severity: int, seed: int) -> str:
    """What identifies a corrupted test set: the dataset's description, its test inputs'
    content, the corruption, severity and seed, and the corruptions' code (any change to their
    parameters or helpers computes the sets again)."""
    digest = hashlib.sha256(np.ascontiguousarray(dataset.x_test.numpy()).data).hexdigest()
    code = b"".join(Path(path).read_bytes() for path in _CODE)
    identity = {
        "dataset": dataset.describe(),
        "x_test": digest,
        "corruption": name,
        "severity": severity,
        "seed": int(seed),
        "code": hashlib.sha256(code).hexdigest(),
    }
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cache_path(dataset: Dataset, name: str, severity: int, seed: int) -> Path:
    key = cache_key(dataset, name, severity, seed)
    return cache_dir() / CACHE_FOLDER / f"{dataset.name}-{name}-{severity}-s{seed}-{key}.npz"


def _read_cache(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """The cached raw inputs, or None when the file is missing or damaged (then deleted)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            x = f["x"]
        if x.shape == shape and x.dtype == dtype:
            return x
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    with contextlib.suppress(OSError):  # a read-only cache only costs computing it
        path.unlink(missing_ok=True)  # truncated or foreign: computed again
    return None


def _write_cache(path: Path, x: np.ndarray) -> None:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, x=x)

    with contextlib.suppress(OSError):  # a read-only cache only costs computing it again
        write_with(path, save)


def corrupted_test_set(
    dataset: Dataset, name: str, severity: int, seed: int = 0, cache: bool = True
) -> torch.Tensor:
    """The dataset's test inputs under corruption `name` at `severity` (1 to 5), normalized as
    `dataset.x_test` is and of its shape: what a member predicts on.

    Images are corrupted as pixel values in [0, 1] and kept with 8 bits per channel, as
    CIFAR-10-C stores them; signals as recorded. The result is cached under
    `lrensemble.paths.cache_dir()` (keyed by `cache_key`); a damaged cache file is computed
    again.
    """
    check_corruption(dataset, name)
    severity = check_severity(severity)
    kind = input_kind(dataset.input_shape)
    norm = _normalization(dataset)
    shape = tuple(dataset.x_test.shape)
    path = cache_path(dataset, name, severity, seed) if cache else None
    if kind == "image":
        unit, top = _pixels(dataset, norm)  # also refuses images out of range, cached or not
        stored = _read_cache(path, shape, np.dtype(np.uint8)) if path else None
        if stored is None:
            stored = np.rint(corrupt(unit, kind, name, severity, seed) * 255).astype(np.uint8)
            if path:
                _write_cache(path, stored)
        raw = stored.astype(np.float32) * np.float32(top / 255 / norm.scale)
    else:
        raw = _read_cache(path, shape, np.dtype(np.float32)) if path else None
        if raw is None:
            raw = corrupt(norm.invert(dataset.x_test.numpy()), kind, name, severity, seed)
            if path:
                _write_cache(path, raw)
    return torch.from_numpy(np.ascontiguousarray(norm.apply(raw)))


__all__ = [
    "CORRUPTIONS",
    "SEVERITIES",
    "cache_path",
    "check_corruption",
    "check_severity",
    "corrupt",
    "corrupted_test_set",
    "input_kind",
    "list_corruptions",
]
