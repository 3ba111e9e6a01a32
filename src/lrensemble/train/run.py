"""A training run described by a config file: data, model, policy and `TrainConfig`, checked
completely before anything loads or trains."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from lrensemble.config import StrictModel, describe_validation_error, load_toml
from lrensemble.data.registry import DATASETS
from lrensemble.errors import ConfigError
from lrensemble.models.registry import MODELS, create_model
from lrensemble.registry import check_parameters
from lrensemble.schedules.base import Policy, from_spec
from lrensemble.train.trainer import TrainConfig, TrainResult, build_model, train_member


def _named(section: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(f"the [{section}] table needs a string 'name'")
    return value


class TrainRun(StrictModel):
    """`[data]`, `[model]` and `[policy]` tables each have a `name` and that entry's
    parameters; `[train]` holds `TrainConfig` fields."""

    data: dict[str, Any] = Field(default_factory=lambda: {"name": "mnist1d"})
    model: dict[str, Any] = Field(default_factory=lambda: {"name": "cnn1d"})
    policy: dict[str, Any] = Field(default_factory=lambda: {"name": "onecycle", "max_lr": 0.1})
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("data", "model", "policy")
    @classmethod
    def _has_name(cls, value: Any, info: Any) -> dict[str, Any]:
        return _named(info.field_name, value)

    def params(self, section: str) -> dict[str, Any]:
        return {k: v for k, v in getattr(self, section).items() if k != "name"}

    def build_policy(self) -> Policy:
        return from_spec(self.policy)

    def check(self) -> None:
        """Check names and parameters of every section (raises `LREnsembleError`)."""
        check_parameters(
            DATASETS.get(self.data["name"]), self.params("data"), f"dataset {self.data['name']!r}"
        )
        if not self.model["name"].startswith("timm/"):
            name = self.model["name"]
            try:
                MODELS.get(name)
            except KeyError:
                create_model(name, 1)  # wrn-D-K names expand here; unknown names raise
            else:
                check_parameters(MODELS.get(name), self.params("model"), f"model {name!r}")
        self.build_policy()


def load_run(path: str | os.PathLike[str] | None, **overrides: Any) -> TrainRun:
    """Read a run config (None: the embedded default) and apply `train` overrides."""
    raw = load_toml(path) if path is not None else {}
    where = str(path) if path is not None else "default config"
    train = dict(raw.get("train", {}) or {})
    train.update({k: v for k, v in overrides.items() if v is not None})
    raw = {**raw, "train": train}
    try:
        run = TrainRun.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, where)) from None
    run.check()
    return run


def execute_run(
    run: TrainRun, out_dir: str | Path | None, progress: bool | None = None
) -> TrainResult:
    """Load the data, build the model from the run's seed, and train it."""
    from lrensemble.data.registry import load_dataset

    dataset = load_dataset(run.data["name"], **run.params("data"))
    model = build_model(run.model["name"], dataset, run.train.seed, **run.params("model"))
    return train_member(
        model,
        dataset,
        run.build_policy(),
        run.train,
        out_dir=out_dir,
        model_spec=run.model,
        progress=progress,
        description=f"{run.model['name']} · {run.build_policy().short_label}",
    )
