"""Which team an export ships: chosen on validation by `choose_ensemble` (as `lrens run` and
`lrens report` choose it), given as members and weights, or read as it was chosen from a team
file (`ChosenEnsemble.to_dict()`, e.g. the report's `chosen_ensemble.json`)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lrensemble.config import load_toml
from lrensemble.ensemble.checks import check_weights
from lrensemble.ensemble.choice import (
    ChosenEnsemble,
    EnsembleConfig,
    candidate_floor,
    choose_ensemble,
)
from lrensemble.ensemble.teams import MAX_ENUMERATION_MEMBERS
from lrensemble.errors import ConfigError, DataError, ParameterError
from lrensemble.pool import Pool


def load_ensemble_config(
    path: str | os.PathLike[str] | None = None, **overrides: Any
) -> EnsembleConfig:
    """The `[ensemble]` table of a TOML file (a run config's other tables are ignored), with
    `overrides` that are not None (e.g. `method`, `size`, `objective`) on top.

    A bad value in the file is reported with the file and key, e.g.
    `run.toml: ensemble.size: Input should be greater than or equal to 1 (got 0).`
    """
    table: dict[str, Any] = {}
    if path is not None:
        table = load_toml(path).get("ensemble", {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: ensemble must be a table ([ensemble]).")
        try:
            EnsembleConfig(**table)
        except ConfigError as exc:
            where = ".".join(str(p) for p in ("ensemble", *exc.location))
            raise ConfigError(f"{path}: {where}: {exc.detail}.", exc.location, exc.detail) from None
    given = {k: v for k, v in overrides.items() if v is not None}
    return EnsembleConfig(**{**table, **given})


def read_team_file(path: str | os.PathLike[str], pool: Pool | None = None) -> ChosenEnsemble:
    """A team as it was chosen: the JSON of `ChosenEnsemble.to_dict()`, or a JSON holding one
    under `"chosen_ensemble"` (the report's results.json). Members, weights and temperatures are
    checked, never refitted. With `pool`, a team that records the validation labels checksum
    (`val_labels_sha256`) of another pool is refused (member ids recur across pools)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"Team file {path} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"Team file {path} is unreadable or truncated ({exc}).") from None
    if isinstance(data, dict) and isinstance(data.get("chosen_ensemble"), dict):
        data = data["chosen_ensemble"]  # results.json, whose own "members" are the pool's
    if not isinstance(data, dict) or "members" not in data or "weights" not in data:
        raise DataError(f"Team file {path} holds no team: it needs 'members' and 'weights'.")
    members, weights = data["members"], data["weights"]
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise DataError(f"Team file {path}: 'members' must be a non-empty list of member ids.")
    try:
        check_weights(weights, len(members))
    except (ParameterError, TypeError, ValueError) as exc:
        raise DataError(f"Team file {path}: 'weights' are unusable ({exc}).") from None
    temps = data.get("member_temperatures") or [1.0] * len(members)
    if not isinstance(temps, list) or len(temps) != len(members):
        raise DataError(f"Team file {path}: 'member_temperatures' needs one value per member.")
    for t in [data.get("temperature", 1.0), *temps]:
        if not _positive(t):
            raise DataError(f"Team file {path}: temperatures must be positive numbers, got {t!r}.")
    if pool is not None:
        _check_pool(path, data, pool)
    fields = {f.name for f in dataclasses.fields(ChosenEnsemble)}  # others ("pool", ...) ignored
    known = {k: v for k, v in data.items() if k in fields}
    known.setdefault("method", "given")
    known.setdefault("objective", "accuracy")
    known["member_temperatures"] = [float(t) for t in temps]
    return ChosenEnsemble(**known)


def _check_pool(path: Path, data: dict[str, Any], pool: Pool) -> None:
    """Refuse a team whose recorded validation labels checksum is not `pool`'s."""
    recorded = data.get("val_labels_sha256")
    if recorded is None or recorded == pool.info.get("labels_sha256", {}).get("val"):
        return
    where = data.get("pool")
    if not isinstance(where, str) or Path(where).resolve() == Path(pool.root).resolve():
        where = "its validation labels differ from this pool's"
    raise ParameterError(
        f"Team file {path} was chosen on another pool ({where}); choose on this pool or give its "
        "own team file."
    )


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def choose_team(
    pool: Pool,
    config: EnsembleConfig | None = None,
    *,
    members: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    team_file: str | os.PathLike[str] | None = None,
) -> ChosenEnsemble:
    """The team to export from `pool`: read from `team_file` as it is; or `members` (with
    `weights`, default equal) calibrated on validation under `config`; or chosen on validation
    by `choose_ensemble` under `config` (at most `config.max_candidates` candidates, as the
    report)."""
    complete = pool.ordered_member_ids()
    if team_file is not None:
        if config is not None or members is not None or weights is not None:
            raise ParameterError(
                "A team file gives the team as it was chosen; leave out the ensemble config, "
                "members and weights (--config, --method, --size, --objective, --members, "
                "--weights)."
            )
        chosen = read_team_file(team_file, pool)
        _check_members(chosen.members, complete, pool)
        return chosen
    if weights is not None and members is None:
        raise ParameterError("Weights need the members they belong to (--members a,b,c).")
    if "val" not in pool.splits:
        raise ParameterError(
            f"Choosing and calibrating a team needs a val split; the pool {pool.root} has "
            f"{', '.join(pool.splits)}; give a team file (--team) instead."
        )
    cfg = config or EnsembleConfig()
    if members is not None:
        members = list(members)
        if not members:
            raise ParameterError("Give at least one member.")
        _check_members(members, complete, pool)
        if weights is not None:
            check_weights(list(weights), len(members))
        return choose_ensemble(
            pool.probs("val", members),
            pool.labels("val"),
            members,
            cfg,
            members=members,
            weights=None if weights is None else [float(w) for w in weights],
        )
    if not complete:
        raise DataError(f"The pool {pool.root} has no complete members.")
    probs, labels = pool.probs("val", complete), pool.labels("val")
    accs = (probs.argmax(axis=2) == labels).mean(axis=1)
    floor = candidate_floor(accs, cfg.min_accuracy, cfg.min_relative_accuracy)
    if not (accs >= floor).any():
        raise ParameterError(
            f"No member reaches the candidate floor {floor:.4f} (validation accuracy); the best "
            f"has {accs.max():.4f}; lower min_accuracy."
        )
    return choose_ensemble(
        probs,
        labels,
        complete,
        cfg,
        max_candidates=min(cfg.max_candidates, MAX_ENUMERATION_MEMBERS),
    )


def _check_members(members: Sequence[str], complete: list[str], pool: Pool) -> None:
    unknown = [m for m in members if m not in complete]
    if unknown:
        shown = ", ".join(complete[:10])
        if len(complete) > 10:
            shown += f" and {len(complete) - 10} more"
        raise ParameterError(
            f"Not complete members of the pool {pool.root}: {', '.join(unknown)}; it has "
            f"{shown or 'none'}."
        )


__all__ = ["choose_team", "load_ensemble_config", "read_team_file"]
