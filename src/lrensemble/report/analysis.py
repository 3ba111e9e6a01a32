"""Everything the report shows, computed from a pool: the paper's Tables 1–3, the cost table and
the data of its figures. The result is plain JSON-able data (`results.json`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lrensemble.ensemble import (
    ChosenEnsemble,
    EnsembleConfig,
    choose_ensemble,
    compare_by_size,
    ensemble_selector,
    mask_of,
    member_metrics,
    prediction_diversity,
    prediction_metrics,
    team_sizes,
)
from lrensemble.ensemble.teams import MAX_ENUMERATION_MEMBERS
from lrensemble.errors import CheckpointError, ParameterError
from lrensemble.pool import UNKNOWN_METHOD, WEIGHTS_FILE, Pool
from lrensemble.report.corruptions import corrupted_teams
from lrensemble.report.markdown import pct

MIN_MEMBERS = 3  # Table 2 compares teams of 2 ... M - 1
SELECTION_METHODS = ("brute_force", "greedy", "focal")
WEIGHTS = WEIGHTS_FILE
# measures the inference time of a team (member ids) on n samples: (seconds, None), or
# (None, why not) when a member's model cannot be rebuilt, or (None, None) when members have
# no models (imported predictions)
InferenceTimer = Callable[[list[str], int], "tuple[float | None, str | None]"]


def parameter_count(weights: Path, member: str) -> int | None:
    """Number of parameters in a member's safetensors file (normalization statistics left
    out), read from the header alone (which safetensors checks against the file's length);
    None without weights. An unreadable or truncated file is a `CheckpointError` naming the
    member and the file."""
    if not weights.exists():
        return None
    from safetensors import SafetensorError, safe_open

    total = 0
    try:
        with safe_open(str(weights), "numpy") as f:
            for name in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
                    continue
                total += int(np.prod(f.get_slice(name).get_shape()))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"The weights of member {member}, {weights}, are unreadable or truncated ({exc})."
        ) from None
    return total


def _calibrated_row(
    pv: np.ndarray, yv: np.ndarray, pt: np.ndarray, yt: np.ndarray, team: ChosenEnsemble
) -> dict[str, Any]:
    """Raw and calibrated metrics of a team on validation and test (probabilities of its
    members, (S, N, C), in team order)."""
    return {
        "val": prediction_metrics(team.combine(pv, calibrated=False), yv),
        "test": prediction_metrics(team.combine(pt, calibrated=False), yt),
        "calibrated": {
            "val": prediction_metrics(team.combine(pv), yv),
            "test": prediction_metrics(team.combine(pt), yt),
        },
    }


def analyze_pool(
    pool_dir: str | Path,
    ensemble: EnsembleConfig | None = None,
    *,
    inference: InferenceTimer | None = None,
    cache: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Analyze a pool with validation and test splits.

    The chosen ensemble comes from `choose_ensemble` with `ensemble` (candidates above the
    floor, at most `max_candidates` of the best, since Table 2 and Figure 4 enumerate every
    team of the candidates; a team chosen under its objective; temperatures fitted on
    validation). The best single member is the best on validation; the entire ensemble is
    every complete member of the pool, as in the paper. Each row of Table 3 has raw and
    calibrated metrics (each row's own temperature, fitted on validation). `cache` receives
    the all-team arrays for figures. `inference(members, n)` measures a team's inference
    time on n samples, or says why it cannot; without it the time is not measured.
    """
    ens = ensemble or EnsembleConfig()
    pool = Pool.open(pool_dir)
    for split in ("val", "test"):
        if split not in pool.splits:
            raise ParameterError(
                f"The pool needs a {split} split; it has {', '.join(pool.splits)}."
            )
    ids = pool.ordered_member_ids()
    if len(ids) < MIN_MEMBERS:
        raise ParameterError(
            f"A report needs at least {MIN_MEMBERS} complete members; the pool has {len(ids)}."
        )
    pv, yv = pool.probs("val", ids), pool.labels("val")
    pt, yt = pool.probs("test", ids), pool.labels("test")
    c = pool.num_classes

    members = []
    notes: list[str] = []
    unreadable: dict[str, str] = {}  # members whose weights file is unreadable: why
    val_rows, test_rows = member_metrics(pv, yv), member_metrics(pt, yt)
    for i, member in enumerate(ids):
        record = pool.member(member)
        try:
            parameters = parameter_count(pool.member_file(member, WEIGHTS), member)
        except CheckpointError as exc:  # the report is still written, without that file
            parameters, unreadable[member] = None, str(exc)
            notes.append(
                f"{str(exc)[:-1]}; its parameters, the inference time of teams with it and "
                "Figure 7a are left out."
            )
        members.append(
            {
                "id": member,
                "policy": record.get("policy"),
                "method": record.get("method"),
                "parent": record.get("parent"),
                "cycle": (record.get("snapshot") or {}).get("cycle"),
                "val": val_rows[i],
                "test": test_rows[i],
                "train_seconds": (record.get("timings") or {}).get("train_seconds"),
                "epochs": record.get("epochs"),
                "parameters": parameters,
            }
        )

    cap = min(ens.max_candidates, MAX_ENUMERATION_MEMBERS)
    chosen = choose_ensemble(pv, yv, ids, ens, max_candidates=cap)
    cand_ids = list(chosen.candidates)
    if len(cand_ids) < 3:  # Table 2 compares teams of 2 … M − 1: take the next best too
        ranked = sorted(ids, key=lambda m: -members[ids.index(m)]["val"]["accuracy"])
        extra = [m for m in ranked if m not in cand_ids][: 3 - len(cand_ids)]
        notes.append(
            f"Only {len(cand_ids)} members reach the candidate floor of {pct(chosen.floor)}% "
            f"(validation accuracy); Table 2 and the figures also take {', '.join(extra)}."
        )
        cand_ids = [m for m in ids if m in cand_ids or m in extra]
    rows_of = {m: i for i, m in enumerate(ids)}
    candidates = [rows_of[m] for m in cand_ids]
    cv, ct = pv[candidates], pt[candidates]

    cache = {} if cache is None else cache
    t0 = time.perf_counter()
    table2 = compare_by_size(
        cv, yv, ct, yt, repeats=ens.repeats, seed=ens.seed, metric=ens.metric, cache=cache
    )
    compare_seconds = time.perf_counter() - t0
    for row in table2["rows"]:
        for key in [k for k in row if k.endswith("_members")]:
            row[key] = [cand_ids[j] for j in row[key]]
    table2["best_single"]["member"] = cand_ids[table2["best_single"]["member"]]

    selection_seconds = {}
    for name in SELECTION_METHODS:  # each method's time on the candidates, for the cost table
        selector = ensemble_selector(ens.model_copy(update={"method": name}), len(cand_ids))
        t0 = time.perf_counter()
        selector.fit(cv, yv)
        selection_seconds[name] = time.perf_counter() - t0

    by_id = {m["id"]: m for m in members}
    best_id = table2["best_single"]["member"]

    def summary(team: ChosenEnsemble) -> dict[str, Any]:
        rows = [rows_of[t] for t in team.members]
        seconds = None
        if inference is not None and not unreadable.keys() & set(team.members):
            seconds, why = inference(team.members, len(yt))
            if why is not None and f"Inference time is '-': {why}." not in notes:
                notes.append(f"Inference time is '-': {why}.")
        return {
            "members": team.members,
            "size": team.size,
            "weights": team.weights,
            "temperature": team.temperature,
            **_calibrated_row(pv[rows], yv, pt[rows], yt, team),
            "train_seconds": _sum(by_id[t]["train_seconds"] for t in team.members),
            "parameters": _sum((by_id[t]["parameters"] for t in team.members), int),
            "inference_seconds": seconds,
        }

    best = choose_ensemble(pv, yv, ids, ens, members=[best_id])
    entire = choose_ensemble(pv, yv, ids, ens, members=ids)
    table3 = {
        "best_single": summary(best),
        "chosen": {
            **summary(chosen),
            "method": chosen.method,
            "objective": chosen.objective,
            "member_temperatures": chosen.member_temperatures,
        },
        "entire": summary(entire),
    }
    corrupted = corrupted_teams(
        pool, {"best_single": best, "chosen": chosen, "entire": entire}, notes
    )
    sizes = team_sizes(len(cand_ids))
    distribution = {
        int(s): _five_numbers(cache["test_accuracy"][sizes == s])
        for s in range(1, len(cand_ids) + 1)
    }
    cache["chosen_mask"] = mask_of(cand_ids.index(m) for m in chosen.members)
    return {
        "pool": str(Path(pool_dir).resolve()),
        "dataset": pool.info.get("dataset", {}).get("name"),
        "num_classes": c,
        "splits": pool.info["splits"],
        "members": members,
        "by_method": members_by_method(members, chosen.members, pt, yt),
        "candidates": cand_ids,
        "excluded": [e for e in chosen.excluded if e["id"] not in cand_ids],
        "min_accuracy": chosen.floor,
        "ensemble": ens.model_dump(mode="json"),
        # the pool it was chosen on, so that an export can refuse it for another pool
        "chosen_ensemble": {
            **chosen.to_dict(),
            "pool": str(Path(pool_dir).resolve()),
            "val_labels_sha256": pool.info["labels_sha256"]["val"],
        },
        "warnings": notes + chosen.warnings,
        "unreadable_weights": unreadable,
        "timing": inference is not None,
        "metric": f"FQ-{ens.metric}",
        "table2": table2,
        "table3": table3,
        "costs": {
            "training_seconds_all_members": _sum(m["train_seconds"] for m in members),
            "selection_seconds": selection_seconds,
            "table2_seconds": compare_seconds,
        },
        "team_accuracy_distribution": distribution,
        "corruptions": corrupted,
    }


def members_by_method(
    members: list[dict[str, Any]], chosen: list[str], test_probs: np.ndarray, labels: np.ndarray
) -> dict[str, Any]:
    """Per method that made members (lr_tuning, starsse, import, ...; "unknown" when a record names
    none): how many, how many the chosen ensemble took, the best validation and test accuracy,
    and its members as one ensemble on test, as the StarSSE thesis's Table 4.1 compares
    methods: the members' mean accuracy, their prediction diversity (Fort et al.; None for a
    single member) and the soft vote's accuracy, NLL and ECE. `test_probs` rows follow
    `members`."""
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(members):
        groups.setdefault(m.get("method") or UNKNOWN_METHOD, []).append(i)
    out = {}
    for method, rows in sorted(groups.items()):
        group = [members[i] for i in rows]
        probs = test_probs[rows]
        ensemble = prediction_metrics(probs.mean(axis=0), labels)
        out[method] = {
            "members": len(group),
            "chosen": sum(m["id"] in chosen for m in group),
            "best_val_accuracy": max(m["val"]["accuracy"] for m in group),
            "best_test_accuracy": max(m["test"]["accuracy"] for m in group),
            "mean_test_accuracy": float(np.mean([m["test"]["accuracy"] for m in group])),
            "diversity": prediction_diversity(probs, labels) if len(rows) > 1 else None,
            "ensemble_test": {k: ensemble[k] for k in ("accuracy", "nll", "ece")},
        }
    return out


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
