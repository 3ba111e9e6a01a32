"""`Normalization`: input statistics fitted on the training split alone, recorded with the data
so that an exported ensemble applies exactly the same transform to a user's raw inputs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from lrensemble.errors import DataError, ParameterError

Per = Literal["channel", "feature", "none"]
PER_CHOICES = ("channel", "feature", "none")
_CHUNK_VALUES = 1 << 22  # values per chunk while fitting: bounded float64 temporaries


def check_per(per: Any) -> Per:
    """`per` itself if it names a normalization, else a `ParameterError` sentence."""
    if per not in PER_CHOICES:
        raise ParameterError(f"normalize must be 'channel', 'feature' or 'none', got {per!r}.")
    return per


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


@dataclass(frozen=True)
class Normalization:
    """`x ↦ (x · scale − mean) / std`, with `mean` and `std` broadcast over one sample.

    `per = "channel"`: one statistic per channel (axis 1 of (N, C, ...) inputs: images,
    signals); `"feature"`: one per input feature (tables, shape (N, F)); `"none"`: only `scale`
    (e.g. 1/255 for 8-bit images). `sample_shape` is the shape the statistics were fitted on.

    Example:
        >>> import numpy as np
        >>> x = np.arange(24, dtype=np.float32).reshape(4, 2, 3)
        >>> norm = Normalization.fit(x)             # per channel: 2 means, 2 stds
        >>> norm.mean
        (10.0, 13.0)
        >>> z = norm.apply(x)
        >>> bool(abs(z.mean()) < 1e-6), Normalization.from_dict(norm.to_dict()) == norm
        (True, True)
    """

    per: Per
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    sample_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        check_per(self.per)
        n = len(self.mean)
        if len(self.std) != n:
            raise ParameterError(f"A normalization needs as many stds as means ({n}).")
        if self.per == "none":
            expected = 0
        elif self.per == "channel":
            expected = self.sample_shape[0] if len(self.sample_shape) >= 2 else -1
        else:
            expected = math.prod(self.sample_shape)
        if n != expected:
            raise ParameterError(
                f"A {self.per!r} normalization of samples shaped {tuple(self.sample_shape)} "
                f"cannot have {n} means."
            )
        if any(not s > 0 for s in self.std):
            raise ParameterError("A normalization's stds must be positive.")

    @classmethod
    def fit(cls, x_train: Any, per: Per = "channel", scale: float = 1.0) -> Normalization:
        """Statistics of the training inputs (N, ...), numpy or torch, times `scale`.

        `"channel"` on 2-D tables (N, F), which have no channel axis, becomes `"feature"`. A
        constant channel or feature gets std 1, so it maps to 0 instead of dividing by zero.
        The sums run in float64 over chunks of samples, so fitting a large uint8 image set
        never holds a float64 copy of it.
        """
        check_per(per)
        x = _numpy(x_train)
        if x.ndim < 2 or len(x) == 0:
            raise DataError(f"Cannot fit a normalization on inputs of shape {x.shape}.")
        if x.dtype.kind not in "biuf":
            raise DataError(f"Cannot fit a normalization on inputs of dtype {x.dtype}.")
        sample_shape = tuple(int(d) for d in x.shape[1:])
        if per == "none":
            return cls("none", float(scale), (), (), sample_shape)
        if per == "channel" and x.ndim < 3:
            per = "feature"
        # (N, groups, values per group): statistics per group, over samples and values.
        groups = sample_shape[0] if per == "channel" else math.prod(sample_shape)
        grouped = x.reshape(len(x), groups, -1)
        step = max(1, _CHUNK_VALUES // max(1, grouped[0].size))
        count = len(x) * grouped.shape[2]

        def chunks():
            for i in range(0, len(x), step):
                yield grouped[i : i + step].astype(np.float64) * scale

        mean = sum(c.sum(axis=(0, 2)) for c in chunks()) / count
        var = sum(((c - mean[None, :, None]) ** 2).sum(axis=(0, 2)) for c in chunks()) / count
        std = np.sqrt(var)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(per, float(scale), tuple(map(float, mean)), tuple(map(float, std)), sample_shape)

    def _check_shape(self, sample_shape: tuple[int, ...]) -> None:
        if tuple(sample_shape) != tuple(self.sample_shape):
            raise DataError(
                f"Inputs have sample shape {tuple(sample_shape)}; the normalization was fitted "
                f"on {tuple(self.sample_shape)}."
            )

    def _stats(self, sample_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        if self.per == "channel":
            shape = (len(mean),) + (1,) * (len(sample_shape) - 1)
        else:
            shape = tuple(sample_shape)
        return mean.reshape(shape), std.reshape(shape)

    def apply(self, x: Any) -> Any:
        """Normalize inputs (N, ...) shaped like the fitted samples: float32 out, as a torch
        tensor (on its device) when given one, else as a numpy array. Both compute in float32
        in the same order, so they agree exactly."""
        if not isinstance(x, torch.Tensor):
            x = np.asarray(x)
        self._check_shape(tuple(x.shape[1:]))
        if isinstance(x, torch.Tensor):
            x = x.float() * self.scale
            if self.per == "none":
                return x
            mean, std = self._stats(tuple(x.shape[1:]))
            return (x - torch.from_numpy(mean).to(x.device)) / torch.from_numpy(std).to(x.device)
        x = x.astype(np.float32)  # a copy, so the in-place steps below never touch the input
        x *= np.float32(self.scale)
        if self.per == "none":
            return x
        mean, std = self._stats(tuple(x.shape[1:]))
        x -= mean
        x /= std
        return x

    def invert(self, z: Any) -> Any:
        """The raw inputs that `apply` maps to `z`: `(z · std + mean) / scale`, float32, torch
        in and out or numpy in and out (up to float32 rounding; e.g. to corrupt test images in
        pixel space and normalize them again)."""
        if not isinstance(z, torch.Tensor):
            z = np.asarray(z)
        self._check_shape(tuple(z.shape[1:]))
        if isinstance(z, torch.Tensor):
            z = z.float()
            if self.per != "none":
                mean, std = self._stats(tuple(z.shape[1:]))
                z = z * torch.from_numpy(std).to(z.device) + torch.from_numpy(mean).to(z.device)
            return z / self.scale
        z = z.astype(np.float32)  # a copy: the in-place steps below never touch the input
        if self.per != "none":
            mean, std = self._stats(tuple(z.shape[1:]))
            z *= std
            z += mean
        z /= np.float32(self.scale)
        return z

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored in the dataset's `info["normalization"]`."""
        return {
            "per": self.per,
            "scale": self.scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "sample_shape": list(self.sample_shape),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        """The inverse of `to_dict`; a malformed record is a `DataError`."""
        try:
            return cls(
                d["per"],
                float(d["scale"]),
                tuple(float(v) for v in d["mean"]),
                tuple(float(v) for v in d["std"]),
                tuple(int(v) for v in d["sample_shape"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"A recorded normalization is malformed ({exc}).") from None


__all__ = ["PER_CHOICES", "Normalization", "check_per"]
