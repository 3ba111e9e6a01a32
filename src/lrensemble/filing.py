"""Filing members into a pool: the one call every producer of members uses (the LR sweep, the
snapshot, Prune-and-Tune and HDET methods, a user's own training loop).

`file_members` turns trained models into pool members: it predicts their validation and test
probabilities (models of one architecture together, in one vectorized pass), writes their
weights, and records how each was made (`method`, optional `parent`, hooks, starting weights,
cost) next to the trainer's record. `file_predictions` does the same for members that exist
only as predictions (imports, LLM logs). A member appears atomically, all or nothing, so any
mix of methods can share one pool and be selected together.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lrensemble.data.base import Dataset
from lrensemble.device import resolve_device
from lrensemble.errors import ParameterError
from lrensemble.pool import Pool
from lrensemble.train.batch_plan import batch_blocker
from lrensemble.train.batched import predict_proba_many
from lrensemble.train.checkpoint import save_weights
from lrensemble.train.evaluate import predict_proba


@dataclass
class NewMember:
    """A trained model ready to join a pool.

    `record` is what the trainer wrote (`TrainResult.record`: data, model spec, policy,
    training settings, hooks, starting weights, metrics, timings) or any JSON-able description;
    `method` names the producer (`lr_tuning`, `starsse`, `sse-mse`, `local_de`, `train`, or a
    user's own); `parent` the member (or checkpoint) it was made from, if any. `weights` is a
    safetensors file of the model's weights when one exists already (it is copied), else the
    model's current weights are written."""

    id: str
    model: nn.Module
    record: Mapping[str, Any]
    method: str
    parent: str | None = None
    weights: str | Path | None = None
    files: dict[str, Path] | None = None  # more files of its own, e.g. a pruned member's masks


def pool_record(
    record: Mapping[str, Any], method: str, parent: str | None = None
) -> dict[str, Any]:
    """A pool member's record: the producer's record with its `method`, `parent` and `cost`
    (training seconds and epochs, when the record has them) stated in one place."""
    if not isinstance(method, str) or not method:
        raise ParameterError(f"A member's method must be a non-empty name, got {method!r}.")
    out = dict(record)
    out["method"] = method
    if parent is not None:
        out["parent"] = str(parent)
    timings = out.get("timings") if isinstance(out.get("timings"), dict) else {}
    cost = {
        "train_seconds": timings.get("train_seconds"),
        "epochs": out.get("epochs_completed", out.get("epochs")),
    }
    out.setdefault("cost", {k: v for k, v in cost.items() if v is not None})
    return out


def file_members(
    pool: Pool,
    members: Sequence[NewMember],
    dataset: Dataset,
    *,
    eval_batch_size: int = 1024,
    device: torch.device | str | None = None,
    skip_existing: bool = True,
) -> list[str]:
    """Predict, write and record `members` in `pool`; returns the ids filed now. A member whose
    id the pool already has is skipped (`skip_existing`, e.g. filed by another worker), or
    refused. The dataset must be the pool's: its splits and labels are checked. A diverged
    member is refused. Models are moved to `device` to predict, and stay there."""
    _check_same_data(pool, dataset)
    for member in members:
        status = member.record.get("status", "complete")
        if status != "complete":
            raise ParameterError(f"Member {member.id} is {status}, not complete: not filed.")
    todo = [m for m in members if not (skip_existing and pool.member_dir(m.id).exists())]
    ids = [m.id for m in todo]
    if len(set(ids)) != len(ids):
        raise ParameterError("Two members to file share an id.")
    device = resolve_device(device or "auto") if not isinstance(device, torch.device) else device
    probs = _predict(todo, dataset, pool.splits, eval_batch_size, device)
    filed = []
    for member, member_probs in zip(todo, probs, strict=True):
        record = pool_record(member.record, member.method, member.parent)
        try:
            if member.weights is not None:
                pool.add_member(
                    member.id, member_probs, record, weights=member.weights, files=member.files
                )
            else:
                with tempfile.TemporaryDirectory(prefix="lrens-weights-") as tmp:
                    weights = save_weights(member.model, Path(tmp) / "model.safetensors")
                    pool.add_member(
                        member.id, member_probs, record, weights=weights, files=member.files
                    )
        except ParameterError:
            if skip_existing and pool.member_dir(member.id).exists():
                continue  # another worker filed it while this one predicted
            raise
        filed.append(member.id)
    return filed


def file_predictions(
    pool: Pool,
    member_id: str,
    probs: Mapping[str, Any],
    record: Mapping[str, Any],
    method: str,
    parent: str | None = None,
    logits: bool = False,
) -> Path:
    """File a member that exists only as predictions: `probs` maps each of the pool's splits to
    (N, C) probabilities (or logits with `logits=True`)."""
    return pool.add_member(member_id, probs, pool_record(record, method, parent), logits=logits)


def _check_same_data(pool: Pool, dataset: Dataset) -> None:
    """The dataset's validation and test labels must be the pool's."""
    for split in pool.splits:
        y = dataset.split(split)[1].numpy()
        if y.shape != pool.labels(split).shape or not np.array_equal(y, pool.labels(split)):
            raise ParameterError(
                f"The dataset's {split} labels are not those of the pool {pool.root}; file "
                "members into a pool made from the same data."
            )


def _predict(
    members: Sequence[NewMember],
    dataset: Dataset,
    splits: Sequence[str],
    batch_size: int,
    device: torch.device,
) -> list[dict[str, np.ndarray]]:
    """Each member's probabilities per split: members of one architecture in one vectorized
    pass (when the model can be vectorized), others one by one."""
    out: list[dict[str, np.ndarray]] = [{} for _ in members]
    groups: dict[Any, list[int]] = {}
    for i, member in enumerate(members):
        groups.setdefault(_architecture(member), []).append(i)
    for rows in groups.values():
        models = [members[i].model for i in rows]
        together = len(models) > 1 and batch_blocker(models[0], dataset.input_shape) is None
        for split in splits:
            x = dataset.split(split)[0]
            p = None
            if together:
                try:
                    p = predict_proba_many(models, x, batch_size, device).numpy()
                except Exception:  # a model vmap cannot vectorize after all: one by one
                    together = False
            if p is None:
                p = np.stack(
                    [predict_proba(m.to(device), x, batch_size, device).numpy() for m in models]
                )
            for row, i in enumerate(rows):
                out[i][split] = p[row]
    return out


def _architecture(member: NewMember) -> tuple[Any, ...]:
    """What members must share to be evaluated together: the model's class, its parameter and
    buffer shapes, and how it was built (its recorded model spec, else its printed form, which
    names layers and their settings)."""
    model = member.model
    spec = member.record.get("model")
    built = json.dumps(spec, sort_keys=True, default=str) if spec else repr(model)
    shapes = tuple((name, tuple(t.shape), t.dtype) for name, t in model.state_dict().items())
    return (type(model), shapes, built)


__all__ = ["NewMember", "file_members", "file_predictions", "pool_record"]
