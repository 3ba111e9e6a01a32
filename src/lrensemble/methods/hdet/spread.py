"""The fan-out: N multipliers evenly spaced around 1, and which replica gets which one.

Every spread quantity (each parameter group's LR, each extra hyperparameter) is a *slot* with
its own permutation of the multipliers over the replicas, so that no two slots are tied to the
same replicas. The permutations come from one `torch.Generator` seeded identically on every
replica: every replica draws the same permutations without communicating.
"""

from __future__ import annotations

from typing import Any

import torch

from lrensemble.errors import CheckpointError, ParameterError


def multipliers(replicas: int, spread: float) -> torch.Tensor:
    """ρ_k = 1 + α·(k − (N−1)/2) / max((N−1)/2, 0.5), k = 0 … N−1 (float64): evenly spaced in
    [1 − α, 1 + α], mean 1; one replica gets 1.

    >>> multipliers(3, 0.5).tolist()
    [0.5, 1.0, 1.5]
    """
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ParameterError(f"replicas must be a positive whole number, got {replicas!r}.")
    if not 0.0 <= float(spread) < 1.0:
        raise ParameterError(
            f"spread must be in [0, 1) so that every multiplier stays positive, got {spread!r}."
        )
    centre = (replicas - 1) / 2
    k = torch.arange(replicas, dtype=torch.float64)
    return 1.0 + float(spread) * (k - centre) / max(centre, 0.5)


class Assignment:
    """Which multiplier each replica uses in each slot: `perms[s][r]` is the index k of replica
    r's multiplier in slot s. `reshuffle()` draws a fresh permutation per slot, in slot order,
    from the shared generator; `state_dict()` holds the generator's state, so a resumed run
    draws what the uninterrupted one would."""

    def __init__(self, replicas: int, slots: int, seed: int) -> None:
        self.replicas, self.slots = int(replicas), int(slots)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.perms: list[list[int]] = []
        self.reshuffle()

    def reshuffle(self) -> None:
        self.perms = [
            torch.randperm(self.replicas, generator=self.generator).tolist()
            for _ in range(self.slots)
        ]

    def index(self, slot: int, replica: int) -> int:
        return self.perms[slot][replica]

    def state_dict(self) -> dict[str, Any]:
        return {"perms": [list(p) for p in self.perms], "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        perms = [list(map(int, p)) for p in state["perms"]]
        if len(perms) != self.slots or any(sorted(p) != list(range(self.replicas)) for p in perms):
            raise CheckpointError(
                f"The saved assignment is not {self.slots} permutations of {self.replicas} "
                "replicas: it was saved with other replicas, parameter groups or hyperparameters."
            )
        self.perms = perms
        self.generator.set_state(state["generator"])
