"""Batch-wise image augmentation on the device: random crop with padding, horizontal flip,
cutout. No per-sample Python; randomness comes from an explicit generator."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lrensemble.errors import ParameterError


@dataclass(frozen=True)
class ImageAugment:
    """Augment a batch (B, C, H, W): random crop after zero padding of `crop_padding` pixels,
    horizontal flip with probability 1/2, and a `cutout`×`cutout` zeroed square (0 = off)."""

    crop_padding: int = 4
    flip: bool = True
    cutout: int = 0

    def __post_init__(self) -> None:
        if self.crop_padding < 0 or self.cutout < 0:
            raise ParameterError("crop_padding and cutout must be non-negative.")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.ndim != 4:
            raise ParameterError(f"ImageAugment needs (B, C, H, W) batches, got {tuple(x.shape)}.")
        b, c, h, w = x.shape
        dev = x.device
        # Random numbers are drawn on the CPU generator (a handful per sample) for determinism
        # across devices, then moved; the pixel work happens on x's device.
        if self.crop_padding:
            p = self.crop_padding
            offsets = torch.randint(0, 2 * p + 1, (2, b), generator=generator).to(dev)
            padded = F.pad(x, (p, p, p, p))
            rows = offsets[0, :, None] + torch.arange(h, device=dev)  # (B, H)
            cols = offsets[1, :, None] + torch.arange(w, device=dev)  # (B, W)
            index = (rows[:, :, None] * (w + 2 * p) + cols[:, None, :]).view(b, 1, h * w)
            x = padded.flatten(2).gather(2, index.expand(b, c, h * w)).view(b, c, h, w)
        if self.flip:
            flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.cutout:
            s = self.cutout
            y0 = (torch.randint(0, h, (b,), generator=generator) - s // 2).to(dev)
            x0 = (torch.randint(0, w, (b,), generator=generator) - s // 2).to(dev)
            r = torch.arange(h, device=dev)[None, :, None]
            q = torch.arange(w, device=dev)[None, None, :]
            inside = (
                (r >= y0[:, None, None])
                & (r < y0[:, None, None] + s)
                & (q >= x0[:, None, None])
                & (q < x0[:, None, None] + s)
            )
            x = x.masked_fill(inside[:, None], 0.0)
        return x
