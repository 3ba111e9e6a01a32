"""Hyperparameters other than the LR that HDET spreads and controls (seed 004, Remark 1).

Any scalar that does not change the architecture qualifies: each replica uses its base value
times its own multiplier (each hyperparameter with its own permutation), and the controller
moves the base toward the better replicas, clamped to [low, high]. Unlike the LR it has no
schedule to decay along, so its γ is 0. `apply` puts a replica's value where training reads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn
from torch.optim import Optimizer

from lrensemble.errors import ParameterError

_DROPOUTS = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


class Hyperparameter:
    """A spread scalar: `value` the starting base, `spread` its α (multipliers in
    [1 − α, 1 + α]), `[low, high]` the range the controller keeps the base in; every replica's
    value must stay in range too. The base class applies nothing: the training loop reads the
    value from the scheduler (`scheduler.value(name)`)."""

    name = "hyperparameter"

    def __init__(
        self,
        value: float,
        *,
        spread: float = 0.5,
        low: float = 0.0,
        high: float = math.inf,
        name: str | None = None,
    ) -> None:
        if name is not None:
            self.name = str(name)
        self.value, self.spread = float(value), float(spread)
        self.low, self.high = float(low), float(high)
        if not 0.0 <= self.spread < 1.0:
            raise ParameterError(f"{self.name}: spread must be in [0, 1), got {spread!r}.")
        top = self.value * (1.0 + self.spread)
        if not (self.low <= self.value and top <= self.high):
            raise ParameterError(
                f"{self.name}: the base value {self.value:g} spread by {self.spread:g} reaches "
                f"{top:g}, outside its range [{self.low:g}, {self.high:g}]."
            )

    def clamp_high(self) -> float:
        """The highest base the controller may set: every multiplier (≤ 1 + α) stays ≤ high."""
        return self.high / (1.0 + self.spread)

    def apply(self, value: float, optimizer: Optimizer, models: Sequence[nn.Module]) -> None:
        """Make training use `value` (this replica's). Nothing by default."""


class WeightDecay(Hyperparameter):
    """The optimizer's `weight_decay` in the parameter groups `groups` (all by default)."""

    name = "weight_decay"

    def __init__(
        self, value: float, *, spread: float = 0.5, groups: Sequence[int] | None = None
    ) -> None:
        super().__init__(value, spread=spread, low=0.0)
        self.groups = None if groups is None else [int(g) for g in groups]

    def apply(self, value: float, optimizer: Optimizer, models: Sequence[nn.Module]) -> None:
        groups = optimizer.param_groups
        for i in range(len(groups)) if self.groups is None else self.groups:
            if not 0 <= i < len(groups):
                raise ParameterError(
                    f"weight_decay: the optimizer has no parameter group {i} "
                    f"(it has {len(groups)})."
                )
            groups[i]["weight_decay"] = value


class DropoutRate(Hyperparameter):
    """`p` of every dropout module of the model(s) given to the scheduler."""

    name = "dropout"

    def __init__(self, value: float, *, spread: float = 0.5) -> None:
        super().__init__(value, spread=spread, low=0.0, high=0.99)

    def apply(self, value: float, optimizer: Optimizer, models: Sequence[nn.Module]) -> None:
        found = [m for model in models for m in model.modules() if isinstance(m, _DROPOUTS)]
        if not found:
            raise ParameterError(
                "dropout is spread but the scheduler's model has no dropout module: pass "
                "model= or remove DropoutRate."
            )
        for m in found:
            m.p = value


class LabelSmoothing(Hyperparameter):
    """The label smoothing of the loss: the training loop reads
    `scheduler.value("label_smoothing")` each step."""

    name = "label_smoothing"

    def __init__(self, value: float, *, spread: float = 0.5) -> None:
        super().__init__(value, spread=spread, low=0.0, high=0.99)
