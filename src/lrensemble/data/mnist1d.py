"""MNIST-1D (Greydanus 2020), the embedded default: generated offline and cached on disk."""

from __future__ import annotations

import contextlib
import random
import zipfile

import numpy as np

from lrensemble.atomic import write_with
from lrensemble.data.base import Dataset, from_arrays
from lrensemble.data.normalize import Normalization
from lrensemble.data.registry import register_dataset
from lrensemble.errors import DataError
from lrensemble.paths import cache_dir

CACHE_NAME = "mnist1d-v1.npz"  # the generator's defaults: 5000 samples, 4000/1000, seed 42


def mnist1d_arrays() -> dict[str, np.ndarray]:
    """The standard MNIST-1D arrays (x, y, x_test, y_test), from the cache or generated.

    Generation takes a few seconds; the result is cached as `.npz` (no pickle) under
    `lrensemble.paths.cache_dir()`. The generator seeds the global `random` and `numpy.random`
    states; we restore them so loading data never changes a user's randomness.
    """
    path = cache_dir() / CACHE_NAME
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # truncated or foreign cache file: regenerate
    from mnist1d.data import get_dataset_args, make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    arrays = {
        "x": raw["x"].astype(np.float32),
        "y": raw["y"].astype(np.int64),
        "x_test": raw["x_test"].astype(np.float32),
        "y_test": raw["y_test"].astype(np.int64),
    }

    def save(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    with contextlib.suppress(OSError):  # a read-only cache only costs regeneration next time
        write_with(path, save)
    return arrays


@register_dataset("mnist1d")
def load_mnist1d(*, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """MNIST-1D: 10 classes of length-40 signals, shaped (N, 1, 40); the standard 4000 train /
    1000 test, with a seeded `val_fraction` of train carved off as validation."""
    a = mnist1d_arrays()
    if a["x"].shape[1:] != (40,):
        raise DataError(f"The cached MNIST-1D file has unexpected shape {a['x'].shape}.")
    ds = from_arrays(
        a["x"][:, None, :],
        a["y"],
        a["x_test"][:, None, :],
        a["y_test"],
        num_classes=10,
        val_fraction=val_fraction,
        seed=seed,
        name="mnist1d",
        image=False,
    )
    # The signals are used as generated: the recorded transform is the identity on (1, 40).
    norm = Normalization("none", 1.0, (), (), (1, 40))
    ds.info.update(
        {"val_fraction": val_fraction, "split_seed": seed, "normalization": norm.to_dict()}
    )
    return ds
