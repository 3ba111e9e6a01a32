"""The LR policy database: every trial of every study in a storage is a record of how a policy
did on a (dataset, model, task); `top_policies` recommends the best ones."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from lrensemble.errors import ParameterError
from lrensemble.tuning.study import open_storage


def policy_records(storage: str) -> list[dict[str, Any]]:
    """One record per finished trial in every study of the storage."""
    st = open_storage(storage)
    records = []
    for name in optuna.get_all_study_names(st):
        study = optuna.load_study(study_name=name, storage=st)
        for trial in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
        ):
            a = trial.user_attrs
            if "policy" not in a:
                continue
            records.append(
                {
                    "study": name,
                    "trial": trial.number,
                    "dataset": a.get("dataset"),
                    "model": a.get("model"),
                    "task": a.get("task"),
                    "policy": a.get("policy"),
                    "optimizer": a.get("optimizer"),
                    "seed": a.get("seed"),
                    "epochs": a.get("epochs"),
                    "status": a.get("status"),
                    "metrics": a.get("metrics", {}),
                    "member": a.get("member"),
                    "pool": a.get("pool"),
                }
            )
    return records


def top_policies(
    storage: str, dataset: str, model: str, task: str = "classification", n: int = 5
) -> list[dict[str, Any]]:
    """The `n` complete records of (dataset, model, task) with the best validation accuracy
    (ties: lower validation NLL), across all studies in `storage`."""
    if n < 1:
        raise ParameterError(f"-n must be at least 1, got {n}.")
    matching = [
        r
        for r in policy_records(storage)
        if r["dataset"] == dataset
        and r["model"] == model
        and r["task"] == task
        and r["status"] == "complete"
        and "val" in r["metrics"]
    ]
    matching.sort(
        key=lambda r: (-r["metrics"]["val"]["accuracy"], r["metrics"]["val"].get("nll", 0.0))
    )
    return matching[:n]
