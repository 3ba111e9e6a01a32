"""`BatchLoader`: minibatches sliced from tensors that live on the training device."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from lrensemble.data.augment import ImageAugment
from lrensemble.errors import ParameterError


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator for one epoch: a pure function of (seed, epoch), so a run resumed at
    epoch e draws exactly what the uninterrupted run drew."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch) * 7_919) % (2**63))


class BatchLoader:
    """Iterate minibatches of (x, y) held on `device`, shuffled per epoch from an explicit seed.

    The data is moved to the device once; each batch is an index into it, augmented batch-wise
    when `augment` is given. `epoch(e)` yields epoch e's batches; iterating the loader itself
    yields the next epoch's.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
        augment: ImageAugment | None = None,
    ) -> None:
        if batch_size < 1:
            raise ParameterError(f"batch_size must be at least 1, got {batch_size}.")
        if len(x) != len(y):
            raise ParameterError(f"x has {len(x)} rows but y has {len(y)}.")
        self.x = x.to(device)
        self.y = y.to(device)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last and len(y) >= batch_size
        self.seed = seed
        self.augment = augment
        self._next_epoch = 0

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def epoch(self, index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = epoch_generator(self.seed, index)
        n = len(self.y)
        if self.shuffle:
            order = torch.randperm(n, generator=gen).to(self.x.device)
        else:
            order = torch.arange(n, device=self.x.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            xb = self.x[idx]
            if self.augment is not None:
                xb = self.augment(xb, gen)
            yield xb, self.y[idx]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self._next_epoch += 1
        return self.epoch(self._next_epoch - 1)
