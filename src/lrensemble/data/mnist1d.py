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
STANDARD = (5000, 42)  # (samples, generator seed) of the standard dataset
MAX_SAMPLES = 1_000_000


def cache_name(samples: int, generator_seed: int) -> str:
    if (samples, generator_seed) == STANDARD:
        return CACHE_NAME
    return f"mnist1d-v1-n{samples}-s{generator_seed}.npz"


def mnist1d_arrays(samples: int = 5000, generator_seed: int = 42) -> dict[str, np.ndarray]:
    """MNIST-1D arrays (x, y, x_test, y_test), from the cache or generated: the standard ones by
    default, or `samples` signals (80% train) from the generator seeded with `generator_seed`
    (a larger source task, e.g. for a pre-trained checkpoint).

    Generation takes a few seconds per 5000 samples; the result is cached as `.npz` (no pickle)
    under `lrensemble.paths.cache_dir()`. The generator seeds the global `random` and
    `numpy.random` states; we restore them so loading data never changes a user's randomness.
    """
    path = cache_dir() / cache_name(samples, generator_seed)
    if path.exists():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)  # truncated or foreign cache file: regenerate
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = samples, generator_seed
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(args)
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


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@register_dataset("mnist1d")
def load_mnist1d(
    *, val_fraction: float = 0.1, seed: int = 0, samples: int = 5000, generator_seed: int = 42
) -> Dataset:
    """MNIST-1D: 10 classes of length-40 signals, shaped (N, 1, 40); the standard 4000 train /
    1000 test, with a seeded `val_fraction` of train carved off as validation. `samples` and
    `generator_seed` generate another MNIST-1D (80% train), e.g. a larger source task to
    pre-train on."""
    if not _integer(samples) or not 100 <= samples <= MAX_SAMPLES:
        raise DataError(f"samples must be an integer from 100 to {MAX_SAMPLES:,}, got {samples!r}.")
    if not _integer(generator_seed) or generator_seed < 0:
        raise DataError(f"generator_seed must be a non-negative integer, got {generator_seed!r}.")
    a = mnist1d_arrays(samples, generator_seed)
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
    if (samples, generator_seed) != STANDARD:  # another dataset: part of every member's identity
        ds.info.update({"samples": samples, "generator_seed": generator_seed})
    return ds
