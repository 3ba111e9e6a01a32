"""The CIFAR-10-C corruptions (Hendrycks & Dietterich, ICLR 2019) of images, written here with
numpy, torch and Pillow, at the severity parameters of the benchmark's CIFAR-10 version.

Every function takes float32 images (N, C, H, W) with values in [0, 1], a severity from 1 to 5
and a numpy `Generator`, and returns new images of the same shape and dtype, clipped to
[0, 1]. A function draws its random numbers in the same way at every severity, so a generator
seeded alike gives the same noise, pixels or angles at every severity, only stronger.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F

# Severity parameters (severities 1 to 5) of the CIFAR-10-C benchmark.
GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)  # std of additive noise
SHOT_NOISE = (500, 250, 100, 75, 50)  # photons at full intensity (Poisson)
IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)  # fraction of values set to 0 or 1
DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))  # disk radius, alias σ
MOTION_BLUR = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))  # radius, σ (pixels)
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)  # factor on deviations from the mean
BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to the HSV value
PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)  # fraction of the side kept
JPEG_QUALITY = (80, 65, 58, 50, 40)


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0).astype(np.float32, copy=False)


def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: every value plus normal noise of std 0.04 … 0.10."""
    c = GAUSSIAN_NOISE[severity - 1]
    return _clip(x + c * rng.standard_normal(x.shape, dtype=np.float32))


def shot_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Photon noise: Poisson counts of `x · c` photons, c = 500 … 50, divided by c."""
    c = SHOT_NOISE[severity - 1]
    return _clip(rng.poisson(x.astype(np.float64) * c) / c)


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper: a fraction 0.01 … 0.07 of the values, half set to 0 and half to 1."""
    c = IMPULSE_NOISE[severity - 1]
    u = rng.random(x.shape, dtype=np.float32)
    out = x.copy()
    out[u < c / 2] = 0.0
    out[u > 1 - c / 2] = 1.0
    return out


def _filter(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Each channel correlated with a 2-D kernel (odd sides), borders mirrored without
    repeating the edge (replicated when the image is smaller than the kernel)."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(n * c, 1, h, w)
    pad = (kw // 2, kw // 2, kh // 2, kh // 2)
    mode = "reflect" if kh // 2 < h and kw // 2 < w else "replicate"
    k = torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32))[None, None]
    return F.conv2d(F.pad(t, pad, mode=mode), k).reshape(n, c, h, w).numpy()


def _gaussian_1d(sigma: float, radius: int) -> np.ndarray:
    i = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(i**2) / (2 * sigma**2))
    return g / g.sum()


def disk_kernel(radius: float, alias_sigma: float) -> np.ndarray:
    """A defocused lens: the pixels within `radius` of the center, equally weighted, smoothed
    by a 3×3 Gaussian of `alias_sigma` against aliasing; cropped to its nonzero support."""
    reach = max(1, math.ceil(radius))
    i = np.arange(-reach - 1, reach + 2)
    disk = ((i[:, None] ** 2 + i[None, :] ** 2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    g = _gaussian_1d(alias_sigma, 1)
    padded = np.pad(disk, 1)
    smooth = sum(g[k] * padded[k : k + disk.shape[0], 1:-1] for k in range(3))
    padded = np.pad(smooth, 1)
    smooth = sum(g[k] * padded[1:-1, k : k + disk.shape[1]] for k in range(3))
    rows, cols = np.nonzero(smooth > 1e-12)
    r = max(int(np.abs(rows - reach - 1).max()), int(np.abs(cols - reach - 1).max()))
    kernel = smooth[reach + 1 - r : reach + 2 + r, reach + 1 - r : reach + 2 + r]
    return kernel / kernel.sum()


def defocus_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """An out-of-focus lens: a disk of radius 0.3 … 1.5 pixels (`disk_kernel`)."""
    radius, alias = DEFOCUS_BLUR[severity - 1]
    return _clip(_filter(x, disk_kernel(radius, alias)))


def motion_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A moving camera: each pixel averages the pixels behind it along a line at a random
    angle in [-45°, 45°] per image, weighted by a half Gaussian of σ = 1 … 2.5 pixels over
    2·radius + 1 steps (radius 6 … 9), edges repeated."""
    radius, sigma = MOTION_BLUR[severity - 1]
    n, _, h, w = x.shape
    angle = np.deg2rad(rng.uniform(-45.0, 45.0, n))
    steps = np.arange(2 * radius + 1)
    weights = np.exp(-(steps**2) / (2 * sigma**2))
    keep = weights > 1e-4 * weights[0]
    steps, weights = steps[keep], weights[keep] / weights[keep].sum()
    out = np.zeros_like(x)
    index = np.arange(n)[:, None, None]
    for step, weight in zip(steps, weights, strict=True):
        dy = np.rint(step * np.sin(angle)).astype(int)
        dx = np.rint(step * np.cos(angle)).astype(int)
        rows = np.clip(np.arange(h)[None, :] + dy[:, None], 0, h - 1)  # (N, H)
        cols = np.clip(np.arange(w)[None, :] + dx[:, None], 0, w - 1)  # (N, W)
        shifted = x[index, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
        out += np.float32(weight) * shifted.transpose(0, 3, 1, 2)
    return _clip(out)


def contrast(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Less contrast: each channel's deviations from its mean over the image times 0.75 … 0.15."""
    c = CONTRAST[severity - 1]
    mean = x.mean(axis=(2, 3), keepdims=True)
    return _clip((x - mean) * c + mean)


def brightness(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Brighter: 0.05 … 0.3 added to the HSV value (the largest channel), hue and saturation
    kept (every channel scaled alike; black becomes gray)."""
    c = BRIGHTNESS[severity - 1]
    value = x.max(axis=1, keepdims=True)
    brighter = np.clip(value + c, 0.0, 1.0)
    ratio = brighter / np.where(value > 0, value, 1.0)
    return _clip(np.where(value > 0, x * ratio, brighter))


def box_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights resizing a line of n_in pixels to n_out with a box filter: each
    output pixel averages the input pixels whose centers lie within half its footprint (at
    least one input pixel wide) of its own center."""
    scale = n_in / n_out
    footprint = max(scale, 1.0)
    centers = (np.arange(n_out) + 0.5) * scale
    offsets = ((np.arange(n_in) + 0.5)[None, :] - centers[:, None]) / footprint
    m = ((offsets > -0.5) & (offsets <= 0.5)).astype(np.float64)
    return m / m.sum(axis=1, keepdims=True)


def pixelate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Low resolution: box-resized to 0.95 … 0.65 of each side, then back."""
    c = PIXELATE[severity - 1]
    _, _, h, w = x.shape
    sh, sw = max(1, int(h * c)), max(1, int(w * c))
    rows = box_matrix(sh, h) @ box_matrix(h, sh)  # down, then up
    cols = box_matrix(sw, w) @ box_matrix(w, sw)
    return _clip(np.einsum("ij,ncjk,lk->ncil", rows, x, cols, optimize=True))


def jpeg_compression(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Lossy coding: each image saved as JPEG (Pillow) at quality 80 … 40 and decoded; RGB
    images as RGB, other channel counts one gray image per channel."""
    from PIL import Image

    quality = JPEG_QUALITY[severity - 1]
    pixels = np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8)

    def roundtrip(image: np.ndarray, mode: str) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return np.asarray(decoded.convert(mode))

    out = np.empty_like(pixels)
    for i, image in enumerate(pixels):
        if image.shape[0] == 3:
            out[i] = roundtrip(np.ascontiguousarray(image.transpose(1, 2, 0)), "RGB").transpose(
                2, 0, 1
            )
        else:
            for ch, plane in enumerate(image):
                out[i, ch] = roundtrip(np.ascontiguousarray(plane), "L")
    return out.astype(np.float32) / 255


IMAGE_CORRUPTIONS = {
    f.__name__: f
    for f in (
        gaussian_noise,
        shot_noise,
        impulse_noise,
        defocus_blur,
        motion_blur,
        contrast,
        brightness,
        pixelate,
        jpeg_compression,
    )
}

__all__ = ["IMAGE_CORRUPTIONS", "box_matrix", "disk_kernel"]
