"""CIFAR-10 and CIFAR-100 from the standard local archives or their extracted folders.

Nothing is downloaded. Both official formats are read: the binary version (preferred: plain
bytes) and the python version, whose pickles are read with an unpickler that only admits the
numpy array types those files contain, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lrensemble.data.base import Dataset, from_arrays
from lrensemble.data.normalize import Normalization
from lrensemble.data.registry import register_dataset
from lrensemble.errors import DataError
from lrensemble.paths import data_dir

SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html"
MEAN = {10: (0.4914, 0.4822, 0.4465), 100: (0.5071, 0.4865, 0.4409)}
STD = {10: (0.2470, 0.2435, 0.2616), 100: (0.2673, 0.2564, 0.2762)}


@dataclass(frozen=True)
class _Layout:
    archive_bin: str
    folder_bin: str
    train_bin: tuple[str, ...]
    test_bin: str
    label_bytes: int
    archive_py: str
    folder_py: str
    train_py: tuple[str, ...]
    test_py: str
    label_key: bytes


LAYOUTS = {
    10: _Layout(
        "cifar-10-binary.tar.gz",
        "cifar-10-batches-bin",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        "test_batch.bin",
        1,
        "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        b"labels",
    ),
    100: _Layout(
        "cifar-100-binary.tar.gz",
        "cifar-100-binary",
        ("train.bin",),
        "test.bin",
        2,
        "cifar-100-python.tar.gz",
        "cifar-100-python",
        ("train",),
        "test",
        b"fine_labels",
    ),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what CIFAR's python batches hold: dicts, lists, bytes and numpy arrays."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _parse_binary(blob: bytes, label_bytes: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    record = label_bytes + 3072
    if len(blob) == 0 or len(blob) % record:
        raise DataError(f"{what} is truncated or not a CIFAR binary batch ({len(blob)} bytes).")
    rows = np.frombuffer(blob, dtype=np.uint8).reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32), rows[:, label_bytes - 1].astype(np.int64)


def _parse_python(blob: bytes, label_key: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayUnpickler(io.BytesIO(blob), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{what} is not a readable CIFAR python batch ({exc}).") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DataError(f"{what} has unexpected shapes {data.shape} and {labels.shape}.")
    return data.reshape(-1, 3, 32, 32), labels


def _read_members(
    root: Path, archive: str, folder: str, names: tuple[str, ...]
) -> list[bytes] | None:
    """The named batch files from the extracted folder or the archive, or None if neither."""
    if (root / folder).is_dir():
        missing = [n for n in names if not (root / folder / n).is_file()]
        if missing:
            raise DataError(f"{root / folder} lacks {', '.join(missing)}.")
        return [(root / folder / n).read_bytes() for n in names]
    if (root / archive).is_file():
        try:
            with tarfile.open(root / archive) as tar:
                found = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                missing = [n for n in names if n not in found]
                if missing:
                    raise DataError(f"{root / archive} lacks {', '.join(missing)}.")
                return [tar.extractfile(found[n]).read() for n in names]  # type: ignore[union-attr]
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DataError(f"{root / archive} is not a readable archive ({exc}).") from None
    return None


def read_cifar(classes: int, root: str | Path | None = None) -> dict[str, np.ndarray]:
    """Raw CIFAR arrays: uint8 images (N, 3, 32, 32) and int64 labels for train and test."""
    layout = LAYOUTS[classes]
    root = Path(root) if root is not None else data_dir()
    names = (*layout.train_bin, layout.test_bin)
    blobs = _read_members(root, layout.archive_bin, layout.folder_bin, names)
    if blobs is not None:
        parts = [_parse_binary(b, layout.label_bytes, n) for b, n in zip(blobs, names, strict=True)]
    else:
        names = (*layout.train_py, layout.test_py)
        blobs = _read_members(root, layout.archive_py, layout.folder_py, names)
        if blobs is None:
            raise DataError(
                f"CIFAR-{classes} was not found in {root.resolve()}: expected "
                f"{layout.archive_bin}, {layout.folder_bin}/, {layout.archive_py} or "
                f"{layout.folder_py}/ there (get it from {SOURCE}, or pass root=...)."
            )
        parts = [_parse_python(b, layout.label_key, n) for b, n in zip(blobs, names, strict=True)]
    x_train = np.concatenate([p[0] for p in parts[:-1]])
    y_train = np.concatenate([p[1] for p in parts[:-1]])
    return {"x": x_train, "y": y_train, "x_test": parts[-1][0], "y_test": parts[-1][1]}


def cifar_normalization(classes: int) -> Normalization:
    """The fixed transform of CIFAR inputs: 8-bit pixels scaled to [0, 1], then standardized
    with the usual per-channel statistics of the training set."""
    return Normalization("channel", 1 / 255, MEAN[classes], STD[classes], (3, 32, 32))


def _load(classes: int, root: str | None, val_fraction: float, seed: int) -> Dataset:
    raw = read_cifar(classes, root)
    norm = cifar_normalization(classes)
    ds = from_arrays(
        norm.apply(raw["x"]),
        raw["y"],
        norm.apply(raw["x_test"]),
        raw["y_test"],
        num_classes=classes,
        val_fraction=val_fraction,
        seed=seed,
        name=f"cifar{classes}",
        image=True,
    )
    ds.info.update(
        {"val_fraction": val_fraction, "split_seed": seed, "normalization": norm.to_dict()}
    )
    return ds


@register_dataset("cifar10")
def load_cifar10(*, root: str | None = None, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """CIFAR-10 from `root` (default `$LRENS_DATA` or ./data), normalized per channel."""
    return _load(10, root, val_fraction, seed)


@register_dataset("cifar100")
def load_cifar100(*, root: str | None = None, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """CIFAR-100 (fine labels) from `root` (default `$LRENS_DATA` or ./data)."""
    return _load(100, root, val_fraction, seed)
