"""What every method's run shares: its config read from TOML (the training setup plus the
method's own table), and its output directory: a marker file with the run's identity (another
config in the same directory is refused), and the pool its members are filed into."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from torch import nn

from lrensemble.atomic import file_in_the_way, write_json
from lrensemble.config import config_error, load_toml
from lrensemble.data.base import Dataset
from lrensemble.errors import ConfigError, DataError
from lrensemble.pool import Pool
from lrensemble.pool.store import POOL_JSON
from lrensemble.train.run import TrainingSetup
from lrensemble.train.trainer import NOT_IN_IDENTITY, build_model

C = TypeVar("C", bound=TrainingSetup)


@dataclass
class MethodResult:
    """What a method's run made: its members in the pool, which were trained (filed) now, and
    which diverged (kept out)."""

    out_dir: Path
    pool_dir: Path
    members: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    seconds: float = 0.0


class MethodRun(Generic[C]):
    """One run of a method into `out_dir`, filing into `pool_dir` (default `out_dir/pool`)."""

    def __init__(
        self,
        config: C,
        out_dir: str | os.PathLike[str],
        pool_dir: str | os.PathLike[str] | None = None,
        log: Callable[[str], None] = print,
        progress: bool | None = None,
    ) -> None:
        self.config, self.out = config, Path(out_dir)
        self.pool_dir = Path(pool_dir) if pool_dir is not None else self.out / "pool"
        self.log, self.progress = log, progress

    def _model(self, dataset: Dataset, seed: int, **extra: Any) -> nn.Module:
        """The config's model for `dataset`, initialized from `seed` (`extra`: more model
        parameters, e.g. a baseline's dropout)."""
        cfg = self.config
        return build_model(cfg.model["name"], dataset, seed, **{**cfg.params("model"), **extra})


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
    run's fingerprint, config and pool; a directory holding another run (`what`, e.g. "a
    snapshot run"), or this run with another pool, is refused in one sentence. Every check
    (the marker, an existing pool's labels) comes before anything is written."""
    blocking = file_in_the_way(out)
    if blocking is not None:
        raise ConfigError(f"--out {out}: {blocking} is a file, not a directory.")
    marker = out / marker_name
    if marker.exists():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))
            recorded, pool_recorded = previous["fingerprint"], previous.get("pool")
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(f"{marker} is unreadable; restore it or use another --out.") from None
        if recorded != fingerprint:
            raise ConfigError(
                f"{out} holds {what} with another config or data; use another --out, or the "
                "same config."
            )
        if pool_recorded is not None and Path(pool_recorded) != pool_dir:
            raise ConfigError(
                f"{out} files its members into {pool_recorded}; give that --pool again, or "
                "use another --out."
            )
    labels = {"val": dataset.y_val.numpy(), "test": dataset.y_test.numpy()}
    if (pool_dir / POOL_JSON).exists():  # someone's pool: it must be of this data
        Pool.create(pool_dir, labels, dataset.num_classes, dataset.describe())
    out.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        record = {"fingerprint": fingerprint, "config": config.model_dump(mode="json")}
        write_json(marker, {**record, "pool": str(pool_dir)})
    return Pool.create(pool_dir, labels, dataset.num_classes, dataset.describe())


def run_fingerprint(
    config: TrainingSetup, data_checksum: str | None, files: list[str] | None = None
) -> str:
    """A method run's identity: its config without the settings that change no member
    (`NOT_IN_IDENTITY`: device, evaluation batch, checkpoint cadence), the data files'
    checksum and the contents of the `files` it starts from (checkpoints)."""
    payload = config.model_dump(mode="json")
    for key in NOT_IN_IDENTITY:
        payload["train"].pop(key, None)
    payload["data_sha256"] = data_checksum
    payload["files_sha256"] = [file_digest(f) for f in files or []]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def file_digest(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
