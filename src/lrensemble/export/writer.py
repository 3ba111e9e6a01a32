"""`export_ensemble`: the chosen team of a pool written as one directory to ship.

Every member is rebuilt from its recorded model spec and its weights are loaded (so a member
that would not load later fails the export now); their tensors go into one safetensors file
under the prefixes `m0.`, `m1.`, ... Writing is ordered so that a failed export never looks
valid: an earlier `ensemble.json` is removed first, the weights are written atomically, and the
new `ensemble.json` (with the weights' checksum) is written atomically last.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from lrensemble import __version__
from lrensemble.atomic import file_in_the_way, write_json, write_with
from lrensemble.data.normalize import Normalization
from lrensemble.ensemble.checks import check_weights
from lrensemble.ensemble.choice import ChosenEnsemble, EnsembleConfig
from lrensemble.errors import DataError, LREnsembleError, ParameterError
from lrensemble.export.manifest import (
    ENSEMBLE_FORMAT,
    ENSEMBLE_JSON,
    ENSEMBLE_KIND,
    WEIGHTS_FILE,
    file_sha256,
)
from lrensemble.export.team import choose_team
from lrensemble.models import create_model
from lrensemble.pool import Pool
from lrensemble.train.checkpoint import load_weights

MEMBER_WEIGHTS = "model.safetensors"


def export_ensemble(
    pool_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: EnsembleConfig | None = None,
    *,
    members: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    team_file: str | os.PathLike[str] | None = None,
) -> Path:
    """Export a pool's chosen ensemble to `out_dir` (`ensemble.json`, `weights.safetensors`).

    Args:
        pool_dir: the pool.
        out_dir: a new or empty directory, or a previous export (replaced).
        config: how the team is chosen and calibrated on validation (default
            `EnsembleConfig()`), as `lrens run` chooses it.
        members, weights: a given team (weights default to equal), calibrated under `config`.
        team_file: a team as chosen (`ChosenEnsemble.to_dict()` JSON, e.g. the report's
            chosen_ensemble.json): members, weights and temperatures are used as they are.

    Returns:
        The directory. When a member has no weights or model spec (predictions imported into
        the pool), `ensemble.json` records the team with `"has_weights": false` and no weights
        file is written: such an export cannot predict.
    """
    target = Path(out_dir)
    _check_target(target)
    pool = Pool.open(pool_dir)
    chosen = choose_team(pool, config, members=members, weights=weights, team_file=team_file)
    entries, missing = _member_entries(pool, chosen)
    manifest = _manifest(pool, chosen, entries, missing)
    tensors = None if missing else _member_tensors(pool, chosen.members, entries)
    _write(target, manifest, tensors)
    return target


def _check_target(target: Path) -> None:
    """Refuse a file, a path under a file, or a directory holding anything but an export."""
    blocking = file_in_the_way(target)
    if blocking == target:
        raise DataError(f"Cannot export to {target}: it is a file, not a directory.")
    if blocking is not None:
        raise DataError(f"Cannot export to {target}: {blocking} is a file, not a directory.")
    if target.is_dir():
        others = sorted(
            p.name
            for p in target.iterdir()
            if p.name not in (ENSEMBLE_JSON, WEIGHTS_FILE) and not p.name.startswith(".")
        )
        if others:
            raise DataError(
                f"Cannot export to {target}: it holds other files ({', '.join(others[:3])}); "
                "give a new or empty directory, or a previous export to replace."
            )


def _spec(record: dict[str, Any]) -> dict[str, Any] | None:
    spec = record.get("model")
    return spec if isinstance(spec, dict) and isinstance(spec.get("name"), str) else None


def _member_entries(pool: Pool, chosen: ChosenEnsemble) -> tuple[list[dict[str, Any]], list[str]]:
    """One entry per team member (in team order) and the ids of members without weights."""
    weights = check_weights(chosen.weights, len(chosen.members))
    temps = chosen.member_temperatures or [1.0] * len(chosen.members)
    entries, missing, groups = [], [], {}
    for i, member_id in enumerate(chosen.members):
        record = pool.member(member_id)
        spec, data = _spec(record), record.get("dataset")
        data = data if isinstance(data, dict) else {}
        shape = data.get("input_shape")
        num_classes = int(data.get("num_classes", pool.num_classes))
        if num_classes != pool.num_classes:
            raise DataError(
                f"Member {member_id} was trained for {num_classes} classes; the pool has "
                f"{pool.num_classes}."
            )
        usable = (
            spec is not None
            and isinstance(shape, list)
            and pool.member_file(member_id, MEMBER_WEIGHTS).is_file()
        )
        entry: dict[str, Any] = {
            "id": member_id,
            "prefix": f"m{i}" if usable else None,
            "model": spec if usable else None,
            "num_classes": num_classes,
            "input_shape": [int(s) for s in shape] if isinstance(shape, list) else None,
            "weight": float(weights[i]),
            "temperature": float(temps[i]),
            "group": None,
        }
        if usable:
            key = json.dumps([spec, entry["input_shape"], num_classes], sort_keys=True)
            entry["group"] = groups.setdefault(key, len(groups))
        else:
            missing.append(member_id)
        entries.append(entry)
    if not missing and len({math.prod(e["input_shape"]) for e in entries}) > 1:
        raise ParameterError(
            "The team's members take inputs of different sizes; an ensemble needs one input."
        )
    return entries, missing


def _data_info(pool: Pool, ids: Sequence[str]) -> dict[str, Any]:
    """Dataset name, normalization, class names and CSV columns as the team's members recorded
    them (the pool's dataset record otherwise); members normalized differently, or trained on
    other columns, cannot share inputs."""
    infos = []
    for member_id in ids:
        data = pool.member(member_id).get("dataset")
        infos.append(data if isinstance(data, dict) else dict(pool.info.get("dataset") or {}))
    norms = {json.dumps(d.get("normalization"), sort_keys=True) for d in infos}
    if len(norms) > 1:
        raise ParameterError(
            "The team's members were trained on inputs normalized differently; export members "
            "of one dataset."
        )
    if len({json.dumps([d.get("columns"), d.get("label_column")]) for d in infos}) > 1:
        raise ParameterError(
            "The team's members were trained on different CSV columns; export members of one "
            "dataset."
        )
    first = infos[0]
    norm = first.get("normalization")
    classes = first.get("classes")
    if not (isinstance(classes, list) and len(classes) == pool.num_classes):
        classes = None
    columns, label = first.get("columns"), first.get("label_column")
    return {
        "dataset": first.get("name") or (pool.info.get("dataset") or {}).get("name"),
        "normalization": None if norm is None else Normalization.from_dict(norm).to_dict(),
        "classes": None if classes is None else [str(c) for c in classes],
        "columns": [str(c) for c in columns] if isinstance(columns, list) else None,
        "label_column": label if isinstance(label, str | int) else None,
    }


def _manifest(
    pool: Pool, chosen: ChosenEnsemble, entries: list[dict[str, Any]], missing: list[str]
) -> dict[str, Any]:
    return {
        "format": ENSEMBLE_FORMAT,
        "kind": ENSEMBLE_KIND,
        "method": chosen.method,
        "objective": chosen.objective,
        "members": entries,
        "temperature": float(chosen.temperature),
        "num_classes": pool.num_classes,
        "input_shape": entries[0]["input_shape"] if not missing else None,
        **_data_info(pool, chosen.members),
        "has_weights": not missing,
        "missing_weights": missing,
        "weights_file": None if missing else WEIGHTS_FILE,
        "weights_sha256": None,
        "warnings": list(chosen.warnings),
        "pool": str(Path(pool.root).resolve()),
        "lrensemble": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _member_tensors(
    pool: Pool, ids: Sequence[str], entries: list[dict[str, Any]]
) -> dict[str, torch.Tensor]:
    """Every member's state dict under its prefix, each member rebuilt and loaded first."""
    tensors: dict[str, torch.Tensor] = {}
    for member_id, entry in zip(ids, entries, strict=True):
        spec = entry["model"]
        params = {k: v for k, v in spec.items() if k != "name"}
        model = create_model(spec["name"], entry["num_classes"], entry["input_shape"], **params)
        load_weights(model, pool.member_file(member_id, MEMBER_WEIGHTS))
        for key, value in model.state_dict().items():
            tensors[f"{entry['prefix']}.{key}"] = value.detach().cpu().contiguous().clone()
    return tensors


def _write(target: Path, manifest: dict[str, Any], tensors: dict[str, torch.Tensor] | None) -> None:
    weights_path = target / WEIGHTS_FILE
    try:
        target.mkdir(parents=True, exist_ok=True)
        (target / ENSEMBLE_JSON).unlink(missing_ok=True)  # from here on it is not an export
        if tensors is None:
            weights_path.unlink(missing_ok=True)
        else:
            meta = {"format": str(ENSEMBLE_FORMAT), "kind": ENSEMBLE_KIND}

            def write(tmp: Path) -> None:
                save_file(tensors, str(tmp), metadata=meta)
                manifest["weights_sha256"] = file_sha256(tmp)

            write_with(weights_path, write)
        write_json(target / ENSEMBLE_JSON, manifest)
    except LREnsembleError:
        raise
    except (OSError, SafetensorError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DataError(f"Cannot write the ensemble to {target} ({reason}).") from None


__all__ = ["export_ensemble"]
