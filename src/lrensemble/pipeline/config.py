"""The main job's config: a sweep (what the members train on, the search, the study) and how
its ensemble is chosen (`[ensemble]`), composed from the two configs that own those tables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from lrensemble.config import StrictModel, config_error, load_toml
from lrensemble.ensemble import EnsembleConfig
from lrensemble.tuning.config import TuneConfig, tune_config_from


@dataclass(frozen=True)
class RunConfig:
    """`lrens run`'s config: the sweep's tables and the `[ensemble]` table."""

    sweep: TuneConfig
    ensemble: EnsembleConfig

    def study_name(self) -> str:
        return self.sweep.study_name()


def demo_config_path() -> Path:
    """The embedded default: MNIST-1D, the 1-D CNN, the paper's 16 policies."""
    return Path(str(resources.files("lrensemble") / "configs" / "demo.toml"))


class _EnsembleTable(StrictModel):
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)


def ensemble_table(raw: dict[str, Any], where: str) -> EnsembleConfig:
    """The `[ensemble]` table of a config (how the team is chosen), validated; its defaults
    when the file has none."""
    try:
        return _EnsembleTable.model_validate({"ensemble": raw.get("ensemble") or {}}).ensemble
    except ValidationError as exc:
        raise config_error(exc, where, {}) from None


def load_run_config(path: str | os.PathLike[str] | None, **overrides: Any) -> RunConfig:
    """Read and validate a run config (None: defaults); `overrides` as for
    `load_tune_config`."""
    raw = load_toml(path) if path is not None else {}
    where = str(path) if path is not None else "default config"
    ensemble = ensemble_table(raw, where)  # a mistake there is found before the sweep's
    return RunConfig(sweep=tune_config_from(raw, where, **overrides), ensemble=ensemble)


__all__ = ["RunConfig", "demo_config_path", "load_run_config"]
