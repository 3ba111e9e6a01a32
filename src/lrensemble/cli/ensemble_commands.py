"""Pools and ensembles: `lrens pool import|show`, `lrens select`, `lrens evaluate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from lrensemble.cli.app import JsonOption, app, out, pool_app
from lrensemble.errors import ParameterError


def _json(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(type(o).__name__)

    return json.dumps(obj, indent=2, default=default)


def _parse_labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        split, sep, path = item.partition("=")
        if not sep or not split or not path:
            raise ParameterError(f"--labels takes SPLIT=PATH (e.g. val=y_val.npy), got {item!r}.")
        labels[split] = path
    return labels


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@pool_app.command("import")
def pool_import(
    pool: Annotated[Path, typer.Argument(help="Pool directory to create (or add to).")],
    probs: Annotated[
        str,
        typer.Option(
            help="Prediction files with {member} and {split}, e.g. 'preds/{member}_{split}.npy'."
        ),
    ],
    labels: Annotated[
        list[str],
        typer.Option(help="SPLIT=PATH of a labels .npy file; repeat per split (val, test)."),
    ],
    logits: Annotated[bool, typer.Option(help="The files hold logits: apply softmax.")] = False,
    dataset: Annotated[str | None, typer.Option(help="Dataset name to record.")] = None,
) -> None:
    """Build a pool from plain .npy probabilities (N, C) of models from any framework."""
    from lrensemble.pool import import_predictions

    result = import_predictions(pool, _parse_labels(labels), probs, logits=logits, dataset=dataset)
    ids = result.member_ids()
    out.print(f"pool {pool}: {len(ids)} members, splits {', '.join(result.splits)}")


@pool_app.command("show")
def pool_show(
    pool: Annotated[Path, typer.Argument(help="Pool directory.")],
    as_json: JsonOption = False,
) -> None:
    """The members of a pool with how they were made, their status and accuracy per split."""
    from lrensemble.ensemble import member_metrics
    from lrensemble.pool import Pool

    p = Pool.open(pool)
    complete = p.member_ids()
    metrics: dict[str, dict[str, dict[str, float]]] = {m: {} for m in complete}
    for split in p.splits:
        if complete:
            for member, row in zip(
                complete, member_metrics(p.probs(split), p.labels(split)), strict=True
            ):
                metrics[member][split] = row
    rows = []
    for member in p.member_ids(status=None):
        record = p.member(member)
        policy = record.get("policy") or {}
        rows.append(
            {
                "id": member,
                "method": record.get("method", "-"),
                "policy": policy,
                "status": record.get("status", "complete"),
                "metrics": metrics.get(member, {}),
            }
        )
    if as_json:
        typer.echo(_json({"pool": str(pool), "info": p.info, "members": rows}))
        return
    table = Table(
        "member",
        "method",
        "policy",
        "status",
        *[f"{s} acc" for s in p.splits],
        *[f"{s} nll" for s in p.splits],
    )
    for row in rows:
        pol = row["policy"]
        label = pol.get("name", "-") + (f" {pol['max_lr']:g}" if "max_lr" in pol else "")
        table.add_row(
            row["id"],
            row["method"],
            label,
            row["status"],
            *[_fmt(row["metrics"].get(s, {}).get("accuracy")) for s in p.splits],
            *[_fmt(row["metrics"].get(s, {}).get("nll")) for s in p.splits],
        )
    out.print(table)


def _team(pool: Any, members: str | None) -> tuple[list[str], list[int]]:
    ids = pool.member_ids()
    if members is None:
        return ids, list(range(len(ids)))
    wanted = [m.strip() for m in members.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in ids]
    if unknown:
        raise ParameterError(
            f"Not complete members of the pool: {', '.join(unknown)}; it has {', '.join(ids)}."
        )
    return wanted, [ids.index(m) for m in wanted]


@app.command("select")
def select_command(
    pool: Annotated[Path, typer.Argument(help="Pool directory.")],
    method: Annotated[
        str, typer.Option(help="random, brute_force, greedy, focal or hierarchical.")
    ] = "greedy",
    size: Annotated[int | None, typer.Option(help="Team size (default: free choice).")] = None,
    metric: Annotated[
        str, typer.Option(help="Focal diversity metric (focal, hierarchical).")
    ] = "GD",
    split: Annotated[str, typer.Option(help="Split to select on.")] = "val",
    seed: Annotated[int, typer.Option(help="Seed of random selection.")] = 0,
    parity: Annotated[
        bool, typer.Option(help="Focal: score teams as EnsembleBench's scripts do.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Choose a team on the validation split and report it on every split."""
    from lrensemble.ensemble import select, team_metrics
    from lrensemble.pool import Pool

    p = Pool.open(pool)
    ids = p.member_ids()
    options: dict[str, Any] = {}
    if method in ("focal", "hierarchical"):
        options["metric"] = metric
    if method == "random":
        options["seed"] = seed
    if parity:
        if method != "focal":
            raise ParameterError("--parity applies to --method focal only.")
        options["parity"] = True
    result = select(method, p.probs(split), p.labels(split), size=size, **options)
    chosen = [ids[i] for i in result.members]
    report = {
        "method": method,
        "selected_on": split,
        "members": chosen,
        "weights": list(result.weights),
        "score": result.score,
        "metrics": {
            s: team_metrics(p.probs(s, chosen), p.labels(s), weights=result.weights)
            for s in p.splits
        },
        "details": result.details,
    }
    if as_json:
        typer.echo(_json(report))
        return
    out.print(
        f"{method} selected {len(chosen)} of {len(ids)} members on {split}: "
        + ", ".join(f"{m} ({w:.2f})" for m, w in zip(chosen, result.weights, strict=True))
    )
    _metrics_table(report["metrics"])


def _metrics_table(metrics: dict[str, dict[str, float]]) -> None:
    table = Table("split", "accuracy", "nll", "ece", "brier")
    for split, row in metrics.items():
        table.add_row(split, *[_fmt(row[k]) for k in ("accuracy", "nll", "ece", "brier")])
    out.print(table)


@app.command("evaluate")
def evaluate_command(
    pool: Annotated[Path, typer.Argument(help="Pool directory.")],
    members: Annotated[
        str | None,
        typer.Option(help="Comma-separated member ids (default: every complete member)."),
    ] = None,
    voting: Annotated[str, typer.Option(help="soft or plurality.")] = "soft",
    as_json: JsonOption = False,
) -> None:
    """Metrics (accuracy, NLL, ECE, Brier) of a team's consensus and of its members."""
    from lrensemble.ensemble import member_metrics, team_metrics
    from lrensemble.pool import Pool

    p = Pool.open(pool)
    ids, _ = _team(p, members)
    report = {
        "members": ids,
        "voting": voting,
        "team": {s: team_metrics(p.probs(s, ids), p.labels(s), voting=voting) for s in p.splits},
        "per_member": {
            s: dict(zip(ids, member_metrics(p.probs(s, ids), p.labels(s)), strict=True))
            for s in p.splits
        },
    }
    if as_json:
        typer.echo(_json(report))
        return
    out.print(f"team of {len(ids)} members, {voting} voting")
    _metrics_table(report["team"])
    table = Table("member", *[f"{s} acc" for s in p.splits])
    for m in ids:
        table.add_row(m, *[_fmt(report["per_member"][s][m]["accuracy"]) for s in p.splits])
    out.print(table)
