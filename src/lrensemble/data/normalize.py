"""`Normalization`: input statistics fitted on the training split alone, recorded with the data
so that an exported ensemble applies exactly the same transform to a user's raw inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from lrensemble.errors import DataError, ParameterError

Per = Literal["channel", "feature", "none"]


@dataclass(frozen=True)
class Normalization:
    """`x ↦ (x · scale − mean) / std`, with `mean` and `std` broadcast over one sample.

    `per = "channel"`: one statistic per channel (axis 1 of (N, C, ...) inputs: images,
    signals); `"feature"`: one per input feature (tables, shape (N, F)); `"none"`: only `scale`
    (e.g. 1/255 for 8-bit images). `sample_shape` is the shape the statistics were fitted on.
    """

    per: Per
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    sample_shape: tuple[int, ...]

    @classmethod
    def fit(cls, x_train: Any, per: Per = "channel", scale: float = 1.0) -> Normalization:
        """Statistics of the training inputs (N, ...); a constant channel or feature gets
        std 1, so it maps to 0 instead of dividing by zero."""
        x = np.asarray(x_train, dtype=np.float64) * scale
        if x.ndim < 2 or len(x) == 0:
            raise DataError(f"Cannot fit a normalization on inputs of shape {x.shape}.")
        if per == "none":
            return cls("none", float(scale), (), (), tuple(x.shape[1:]))
        if per == "channel":
            if x.ndim < 3:
                per = "feature"  # a table has no channel axis: normalize each feature
            else:
                axes = (0, *range(2, x.ndim))
                mean, std = x.mean(axis=axes), x.std(axis=axes)
        if per == "feature":
            flat = x.reshape(len(x), -1)
            mean, std = flat.mean(axis=0), flat.std(axis=0)
        elif per != "channel":
            raise ParameterError(f"normalize must be 'channel', 'feature' or 'none', got {per!r}.")
        std = np.where(std > 1e-12, std, 1.0)
        return cls(per, float(scale), tuple(map(float, mean)), tuple(map(float, std)), x.shape[1:])

    def _stats(self, sample_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        if tuple(sample_shape) != tuple(self.sample_shape):
            raise DataError(
                f"Inputs have sample shape {tuple(sample_shape)}; the normalization was fitted "
                f"on {tuple(self.sample_shape)}."
            )
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        if self.per == "channel":
            shape = (len(mean),) + (1,) * (len(sample_shape) - 1)
        else:
            shape = tuple(sample_shape)
        return mean.reshape(shape), std.reshape(shape)

    def apply(self, x: Any) -> Any:
        """Normalize inputs (N, ...): a float32 numpy array or torch tensor, as given."""
        if isinstance(x, torch.Tensor):
            x = x.float() * self.scale
            if self.per == "none":
                return x
            mean, std = self._stats(tuple(x.shape[1:]))
            return (x - torch.as_tensor(mean, dtype=x.dtype, device=x.device)) / torch.as_tensor(
                std, dtype=x.dtype, device=x.device
            )
        x = np.asarray(x, dtype=np.float32) * np.float32(self.scale)
        if self.per == "none":
            return x
        mean, std = self._stats(tuple(x.shape[1:]))
        return ((x - mean) / std).astype(np.float32)

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


__all__ = ["Normalization"]
