"""A training run described by a config file: data, model, policy and `TrainConfig`, checked
completely before anything loads or trains."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from lrensemble.atomic import file_in_the_way
from lrensemble.config import StrictModel, config_error, load_toml
from lrensemble.data.registry import DATASETS
from lrensemble.errors import DataError
from lrensemble.models.registry import check_model_params
from lrensemble.registry import check_parameters
from lrensemble.schedules.base import Policy, from_spec
from lrensemble.train.trainer import TrainConfig, TrainResult, build_model, train_member


def _named(section: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(f"the [{section}] table needs a string 'name'")
    return value


class TrainingSetup(StrictModel):
    """What every member of a config trains on: the `[data]` and `[model]` tables (each a
    `name` and that entry's parameters) and `[train]` (`TrainConfig` fields). Each config that
    trains members (one run, a sweep, a method) adds its own tables to these."""

    data: dict[str, Any] = Field(default_factory=lambda: {"name": "mnist1d"})
    model: dict[str, Any] = Field(default_factory=lambda: {"name": "cnn1d"})
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("data", "model")
    @classmethod
    def _has_name(cls, value: Any, info: Any) -> dict[str, Any]:
        return _named(info.field_name, value)

    def params(self, section: str) -> dict[str, Any]:
        return {k: v for k, v in getattr(self, section).items() if k != "name"}

    def check(self) -> None:
        """Check the names and parameters of data and model (raises `LREnsembleError`)."""
        check_parameters(
            DATASETS.get(self.data["name"]), self.params("data"), f"dataset {self.data['name']!r}"
        )
        check_model_params(self.model["name"], self.params("model"))


class TrainRun(TrainingSetup):
    """One member: the training setup plus a `[policy]` table."""

    policy: dict[str, Any] = Field(default_factory=lambda: {"name": "onecycle", "max_lr": 0.1})

    @field_validator("policy")
    @classmethod
    def _policy_has_name(cls, value: Any) -> dict[str, Any]:
        return _named("policy", value)

    def build_policy(self) -> Policy:
        return from_spec(self.policy)

    def check(self) -> None:
        """Check names and parameters of every section (raises `LREnsembleError`)."""
        super().check()
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
        raise config_error(exc, where, overrides) from None
    run.check()
    return run


def check_out_dir(path: str | Path) -> Path:
    """`path` if a member can be written there (an existing directory, or one that can be
    created), else one `DataError` sentence; nothing is created."""
    path = Path(path)
    blocking = file_in_the_way(path)
    if blocking == path:
        raise DataError(f"--out {path} is a file, not a directory.")
    if blocking is not None:
        raise DataError(f"--out {path}: {blocking} is a file, not a directory.")
    parent = next((p for p in path.parents if p.exists()), Path("."))
    writable = path if path.exists() else parent
    if not os.access(writable, os.W_OK | os.X_OK):
        raise DataError(f"--out {path}: {writable} is not writable.")
    return path


def execute_run(
    run: TrainRun, out_dir: str | Path | None, progress: bool | None = None
) -> TrainResult:
    """Load the data, build the model from the run's seed, and train it; a bad `out_dir` is
    refused before anything loads."""
    from lrensemble.data.registry import load_dataset

    if out_dir is not None:
        check_out_dir(out_dir)
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
