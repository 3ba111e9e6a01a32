"""The TOML config of an LR sweep: data, model, training, search space and study."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from lrensemble.config import StrictModel, config_error, load_toml
from lrensemble.errors import ConfigError
from lrensemble.train.run import TrainingSetup


class SearchConfig(StrictModel):
    """`method = "grid"` trains every policy of `grid` (a named grid, scaled by `scale`) or of
    `policies` (explicit tables); `"random"` and `"tpe"` draw `trials` policies from `space`."""

    method: Literal["grid", "random", "tpe"] = "grid"
    grid: str | None = None
    scale: float = Field(1.0, gt=0)
    policies: list[dict[str, Any]] | None = None
    trials: int | None = Field(None, gt=0)
    space: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        if self.method == "grid":
            if (self.grid is None) == (self.policies is None):
                raise ValueError("grid search needs exactly one of 'grid' or 'policies'")
        else:
            if self.trials is None or self.space is None:
                raise ValueError(f"{self.method} search needs 'trials' and a [search.space] table")
        return self


HEARTBEATS_PER_GRACE = 3
MIN_GRACE_SECONDS = 30.0  # shorter: a busy machine's late heartbeat looks like a dead worker


class StudyConfig(StrictModel):
    """Where trials are recorded: an Optuna storage URL (default: SQLite in the output
    directory), a journal file (`*.log` or `journal:PATH`), or `env:NAME` (the URL in that
    environment variable, e.g. to keep a password out of files); the study name and task; how
    many trials a worker claims at once and trains together (`batch_members`), how many
    workers are expected to share the sweep (`workers`: each claims at most its share), and
    how long a worker waits for a database server that is down or restarting
    (`outage_seconds`)."""

    name: str | None = None
    storage: str | None = None
    task: str = "classification"
    seed: int = Field(0, ge=0, lt=2**63)
    batch_members: int = Field(16, ge=1)
    workers: int = Field(1, ge=1, le=10_000)
    heartbeat_seconds: float = Field(10.0, gt=0, allow_inf_nan=False)
    grace_seconds: float = Field(120.0, ge=MIN_GRACE_SECONDS, allow_inf_nan=False)
    outage_seconds: float = Field(120.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _beats_within_grace(self) -> StudyConfig:
        # a live trial must beat several times within the grace period, or another worker
        # takes it for dead and trains its point a second time
        if self.heartbeat_seconds * HEARTBEATS_PER_GRACE > self.grace_seconds:
            raise ValueError(
                f"grace_seconds ({self.grace_seconds:g}) must be at least "
                f"{HEARTBEATS_PER_GRACE} × heartbeat_seconds ({self.heartbeat_seconds:g}), so "
                "that a live trial is never taken for a dead one"
            )
        return self


class TuneConfig(TrainingSetup):
    """A sweep: what every member trains on (`[data]`, `[model]`, `[train]`) plus `[search]`
    (which supplies the policies) and `[study]`."""

    search: SearchConfig = Field(default_factory=lambda: SearchConfig(grid="table1"))
    study: StudyConfig = Field(default_factory=StudyConfig)

    def study_name(self) -> str:
        if self.study.name:
            return self.study.name
        return f"{self.data['name']}-{self.model['name']}-{self.search.method}"


def load_tune_config(path: str | os.PathLike[str] | None, **overrides: Any) -> TuneConfig:
    """Read and validate a sweep config; `overrides` are `train.*` fields, `trials`,
    `storage`, `data` (a whole `[data]` table, e.g. from `--data`) and `model` (a model name,
    replacing the `[model]` table). Names and parameters of data, model and every policy are
    checked here, before anything trains. An `[ensemble]` table is `lrens run`'s (the
    pipeline reads it); a sweep leaves it alone."""
    raw = load_toml(path) if path is not None else {}
    where = str(path) if path is not None else "default config"
    return tune_config_from(raw, where, **overrides)


def tune_config_from(raw: dict[str, Any], where: str, **overrides: Any) -> TuneConfig:
    """`load_tune_config` on a config already read (`where` names it in errors)."""
    if "policy" in raw:
        raise ConfigError(f"{where}: policy: a sweep takes its policies from [search].")
    raw = {k: v for k, v in raw.items() if k != "ensemble"}
    if overrides.get("data") is not None:
        raw["data"] = dict(overrides["data"])
    if overrides.get("model") is not None:
        raw["model"] = {"name": overrides["model"]}
    train = dict(raw.get("train", {}) or {})
    for key in ("epochs", "seed", "device"):
        if overrides.get(key) is not None:
            train[key] = overrides[key]
    raw["train"] = train
    search = dict(raw.get("search", {}) or {})
    if overrides.get("trials") is not None:
        search["trials"] = overrides["trials"]
    if search:
        raw["search"] = search
    study = dict(raw.get("study", {}) or {})
    for key in ("storage", "workers"):
        if overrides.get(key) is not None:
            study[key] = overrides[key]
    raw["study"] = study
    try:
        config = TuneConfig.model_validate(raw)
    except ValidationError as exc:
        train_options = {k: overrides.get(k) for k in ("epochs", "seed", "device")}
        raise config_error(exc, where, train_options) from None
    config.check()
    from lrensemble.tuning.space import grid_points, space_choices

    try:
        if config.search.method == "grid":
            grid_points(config.search)
        else:
            space_choices(config.search)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return config


def default_storage(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'study.db').resolve()}"
