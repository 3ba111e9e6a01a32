"""Everything the report shows, computed from a pool: the paper's Tables 1–3, the cost table and
the data of its figures. The result is plain JSON-able data (`results.json`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from lrensemble.ensemble import (
    compare_by_size,
    member_metrics,
    select,
    team_metrics,
    team_sizes,
)
from lrensemble.ensemble.teams import MAX_ENUMERATION_MEMBERS
from lrensemble.errors import ParameterError
from lrensemble.pool import Pool

SELECTION_METHODS = ("brute_force", "greedy", "focal")
DEFAULT_MAX_CANDIDATES = 20


def parameter_count(weights: Path) -> int | None:
    """Number of parameters in a member's safetensors file (normalization statistics left
    out), read from the header alone; None without weights."""
    if not weights.exists():
        return None
    from safetensors import safe_open

    total = 0
    with safe_open(str(weights), "numpy") as f:
        for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
            if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
                continue
            total += int(np.prod(f.get_slice(name).get_shape()))
    return total


def _inference_seconds(pool: Pool, ids: list[str], n: int, repeats: int = 3) -> float | None:
    """Seconds to predict `n` samples with every model of `ids` (batch 1024, best of
    `repeats`), on random inputs of the training shape; None when a member has no weights or
    model spec."""
    try:
        import torch

        from lrensemble.models import create_model
        from lrensemble.train.checkpoint import load_weights
        from lrensemble.train.evaluate import predict_logits
    except ImportError:
        return None
    models = []
    for member in ids:
        record = pool.member(member)
        spec, data = record.get("model"), record.get("dataset", {})
        weights = pool.member_dir(member) / "model.safetensors"
        if not isinstance(spec, dict) or "name" not in spec or not weights.exists():
            return None
        params = {k: v for k, v in spec.items() if k != "name"}
        model = create_model(spec["name"], int(data["num_classes"]), data["input_shape"], **params)
        models.append(load_weights(model, weights).eval())
    shape = pool.member(ids[0]).get("dataset", {}).get("input_shape")
    x = torch.randn(n, *shape, generator=torch.Generator().manual_seed(0))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for model in models:
            predict_logits(model, x, 1024, torch.device("cpu"))
        best = min(best, time.perf_counter() - t0)
    return best


def analyze_pool(
    pool_dir: str | Path,
    *,
    method: str = "focal",
    size: int | None = None,
    metric: str = "GD",
    min_accuracy: float | None = None,
    repeats: int = 10,
    seed: int = 0,
    timing: bool = True,
    cache: dict[str, Any] | None = None,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> dict[str, Any]:
    """Analyze a pool with validation and test splits.

    Members below `min_accuracy` on validation (default: 1.5× chance) are not candidates for
    teams: a member stuck at chance costs nothing in a soft vote yet looks diverse to focal
    metrics, because it fails everywhere. Since every team is enumerated, at most the
    `max_candidates` best members on validation are candidates (20: a million teams). The
    chosen ensemble is `select(method, size=size)` on
    validation. `cache` receives the all-team arrays for figures.
    """
    pool = Pool.open(pool_dir)
    for split in ("val", "test"):
        if split not in pool.splits:
            raise ParameterError(
                f"The pool needs a {split} split; it has {', '.join(pool.splits)}."
            )
    ids = pool.member_ids()
    if len(ids) < 3:
        raise ParameterError(
            f"A report needs at least 3 complete members; the pool has {len(ids)}."
        )
    pv, yv = pool.probs("val", ids), pool.labels("val")
    pt, yt = pool.probs("test", ids), pool.labels("test")
    c = pool.num_classes
    floor = 1.5 / c if min_accuracy is None else float(min_accuracy)

    members = []
    val_rows, test_rows = member_metrics(pv, yv), member_metrics(pt, yt)
    for i, member in enumerate(ids):
        record = pool.member(member)
        members.append(
            {
                "id": member,
                "policy": record.get("policy"),
                "method": record.get("method"),
                "val": val_rows[i],
                "test": test_rows[i],
                "train_seconds": (record.get("timings") or {}).get("train_seconds"),
                "epochs": record.get("epochs"),
                "parameters": parameter_count(pool.member_dir(member) / "model.safetensors"),
            }
        )
    candidates = [i for i, m in enumerate(members) if m["val"]["accuracy"] >= floor]
    excluded = [
        {
            "id": members[i]["id"],
            "val_accuracy": members[i]["val"]["accuracy"],
            "reason": "below the minimum accuracy",
        }
        for i in range(len(ids))
        if i not in candidates
    ]
    cap = min(max_candidates, MAX_ENUMERATION_MEMBERS)
    if len(candidates) > cap:
        # every team is enumerated for Table 2 and Figure 4: keep the best on validation
        ranked = sorted(
            candidates, key=lambda i: (-members[i]["val"]["accuracy"], members[i]["id"])
        )
        candidates = sorted(ranked[:cap])
        excluded += [
            {
                "id": members[i]["id"],
                "val_accuracy": members[i]["val"]["accuracy"],
                "reason": f"not among the {cap} best on validation",
            }
            for i in sorted(ranked[cap:])
        ]
    if len(candidates) < 3:
        raise ParameterError(
            f"Only {len(candidates)} members reach the minimum validation accuracy {floor:.3f}; "
            "a report needs 3 (lower min_accuracy)."
        )
    cand_ids = [ids[i] for i in candidates]
    cv, ct = pv[candidates], pt[candidates]

    cache = {} if cache is None else cache
    t0 = time.perf_counter()
    table2 = compare_by_size(cv, yv, ct, yt, repeats=repeats, seed=seed, metric=metric, cache=cache)
    compare_seconds = time.perf_counter() - t0
    for row in table2["rows"]:
        for key in [k for k in row if k.endswith("_members")]:
            row[key] = [cand_ids[j] for j in row[key]]
    table2["best_single"]["member"] = cand_ids[table2["best_single"]["member"]]

    def options(name: str) -> dict[str, Any]:
        return {"metric": metric} if name in ("focal", "hierarchical") else {}

    selection_seconds, selections = {}, {}
    for name in SELECTION_METHODS:
        t0 = time.perf_counter()
        selections[name] = select(name, cv, yv, size=size, **options(name))
        selection_seconds[name] = time.perf_counter() - t0
    chosen = selections.get(method) or select(method, cv, yv, size=size, **options(method))
    chosen_ids = [cand_ids[j] for j in chosen.members]

    by_id = {m["id"]: m for m in members}
    best_id = table2["best_single"]["member"]

    def summary(team: list[str], weights: list[float] | None) -> dict[str, Any]:
        rows = [ids.index(t) for t in team]
        out = {
            "members": team,
            "size": len(team),
            "val": team_metrics(pv[rows], yv, weights=weights),
            "test": team_metrics(pt[rows], yt, weights=weights),
            "train_seconds": _sum(by_id[t]["train_seconds"] for t in team),
            "parameters": _sum((by_id[t]["parameters"] for t in team), int),
            "inference_seconds": _inference_seconds(pool, team, len(yt)) if timing else None,
        }
        return out

    table3 = {
        "best_single": summary([best_id], None),
        "chosen": {
            **summary(chosen_ids, list(chosen.weights)),
            "method": method,
            "weights": list(chosen.weights),
        },
        "entire": summary(cand_ids, None),
    }
    sizes = team_sizes(len(cand_ids))
    distribution = {
        int(s): _five_numbers(cache["test_accuracy"][sizes == s])
        for s in range(1, len(cand_ids) + 1)
    }
    return {
        "pool": str(Path(pool_dir).resolve()),
        "dataset": pool.info.get("dataset", {}).get("name"),
        "num_classes": c,
        "splits": pool.info["splits"],
        "members": members,
        "candidates": cand_ids,
        "excluded": excluded,
        "min_accuracy": floor,
        "metric": f"FQ-{metric}",
        "table2": table2,
        "table3": table3,
        "costs": {
            "training_seconds_all_members": _sum(m["train_seconds"] for m in members),
            "selection_seconds": selection_seconds,
            "table2_seconds": compare_seconds,
        },
        "team_accuracy_distribution": distribution,
    }


def _sum(values: Any, kind: type = float) -> Any:
    """Sum, or None if any value is unknown."""
    values = list(values)
    return None if any(v is None for v in values) else kind(sum(values))


def _five_numbers(values: np.ndarray) -> dict[str, float]:
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return {
        "count": len(values),
        "min": float(q[0]),
        "q1": float(q[1]),
        "median": float(q[2]),
        "q3": float(q[3]),
        "max": float(q[4]),
        "mean": float(np.mean(values)),
    }
