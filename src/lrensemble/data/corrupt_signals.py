"""Corruptions of 1-D signals (N, C, L), such as MNIST-1D: the counterparts of the CIFAR-10-C
image corruptions for a sensor's time series, at five severities each.

Every function takes float32 signals as recorded (not normalized), a severity from 1 to 5 and
a numpy `Generator`, and returns new signals of the same shape and dtype. Amplitudes are
relative to σ, the standard deviation of each channel over the signals given (the whole test
set), and every result is clipped to each channel's range over the signals given, as a sensor
saturates. A function draws its random numbers in the same way at every severity, so a
generator seeded alike shifts the same signals in the same direction, or drops the same time
steps, only more at a higher severity.

The parameters are chosen so that the 1-D CNN of `lrens demo`, trained 40 epochs under onecycle
with peak LR 0.1 (93% clean test accuracy), keeps about 90% accuracy at severity 1 and about
60% at severity 5, averaged over the corruptions, as ResNets do on CIFAR-10-C.
"""

from __future__ import annotations

import numpy as np

from lrensemble.data.corrupt_images import box_matrix

GAUSSIAN_NOISE = (0.1, 0.2, 0.3, 0.45, 0.6)  # std of additive noise, in σ
IMPULSE_NOISE = (0.0025, 0.005, 0.01, 0.015, 0.025)  # fraction of values set to a range end
DROPOUT = (0.025, 0.05, 0.1, 0.15, 0.25)  # fraction of time steps lost
SHIFT = (0.05, 0.1, 0.15, 0.2, 0.25)  # shift, as a fraction of the length
TIME_SCALE = (0.05, 0.1, 0.15, 0.2, 0.3)  # stretch or squeeze factor 1 ± this
AMPLITUDE = (0.9, 0.8, 0.7, 0.6, 0.5)  # factor on deviations from the signal's mean
OFFSET = (0.1, 0.2, 0.35, 0.5, 0.7)  # added constant, in σ
SMOOTHING = (0.4, 0.5, 0.6, 0.75, 0.9)  # Gaussian σ, in time steps
DOWNSAMPLE = (0.95, 0.9, 0.85, 0.75, 0.65)  # fraction of the time steps kept (as pixelate)
QUANTIZE = (48, 32, 20, 12, 8)  # levels over the channel's range


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per channel, broadcastable to (N, C, L): mean, σ, minimum and maximum."""
    axes = (0, 2)
    return (
        x.mean(axis=axes, keepdims=True),
        x.std(axis=axes, keepdims=True),
        x.min(axis=axes, keepdims=True),
        x.max(axis=axes, keepdims=True),
    )


def _clip(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.clip(x, lo, hi).astype(np.float32, copy=False)


def _signs(rng: np.random.Generator, n: int) -> np.ndarray:
    """+1 or -1 per signal, shaped (N, 1, 1)."""
    return np.where(rng.random(n) < 0.5, -1.0, 1.0).reshape(n, 1, 1)


def _resample(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """x (N, C, L) read at fractional time positions (N, L') by linear interpolation, the end
    values repeated beyond the ends."""
    length = x.shape[2]
    p = np.clip(positions, 0.0, length - 1.0)
    left = np.floor(p).astype(int)
    right = np.minimum(left + 1, length - 1)
    frac = (p - left)[:, None, :]
    rows = np.arange(len(x))[:, None]
    lo = x[rows, :, left].transpose(0, 2, 1)  # (N, C, L')
    hi = x[rows, :, right].transpose(0, 2, 1)
    return lo + frac * (hi - lo)


def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: every value plus normal noise of std 0.1, 0.2, 0.3, 0.45, 0.6 σ."""
    _, sigma, lo, hi = _stats(x)
    c = GAUSSIAN_NOISE[severity - 1]
    return _clip(x + c * sigma * rng.standard_normal(x.shape, dtype=np.float32), lo, hi)


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Spikes (salt and pepper): a fraction 0.0025, 0.005, 0.01, 0.015, 0.025 of the values,
    half set to the channel's minimum and half to its maximum."""
    _, _, lo, hi = _stats(x)
    c = IMPULSE_NOISE[severity - 1]
    u = rng.random(x.shape, dtype=np.float32)
    out = x.copy()
    out = np.where(u < c / 2, lo, out)
    out = np.where(u > 1 - c / 2, hi, out)
    return out.astype(np.float32)


def dropout(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Dropped samples: a fraction 0.025, 0.05, 0.1, 0.15, 0.25 of the time steps of each
    signal, every channel at once, read as the channel's mean (a sensor that reports
    nothing)."""
    mean, _, lo, hi = _stats(x)
    c = DROPOUT[severity - 1]
    lost = rng.random((x.shape[0], 1, x.shape[2])) < c
    return _clip(np.where(lost, mean, x), lo, hi)


def shift(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A late or early start: each signal moved by 0.05, 0.1, 0.15, 0.2, 0.25 of its length
    (2, 4, 6, 8, 10 of MNIST-1D's 40 steps), forward or back at random, the end value
    repeated into the gap."""
    n, _, length = x.shape
    steps = round(SHIFT[severity - 1] * length)
    moved = _signs(rng, n)[:, 0, 0] * steps
    positions = np.arange(length)[None, :] - moved[:, None]
    return _resample(x, positions).astype(np.float32)


def time_scale(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A faster or slower event: each signal stretched or squeezed (at random) in time about
    its middle by a factor 1 ± 0.05, 0.1, 0.15, 0.2, 0.3, linearly interpolated, ends
    repeated."""
    n, _, length = x.shape
    factor = 1.0 + _signs(rng, n)[:, 0, 0] * TIME_SCALE[severity - 1]
    middle = (length - 1) / 2
    positions = middle + (np.arange(length)[None, :] - middle) / factor[:, None]
    return _resample(x, positions).astype(np.float32)


def amplitude(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A weaker signal (the counterpart of contrast): each signal's deviations from its own
    mean, per channel, times 0.9, 0.8, 0.7, 0.6, 0.5."""
    c = AMPLITUDE[severity - 1]
    mean = x.mean(axis=2, keepdims=True)
    return ((x - mean) * c + mean).astype(np.float32)


def offset(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A baseline offset (the counterpart of brightness): each signal plus or minus (at
    random) 0.1, 0.2, 0.35, 0.5, 0.7 σ."""
    _, sigma, lo, hi = _stats(x)
    c = OFFSET[severity - 1]
    return _clip(x + _signs(rng, len(x)) * c * sigma, lo, hi)


def smoothing(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A slow sensor (the counterpart of blur): a Gaussian filter of σ = 0.4, 0.5, 0.6, 0.75,
    0.9 time steps, ends mirrored."""
    sigma = SMOOTHING[severity - 1]
    radius = min(int(np.ceil(3 * sigma)), x.shape[2] - 1)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-(taps**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    mode = "reflect" if x.shape[2] > 1 else "edge"
    padded = np.pad(x, ((0, 0), (0, 0), (radius, radius)), mode=mode)
    out = sum(k * padded[:, :, i : i + x.shape[2]] for i, k in enumerate(kernel))
    return np.asarray(out, dtype=np.float32)


def downsample(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A lower sampling rate (the counterpart of pixelate, with its fractions): each signal
    box-resized to 0.95, 0.9, 0.85, 0.75, 0.65 of its time steps (rounded down), then
    back."""
    length = x.shape[2]
    kept = max(1, int(length * DOWNSAMPLE[severity - 1]))
    resize = box_matrix(kept, length) @ box_matrix(length, kept)  # down, then up
    return np.einsum("ij,ncj->nci", resize, x).astype(np.float32)


def quantize(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Coarse digitization (the counterpart of JPEG): values rounded to 48, 32, 20, 12, 8
    evenly spaced levels over each channel's range."""
    _, _, lo, hi = _stats(x)
    levels = QUANTIZE[severity - 1]
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.rint((x - lo) / span * (levels - 1)) / (levels - 1)
    return _clip(lo + q * span, lo, hi)


SIGNAL_CORRUPTIONS = {
    f.__name__: f
    for f in (
        gaussian_noise,
        impulse_noise,
        dropout,
        shift,
        time_scale,
        amplitude,
        offset,
        smoothing,
        downsample,
        quantize,
    )
}

__all__ = ["SIGNAL_CORRUPTIONS"]
