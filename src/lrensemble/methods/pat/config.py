"""The `lrens pat` config: what the members train on (`[data]`, `[model]`, `[train]`) and the
`[pat]` table: the parent, the children's pruning and tuning, and the paper's baselines."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lrensemble.config import StrictModel
from lrensemble.methods.run_dir import load_method_config
from lrensemble.schedules.base import from_spec
from lrensemble.train.run import TrainingSetup


class PatSpec(StrictModel):
    """`[pat]`: the parent (`parent_epochs` with `parent_policy`, default the paper's
    `pat_parent` schedule at `lr`; or `parent_checkpoint` to load one), `members` children
    pruned by `strategy` (random, antirandom, partition), `prune` (connection, neuron) at
    `sparsity`, per `scope` (layer, global), each tuned for `child_epochs` with `tune`
    (onecycle: 10% warm-up from lr/100 to lr, cosine to 1e-7; or constant) at `lr`, optionally
    on its own 90% of the training set (`bagging`); `baselines` adds the paper's Table 1
    comparisons at the same total budget."""

    parent_epochs: int = Field(8, ge=1)
    parent_policy: dict[str, Any] | None = None
    parent_checkpoint: str | None = None
    members: int = Field(8, ge=1, le=1000)
    child_epochs: int = Field(1, ge=1)
    strategy: Literal["random", "antirandom", "partition"] = "antirandom"
    prune: Literal["connection", "neuron"] = "connection"
    sparsity: float = Field(0.5, ge=0.0, lt=1.0)
    scope: Literal["layer", "global"] = "layer"
    tune: Literal["onecycle", "constant"] = "onecycle"
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    bagging: bool = False
    include_parent: bool = False
    baselines: bool = False

    @field_validator("parent_policy")
    @classmethod
    def _policy(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            from_spec(value)  # a bad name or parameter: one sentence now
        return value

    @model_validator(mode="after")
    def _consistent(self) -> PatSpec:
        if self.strategy == "partition" and self.members < 2:
            raise ValueError("a partition needs at least 2 children")
        return self

    def budget(self) -> int:
        """Member-epochs of the parent and its children: what the baselines get too."""
        return self.parent_epochs + self.members * self.child_epochs


class PatConfig(TrainingSetup):
    """A Prune-and-Tune run: the training setup plus `[pat]`."""

    pat: PatSpec = Field(default_factory=PatSpec)


def load_pat_config(path: str | os.PathLike[str], **overrides: Any) -> PatConfig:
    """Read and validate a Prune-and-Tune config; `overrides` are `[train]` fields (seed,
    device)."""
    return load_method_config(path, PatConfig, "pat", **overrides)
