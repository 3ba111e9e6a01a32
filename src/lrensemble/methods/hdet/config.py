"""The `lrens hdet` config: what the replicas train on (`[data]`, `[model]`, `[train]`) and the
`[hdet]` table (replicas, the one-cycle peak, the spread, syncs, the controller, warm init, the
other hyperparameters spread, whether the replicas become members too)."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, model_validator

from lrensemble.config import StrictModel
from lrensemble.errors import ConfigError, LREnsembleError
from lrensemble.methods.hdet.hyperparams import (
    DropoutRate,
    Hyperparameter,
    LabelSmoothing,
    WeightDecay,
)
from lrensemble.methods.run_dir import load_method_config
from lrensemble.train.run import TrainingSetup


class SpreadSpec(StrictModel):
    """`[hdet.spread_hyperparameters]`: each key's α (multipliers in [1 − α, 1 + α]). The bases
    are `[train] weight_decay`, `[train] label_smoothing` and `[hdet] dropout`."""

    weight_decay: float | None = Field(None, ge=0, lt=1, allow_inf_nan=False)
    label_smoothing: float | None = Field(None, ge=0, lt=1, allow_inf_nan=False)
    dropout: float | None = Field(None, ge=0, lt=1, allow_inf_nan=False)


class HdetSpec(StrictModel):
    """`[hdet]`: `replicas` (the default of `--nproc`); `max_lr` (the one-cycle peak) with
    `pct_start`, `div_factor`, `final_div_factor`; `spread` (α of the LRs); `sync_every`
    (steps between averages); `warmup_steps` (default: the one-cycle peak); `auto_lr` with
    `beta`, `lam`, `sigma`; `warm_init` with `nu` and an optional `init` checkpoint (default:
    the model built from `[train] seed`); `seed` (permutations and noise); `dropout` (the base
    rate when dropout is spread); `spread_hyperparameters`; `replica_members` (file every
    replica's last pre-sync weights too); `timeout` (seconds a rank waits for the others)."""

    replicas: int = Field(2, ge=1, le=1024)
    max_lr: float = Field(0.1, gt=0, allow_inf_nan=False)
    pct_start: float = Field(0.3, gt=0, lt=1)
    div_factor: float = Field(25.0, gt=0, allow_inf_nan=False)
    final_div_factor: float = Field(1e4, gt=0, allow_inf_nan=False)
    spread: float = Field(0.5, ge=0, lt=1)
    sync_every: int = Field(100, ge=1)
    warmup_steps: int | None = Field(None, ge=0)
    auto_lr: bool = True
    beta: float = Field(0.9, ge=0, lt=1)
    lam: float = Field(0.5, ge=0, allow_inf_nan=False)
    sigma: float = Field(0.1, gt=0, allow_inf_nan=False)
    warm_init: bool = True
    nu: float = Field(0.01, ge=0, allow_inf_nan=False)
    init: str | None = None
    seed: int = Field(0, ge=0, lt=2**43)
    dropout: float | None = Field(None, ge=0, lt=1)
    spread_hyperparameters: SpreadSpec = Field(default_factory=SpreadSpec)
    replica_members: bool = False
    timeout: float = Field(300.0, gt=0, le=86400)

    @model_validator(mode="after")
    def _consistent(self) -> HdetSpec:
        if self.init is not None and not self.warm_init:
            raise ValueError("init is the warm start's checkpoint: set warm_init = true")
        if self.spread_hyperparameters.dropout is not None and self.dropout is None:
            raise ValueError("spreading dropout needs its base rate: set dropout")
        return self


class HdetConfig(TrainingSetup):
    """An HDET run: the training setup plus `[hdet]`."""

    hdet: HdetSpec

    def hyperparameters(self) -> list[Hyperparameter]:
        """The hyperparameters spread besides the LR, built (and so range-checked)."""
        spreads, out = self.hdet.spread_hyperparameters, []
        if spreads.weight_decay is not None:
            out.append(WeightDecay(self.train.weight_decay, spread=spreads.weight_decay))
        if spreads.label_smoothing is not None:
            out.append(LabelSmoothing(self.train.label_smoothing, spread=spreads.label_smoothing))
        if spreads.dropout is not None and self.hdet.dropout is not None:
            out.append(DropoutRate(self.hdet.dropout, spread=spreads.dropout))
        return out

    def check(self) -> None:
        super().check()
        if self.train.optimizer in ("sam", "asam"):
            raise ConfigError(
                f"train.optimizer: HDET trains with sgd or adamw, not {self.train.optimizer}."
            )
        if self.hdet.init is not None and not os.path.isfile(self.hdet.init):
            raise ConfigError(f"hdet.init: the checkpoint {self.hdet.init} does not exist.")
        try:
            self.hyperparameters()
        except LREnsembleError as exc:
            raise ConfigError(f"hdet.spread_hyperparameters: {exc}") from None


def load_hdet_config(path: str | os.PathLike[str], **overrides: Any) -> HdetConfig:
    """Read and validate an HDET config; `overrides` are `[train]` fields (seed, device)."""
    return load_method_config(path, HdetConfig, "hdet", **overrides)
