"""The `Dataset` container: train, validation and test tensors plus what a model needs to know."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lrensemble.errors import DataError, ParameterError

SPLITS = ("train", "val", "test")


@dataclass
class Dataset:
    """Inputs and integer labels for the train, validation and test splits (CPU tensors).

    Inputs are float32 and already normalized; labels are int64 in [0, num_classes). `image`
    says whether inputs are (C, H, W) images, for which training augments batches.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    image: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, labels) of the split `"train"`, `"val"` or `"test"`."""
        if name not in SPLITS:
            raise ParameterError(f"Unknown split {name!r}; use one of {', '.join(SPLITS)}.")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def sizes(self) -> dict[str, int]:
        return {s: len(self.split(s)[1]) for s in SPLITS}

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for metadata files."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "sizes": self.sizes(),
            **self.info,
        }


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} cannot be read as an array ({exc}).") from None


def _labels(name: str, y: Any, n: int) -> torch.Tensor:
    y = _as_tensor(name, y)
    if y.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of class indices, got shape {tuple(y.shape)}.")
    if len(y) != n:
        raise DataError(f"{name} has {len(y)} labels but its inputs have {n} rows.")
    if y.is_floating_point():
        if not torch.equal(y, y.round()):
            raise DataError(f"{name} must hold integer class indices, not fractions.")
    elif y.dtype == torch.bool or y.is_complex():
        raise DataError(f"{name} must hold integer class indices, got {y.dtype}.")
    return y.long()


def _inputs(name: str, x: Any) -> torch.Tensor:
    x = _as_tensor(name, x)
    if x.ndim < 2:
        raise DataError(f"{name} must have one row per sample, got shape {tuple(x.shape)}.")
    x = x.float()
    if not torch.isfinite(x).all():
        raise DataError(f"{name} contains NaN or infinite values.")
    return x


def carve_validation(
    x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split a seeded random `fraction` of (x, y) off as validation: (x_tr, y_tr, x_val, y_val)."""
    if not 0.0 <= fraction < 1.0:
        raise ParameterError(f"val_fraction must be in [0, 1), got {fraction!r}.")
    n_val = round(len(y) * fraction)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(seed)))
    val, train = perm[:n_val].sort().values, perm[n_val:].sort().values
    return x[train], y[train], x[val], y[val]


def from_arrays(
    x_train: Any,
    y_train: Any,
    x_test: Any,
    y_test: Any,
    x_val: Any = None,
    y_val: Any = None,
    *,
    num_classes: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    name: str = "arrays",
    image: bool | None = None,
) -> Dataset:
    """A dataset from a user's own numpy arrays or torch tensors.

    Without `x_val`/`y_val`, a seeded `val_fraction` of the training set becomes the validation
    split (the LREnsemble paper's 90/10). `image` defaults to True for 4-D inputs (N, C, H, W).

    Example:
        >>> import numpy as np
        >>> from lrensemble.data import from_arrays
        >>> x, y = np.random.rand(100, 8).astype("float32"), np.arange(100) % 3
        >>> ds = from_arrays(x, y, x[:20], y[:20])
        >>> ds.sizes(), ds.num_classes
        ({'train': 90, 'val': 10, 'test': 20}, 3)
    """
    xtr = _inputs("x_train", x_train)
    ytr = _labels("y_train", y_train, len(xtr))
    xte = _inputs("x_test", x_test)
    yte = _labels("y_test", y_test, len(xte))
    if (x_val is None) != (y_val is None):
        raise DataError("Give both x_val and y_val, or neither.")
    if x_val is None:
        xtr, ytr, xva, yva = carve_validation(xtr, ytr, val_fraction, seed)
    else:
        xva = _inputs("x_val", x_val)
        yva = _labels("y_val", y_val, len(xva))
    for split, xs in (("x_test", xte), ("x_val", xva)):
        if xs.shape[1:] != xtr.shape[1:]:
            raise DataError(
                f"{split} has sample shape {tuple(xs.shape[1:])} but x_train has "
                f"{tuple(xtr.shape[1:])}."
            )
    if len(ytr) == 0:
        raise DataError("The training split is empty.")
    largest = int(max(int(t.max()) if len(t) else 0 for t in (ytr, yva, yte)))
    smallest = int(min(int(t.min()) if len(t) else 0 for t in (ytr, yva, yte)))
    if num_classes is None:
        num_classes = largest + 1
    if smallest < 0 or largest >= num_classes:
        raise DataError(
            f"Labels must lie in [0, {num_classes}), found values from {smallest} to {largest}."
        )
    if image is None:
        image = xtr.ndim == 4
    ds = Dataset(name, xtr, ytr, xva, yva, xte, yte, int(num_classes), bool(image))
    if name == "arrays":  # a caller's own arrays: their content is their identity
        ds.info["sha256"] = content_digest(ds)
    return ds


def bag(ds: Dataset, seed: int, fraction: float = 0.9) -> Dataset:
    """The dataset with its training split cut to a seeded random `fraction` (bagging: each
    member trains on its own subset); validation and test are untouched. The bag is recorded
    in `info`, so members of different bags are different members."""
    if not 0.0 < fraction <= 1.0:
        raise ParameterError(f"The bagging fraction must be in (0, 1], got {fraction!r}.")
    n = len(ds.y_train)
    keep = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    keep = keep[: max(1, round(n * fraction))].sort().values
    info = {**ds.info, "bag": {"seed": int(seed), "fraction": float(fraction)}}
    return dataclasses.replace(ds, x_train=ds.x_train[keep], y_train=ds.y_train[keep], info=info)


def content_digest(ds: Dataset) -> str:
    """A short checksum of every split's final tensors: member fingerprints include it, so
    other data of the same shape, or changed file contents at the same path, never pass for
    the same data."""
    h = hashlib.sha256()
    for split in ("train", "val", "test"):
        for t in ds.split(split):
            h.update(np.ascontiguousarray(t.numpy()).data)
    return h.hexdigest()[:16]
