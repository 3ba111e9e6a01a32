"""Device-resident batches and batch-wise augmentation, checked against per-sample loops."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lrensemble.data import BatchLoader, ImageAugment


def test_each_epoch_is_a_seeded_permutation():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    loader = BatchLoader(x, y, 3, seed=5)
    assert len(loader) == 4
    first = torch.cat([yb for _, yb in loader.epoch(0)])
    assert sorted(first.tolist()) == list(range(10))
    assert torch.equal(first, torch.cat([yb for _, yb in loader.epoch(0)]))
    assert not torch.equal(first, torch.cat([yb for _, yb in loader.epoch(1)]))
    other_seed = BatchLoader(x, y, 3, seed=6)
    assert not torch.equal(first, torch.cat([yb for _, yb in other_seed.epoch(0)]))
    # iterating the loader walks epochs 0, 1, ...
    assert torch.equal(torch.cat([yb for _, yb in loader]), first)


def test_drop_last_and_no_shuffle():
    x, y = torch.zeros(10, 1), torch.arange(10)
    loader = BatchLoader(x, y, 4, drop_last=True, shuffle=False)
    assert [yb.tolist() for _, yb in loader.epoch(0)] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_augmentation_matches_a_per_sample_reference():
    x = torch.randn(6, 3, 8, 8)
    aug = ImageAugment(crop_padding=2, flip=True, cutout=3)
    out = aug(x, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    offsets = torch.randint(0, 5, (2, 6), generator=gen)
    flips = torch.rand(6, generator=gen) < 0.5
    y0 = torch.randint(0, 8, (6,), generator=gen) - 1
    x0 = torch.randint(0, 8, (6,), generator=gen) - 1
    for i in range(6):
        img = F.pad(x[i], (2, 2, 2, 2))
        oy, ox = offsets[0, i], offsets[1, i]
        img = img[:, oy : oy + 8, ox : ox + 8]
        if flips[i]:
            img = img.flip(2)
        img = img.clone()
        img[
            :,
            max(int(y0[i]), 0) : max(int(y0[i]) + 3, 0),
            max(int(x0[i]), 0) : max(int(x0[i]) + 3, 0),
        ] = 0
        assert torch.equal(out[i], img), i


def test_loader_applies_augmentation_deterministically_per_epoch():
    x, y = torch.randn(8, 3, 8, 8), torch.arange(8)
    loader = BatchLoader(x, y, 8, seed=1, augment=ImageAugment())
    a = next(iter(loader.epoch(3)))[0]
    b = next(iter(loader.epoch(3)))[0]
    assert torch.equal(a, b) and a.shape == x.shape
