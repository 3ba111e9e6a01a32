"""What every method's run shares: its config read from TOML (the training setup plus the
method's own table), and its output directory: a marker file with the run's identity (another
config in the same directory is refused), and the pool its members are filed into."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from lrensemble.atomic import file_in_the_way, write_json
from lrensemble.config import config_error, load_toml
from lrensemble.data.base import Dataset
from lrensemble.errors import ConfigError, DataError
from lrensemble.pool import Pool
from lrensemble.train.run import TrainingSetup

C = TypeVar("C", bound=TrainingSetup)


def load_method_config(
    path: str | os.PathLike[str], cls: type[C], table: str, **overrides: Any
) -> C:
    """Read and validate a method's config: `[table]` is required; `overrides` are `[train]`
    fields (seed, device). Names and parameters are checked before anything loads."""
    raw = load_toml(path)
    train = dict(raw.get("train", {}) or {})
    train.update({k: v for k, v in overrides.items() if v is not None})
    raw = {**raw, "train": train}
    if table not in raw:
        raise ConfigError(f"{path}: {table}: the [{table}] table is missing.")
    try:
        config = cls.model_validate(raw)
    except ValidationError as exc:
        raise config_error(exc, str(path), overrides) from None
    config.check()
    return config


def open_run(
    out: Path,
    marker_name: str,
    fingerprint: str,
    config: TrainingSetup,
    pool_dir: Path,
    dataset: Dataset,
    what: str,
) -> Pool:
    """Create (or reopen) a run's directory and pool: the marker `out/marker_name` records the
    run's fingerprint and config; a directory holding another run (`what`, e.g. "a snapshot
    run") is refused in one sentence. Call it after every check, so a refused run writes
    nothing."""
    blocking = file_in_the_way(out)
    if blocking is not None:
        raise ConfigError(f"--out {out}: {blocking} is a file, not a directory.")
    out.mkdir(parents=True, exist_ok=True)
    marker = out / marker_name
    if marker.exists():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(f"{marker} is unreadable; restore it or use another --out.") from None
        if previous != fingerprint:
            raise ConfigError(
                f"{out} holds {what} with another config or data; use another --out, or the "
                "same config."
            )
    else:
        record = {"fingerprint": fingerprint, "config": config.model_dump(mode="json")}
        write_json(marker, {**record, "pool": str(pool_dir)})
    return Pool.create(
        pool_dir,
        {"val": dataset.y_val.numpy(), "test": dataset.y_test.numpy()},
        dataset.num_classes,
        dataset.describe(),
    )
