"""Members of a pool on corrupted test sets: the pool's dataset reloaded, each corrupted test
set made (`lrensemble.data.corruptions`), every member that has weights rebuilt and run on it,
and the probabilities cached in the pool, so a second call computes only what is missing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrensemble.data import Dataset, load_dataset
from lrensemble.data.corruptions import (
    SEVERITIES,
    check_corruption,
    check_severity,
    corrupted_test_set,
    list_corruptions,
)
from lrensemble.data.registry import DATASETS
from lrensemble.ensemble import member_metrics
from lrensemble.errors import DataError, LREnsembleError, ParameterError
from lrensemble.methods.hdet.run import MARKER as HDET_MARKER
from lrensemble.methods.pat.run import MARKER as PAT_MARKER
from lrensemble.methods.snapshot.run import MARKER as SNAPSHOT_MARKER
from lrensemble.pipeline.members import has_model, model_inputs, rebuild_model
from lrensemble.pool import Pool
from lrensemble.progress import maybe, progress_enabled

# beside a run's pool: its config, [data] included (the sweep's and every method's marker)
RUN_MARKERS = ("tune.json", SNAPSHOT_MARKER, PAT_MARKER, HDET_MARKER)


def _from_table(table: Mapping[str, Any]) -> Dataset:
    if not isinstance(table.get("name"), str):
        raise ParameterError('A data table needs a name (e.g. name = "npz").')
    return load_dataset(table["name"], **{k: v for k, v in table.items() if k != "name"})


def _marker_tables(pool: Pool) -> list[dict[str, Any]]:
    """The `[data]` tables recorded by the run that made the pool (its config beside it)."""
    tables = []
    for name in RUN_MARKERS:
        path = pool.root.parent / name
        try:
            table = json.loads(path.read_text(encoding="utf-8"))["config"]["data"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(table, dict) and isinstance(table.get("name"), str):
            tables.append(table)
    return tables


def _recorded_table(pool: Pool) -> dict[str, Any] | None:
    """A `[data]` table rebuilt from the pool's dataset record: its name and the loader's
    parameters recorded there (`split_seed` as `seed`, file loaders' `source` paths)."""
    record = pool.info.get("dataset") or {}
    name = record.get("name")
    if not isinstance(name, str) or name not in DATASETS:
        return None
    known = DATASETS.parameters(name)
    norm = record.get("normalization")
    values = {
        **record,
        "seed": record.get("split_seed"),
        "label": record.get("label_column"),
        "shape": record.get("input_shape"),
        "normalize": norm.get("per") if isinstance(norm, dict) else None,
    }
    if isinstance(record.get("source"), dict):
        values.update(record["source"])
    table = {k: values[k] for k in known if values.get(k) is not None}
    return {"name": name, **table}


def _same_test_labels(dataset: Dataset, pool: Pool) -> bool:
    y = dataset.y_test.numpy()
    return y.shape == pool.labels("test").shape and bool(np.array_equal(y, pool.labels("test")))


def pool_dataset(pool: Pool, data: Mapping[str, Any] | None = None) -> Dataset:
    """The dataset the pool's members were made on: from `data` (a `[data]` table, e.g. from
    `--data`) when given, else from the config of the run beside the pool (`tune.json`,
    `snapshot.json`), else from the pool's dataset record. Its test labels must be the pool's."""
    searched = data is None
    tables = [dict(data)] if data is not None else _marker_tables(pool)
    recorded = _recorded_table(pool) if searched else None
    if recorded is not None and recorded not in tables:
        tables.append(recorded)
    if not tables:
        name = (pool.info.get("dataset") or {}).get("name")
        raise DataError(
            f"The dataset of the pool {pool.root} ({name or 'unnamed'}) cannot be reloaded from "
            "its record; give it with --data."
        )
    problem = ""
    for table in tables:
        try:
            dataset = _from_table(table)
        except LREnsembleError as exc:
            if not searched:
                raise
            problem = problem or f"{str(exc).rstrip('.')}"
            continue
        if _same_test_labels(dataset, pool):
            return dataset
        problem = problem or f"the test labels of {table['name']} are not those of the pool"
    if not searched:
        raise DataError(
            f"The test labels of the data given are not those of the pool {pool.root}; give "
            "the data its members were trained on."
        )
    raise DataError(
        f"The dataset of the pool {pool.root} cannot be reloaded ({problem}); give it with --data."
    )


def _check_sets(
    dataset: Dataset, names: Sequence[str] | None, severities: Sequence[int]
) -> tuple[list[str], list[int]]:
    """The corruption names (default: all for the dataset's inputs) and severities, checked."""
    if not list_corruptions(dataset):
        check_corruption(dataset, "")  # the sentence for inputs that have no corruptions
    names = list_corruptions(dataset) if names is None else list(dict.fromkeys(names))
    for name in names:
        check_corruption(dataset, name)
    if not names:
        raise ParameterError("Give at least one corruption.")
    checked = sorted({check_severity(s) for s in severities})
    if not checked:
        raise ParameterError("Give at least one severity from 1 to 5.")
    return names, checked


def _is_cached(pool: Pool, member: str, name: str, severity: int, seed: int) -> bool:
    """Whether the member's predictions on the set are cached and readable (a damaged file
    counts as missing: it is computed again)."""
    try:
        pool.corrupted(name, severity, [member], seed)
    except LREnsembleError:
        return False
    return True


def evaluate_corruptions(
    pool_dir: str | os.PathLike[str],
    dataset: Dataset | Mapping[str, Any] | None = None,
    names: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    members: Sequence[str] | None = None,
    *,
    device: Any = "auto",
    batch_size: int = 1024,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Predict every member with weights on each corrupted test set and cache the
    probabilities in the pool (those already cached are kept: a killed call resumes).

    `dataset`: the pool's `Dataset`, a `[data]` table, or None (found by `pool_dataset`).
    `names` (default: every corruption of the data's kind of inputs), `severities` and `seed`
    choose the sets; `members` (default: every complete member) the members. Members without
    weights or a model spec (imported predictions) are skipped; if none has them, that is an
    error. Everything is checked before anything is computed.

    Returns `members` (those evaluated), `skipped`, `sets` ([name, severity] pairs),
    `computed` and `cached` (counts of member × set predictions) and `metrics` ({member:
    {name: {severity: accuracy, NLL, ECE}}}).
    """
    import torch

    from lrensemble.device import resolve_device
    from lrensemble.train.evaluate import predict_proba

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"A corruption seed must be a non-negative integer, got {seed!r}.")
    pool = Pool.open(pool_dir)
    if "test" not in pool.splits:
        raise ParameterError(f"The pool needs a test split; it has {', '.join(pool.splits)}.")
    complete = pool.ordered_member_ids()
    ids = complete if members is None else list(dict.fromkeys(members))
    unknown = [m for m in ids if m not in complete]
    if unknown:
        raise ParameterError(f"Not complete members of the pool: {', '.join(unknown)}.")
    usable = [m for m in ids if has_model(pool, m)]
    skipped = [m for m in ids if m not in usable]
    if not usable:
        raise ParameterError(
            f"No member of {Path(pool_dir)} has weights and a model spec (e.g. imported "
            "predictions), so none can predict on corrupted test sets."
        )
    if not isinstance(dataset, Dataset):
        dataset = pool_dataset(pool, dataset)
    elif not _same_test_labels(dataset, pool):
        raise DataError(
            f"The test labels of {dataset.name} are not those of the pool {pool.root}; give the "
            "data its members were trained on."
        )
    names, severities = _check_sets(dataset, names, severities)
    for member in usable:
        inputs = model_inputs(pool.member(member))
        if inputs is not None and tuple(inputs[1]) != tuple(dataset.input_shape):
            raise DataError(
                f"Member {member} takes inputs of shape {tuple(inputs[1])}; the data's are "
                f"{tuple(dataset.input_shape)}."
            )
    sets = [(name, severity) for name in names for severity in severities]
    todo = {s: [m for m in usable if not _is_cached(pool, m, *s, seed)] for s in sets}
    count = sum(len(ms) for ms in todo.values())
    target = resolve_device(device)
    needed = [m for m in usable if any(m in missing for missing in todo.values())]
    models: dict[str, torch.nn.Module] = {m: rebuild_model(pool, m, target) for m in needed}
    if log is not None and count:
        log(
            f"corrupted test sets: {count} of {len(sets) * len(usable)} predictions to compute "
            f"({len(usable)} members × {len(sets)} sets)"
        )
    with maybe(progress_enabled(progress)) as bars:
        task = bars.add("corrupted test sets", total=count)
        for (name, severity), missing in todo.items():
            if not missing:
                continue
            x = corrupted_test_set(dataset, name, severity, seed)
            for member in missing:
                probs = predict_proba(models[member], x, batch_size, target).numpy()
                pool.add_corrupted(member, name, severity, probs, seed)
                bars.update(task, advance=1, info=f"{name}-{severity}")
    labels = pool.labels("test")
    metrics: dict[str, dict[str, dict[str, dict[str, float]]]] = {m: {} for m in usable}
    for name, severity in sets:
        rows = member_metrics(pool.corrupted(name, severity, usable, seed), labels)
        for member, row in zip(usable, rows, strict=True):
            cell = {k: row[k] for k in ("accuracy", "nll", "ece")}
            metrics[member].setdefault(name, {})[str(severity)] = cell
    return {
        "members": usable,
        "skipped": skipped,
        "sets": [[name, severity] for name, severity in sets],
        "seed": seed,
        "computed": count,
        "cached": len(sets) * len(usable) - count,
        "metrics": metrics,
    }


__all__ = ["evaluate_corruptions", "pool_dataset"]
