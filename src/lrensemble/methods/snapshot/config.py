"""The `lrens snapshot` config: what the members train on (`[data]`, `[model]`, `[train]`) and
the `[snapshot]` table (the method, its checkpoint(s), phase I, the cycles, the variant)."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, model_validator

from lrensemble.config import StrictModel
from lrensemble.methods.run_dir import load_method_config
from lrensemble.train.run import TrainingSetup

# the thesis's (and the reference code's) weights of each variant's extra term
DEFAULT_ALPHA = {"mse": 20.0, "wo": 10.0, "ce1": 0.1, "ce2": 0.1}


class SnapshotSpec(StrictModel):
    """`[snapshot]`: `method` (sse, starsse, local_de, global_de); `checkpoint` (a path, or a
    list for global_de); `members`; phase I `epochs` (default: `[train] epochs`) and `lr`
    (cosine); the cycles' `cycle_lr` (default 2·lr) and `cycle_epochs` (default epochs/2);
    `variant` with `alpha` (its default weight); `freeze`, the leading blocks frozen in cycles
    2+. Defaults are the thesis's optimum."""

    method: Literal["sse", "starsse", "local_de", "global_de"] = "starsse"
    checkpoint: str | list[str]
    members: int = Field(5, ge=1, le=1000)
    epochs: int | None = Field(None, gt=0)
    lr: float = Field(0.05, gt=0, allow_inf_nan=False)
    cycle_lr: float | None = Field(None, gt=0, allow_inf_nan=False)
    cycle_epochs: int | None = Field(None, gt=0)
    variant: Literal["none", "mse", "rtd", "wo", "ce1", "ce2"] = "none"
    alpha: float | None = Field(None, ge=0, allow_inf_nan=False)
    freeze: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> SnapshotSpec:
        checkpoints = self.checkpoint if isinstance(self.checkpoint, list) else [self.checkpoint]
        if not checkpoints or not all(isinstance(c, str) and c for c in checkpoints):
            raise ValueError("checkpoint must be a path or a non-empty list of paths")
        if self.method == "global_de":
            if len(checkpoints) < 2:
                raise ValueError("global_de fine-tunes several checkpoints: give a list of paths")
            if "members" in self.model_fields_set and self.members != len(checkpoints):
                raise ValueError(
                    f"global_de makes one member per checkpoint: {len(checkpoints)} "
                    f"checkpoints, members = {self.members}"
                )
        elif len(checkpoints) > 1:
            raise ValueError(f"{self.method} starts from one checkpoint, got {len(checkpoints)}")
        if self.method in ("local_de", "global_de") and (self.variant != "none" or self.freeze):
            raise ValueError(
                f"variant and freeze apply to the cycles of sse and starsse, not {self.method}"
            )
        if self.variant == "rtd":
            raise ValueError(
                "variant rtd needs a differentiable RTD (representation topology divergence) "
                "implementation, and no package on the package index provides one, so there is "
                "no extra to install; use variant mse, the other feature-distance variant"
            )
        if self.variant in ("wo", "ce1", "ce2") and self.method != "starsse":
            raise ValueError(
                f"variant {self.variant} compares a cycle with earlier star members: use "
                "method = 'starsse'"
            )
        return self

    @property
    def checkpoints(self) -> list[str]:
        return self.checkpoint if isinstance(self.checkpoint, list) else [self.checkpoint]

    def member_count(self) -> int:
        return len(self.checkpoints) if self.method == "global_de" else self.members

    def weight(self) -> float:
        """The variant's weight α (its default unless given)."""
        if self.alpha is not None:
            return self.alpha
        return DEFAULT_ALPHA.get(self.variant, 0.0)


class SnapshotConfig(TrainingSetup):
    """A snapshot run: the training setup plus `[snapshot]`."""

    snapshot: SnapshotSpec

    def phase_epochs(self) -> int:
        return self.snapshot.epochs or self.train.epochs

    def cycle_epochs(self) -> int:
        return self.snapshot.cycle_epochs or max(1, self.phase_epochs() // 2)

    def cycle_lr(self) -> float:
        return self.snapshot.cycle_lr or 2 * self.snapshot.lr


def load_snapshot_config(path: str | os.PathLike[str], **overrides: Any) -> SnapshotConfig:
    """Read and validate a snapshot config; `overrides` are `[train]` fields (seed, device)."""
    return load_method_config(path, SnapshotConfig, "snapshot", **overrides)
