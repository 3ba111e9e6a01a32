"""Each replica's share of an epoch: one permutation of the training set per epoch (the same on
every rank, from `epoch_generator`), replica r taking every N-th index from r on, as
`DistributedSampler` splits a dataset; the tail that does not divide by N is dropped, so every
replica has the same number of steps."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from lrensemble.data.augment import ImageAugment
from lrensemble.data.loader import epoch_generator
from lrensemble.errors import ParameterError


class ShardedBatches:
    """Replica `rank` of `replicas`: minibatches of `batch_size` from its share of (x, y),
    held on `device`; `epoch(e)` is a pure function of (seed, e, rank), so a resumed run draws
    what an uninterrupted one would."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        rank: int,
        replicas: int,
        seed: int = 0,
        device: torch.device | str = "cpu",
        augment: ImageAugment | None = None,
    ) -> None:
        self.share = len(y) // replicas
        if self.share < 1:
            raise ParameterError(
                f"The training set has {len(y)} examples, fewer than the {replicas} replicas."
            )
        self.x, self.y = x.to(device), y.to(device)
        self.batch_size, self.rank, self.replicas = int(batch_size), int(rank), int(replicas)
        self.seed, self.augment = seed, augment

    def __len__(self) -> int:
        return math.ceil(self.share / self.batch_size)

    def epoch(self, index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = epoch_generator(self.seed, index)
        order = torch.randperm(len(self.y), generator=gen)[: self.share * self.replicas]
        mine = order[self.rank :: self.replicas].to(self.x.device)
        aug_gen = torch.Generator().manual_seed(int(gen.initial_seed()) + 7919 * (self.rank + 1))
        for i in range(len(self)):
            idx = mine[i * self.batch_size : (i + 1) * self.batch_size]
            xb = self.x[idx]
            if self.augment is not None:
                xb = self.augment(xb, aug_gen)
            yield xb, self.y[idx]
