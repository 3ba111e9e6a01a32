"""Pools and ensembles: `lrens pool import|show`, `lrens select`, `lrens evaluate`.

`lrens select` decides through `choose_ensemble`, as `lrens run`, `report` and `export` do (the
same candidate floor, objective and temperature scaling); docs/cli.md describes every option
and JSON field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich import box
from rich.table import Table

from lrensemble.cli.app import DeviceOption, JsonOption, ProgressOption, app, out, pool_app
from lrensemble.cli.common import (
    CalibrateMembersOption,
    CalibrateOption,
    CorruptionDataOption,
    MaxCandidatesOption,
    MethodOption,
    MetricOption,
    MinAccuracyOption,
    MinRelativeOption,
    ObjectiveOption,
    SizeOption,
    ensemble_config,
    parse_members,
    parse_weights,
    warn,
)
from lrensemble.ensemble import ChosenEnsemble
from lrensemble.ensemble.choice import plural
from lrensemble.errors import ParameterError

METRIC_KEYS = {"acc": "accuracy", "nll": "nll", "ece": "ece", "brier": "brier"}


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


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(*headers: str) -> Table:
    """A compact table: a rule under the header, no borders."""
    return Table(*headers, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)


# --- lrens pool import / show ----------------------------------------------------------------


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


@pool_app.command("merge")
def pool_merge(
    pools: Annotated[list[Path], typer.Argument(help="Pools to merge (e.g. one per machine).")],
    into: Annotated[
        Path,
        typer.Option("--out", help="Pool to merge into (created if missing; may be a source)."),
    ],
    rename: Annotated[
        bool,
        typer.Option(
            help="Keep a different member of an existing id as <id>.<n> instead of failing."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Combine pools whose splits and labels agree, skipping duplicates and incomplete members."""
    from lrensemble.pool import merge_pools

    result = merge_pools(pools, into, rename=rename)
    if as_json:
        typer.echo(_json(result.as_dict()))
        return
    out.print(
        f"pool {into}: added {plural(len(result.added), 'member')}, skipped "
        f"{plural(result.duplicates, 'duplicate')} and {result.incomplete} incomplete; "
        f"{plural(result.total, 'member')} in all"
    )


def _member_rows(pool: Any) -> list[dict[str, Any]]:
    """Every member (complete or not) with its method, policy, status and metrics per split."""
    import lrensemble.pool as pool_module
    from lrensemble.ensemble import member_metrics

    complete = pool.member_ids()
    metrics: dict[str, dict[str, dict[str, float]]] = {m: {} for m in complete}
    for split in pool.splits if complete else []:
        rows = member_metrics(pool.probs(split), pool.labels(split))
        for member, row in zip(complete, rows, strict=True):
            metrics[member][split] = row
    rows = []
    for member in pool.member_ids(status=None):
        record = pool.member(member)
        rows.append(
            {
                "id": member,
                "method": record.get("method") or pool_module.UNKNOWN_METHOD,
                "parent": record.get("parent"),
                "policy": record.get("policy") or {},
                "status": record.get("status", "complete"),
                "metrics": metrics.get(member, {}),
            }
        )
    return rows


def sort_keys(splits: Sequence[str]) -> list[str]:
    """Valid `--sort` keys: `id` and `<split>_<metric>` for every split and metric."""
    return ["id", *[f"{s}_{k}" for s in splits for k in METRIC_KEYS]]


def _sort_rows(rows: list[dict[str, Any]], key: str, splits: Sequence[str]) -> list[dict]:
    """Rows ordered by `key`: ids alphabetically, accuracy descending, NLL, ECE and Brier
    ascending; members without metrics last, ties by id."""
    valid = sort_keys(splits)
    if key not in valid:
        raise ParameterError(f"Unknown sort key {key!r}; use one of {', '.join(valid)}.")
    if key == "id":
        return sorted(rows, key=lambda r: r["id"])
    split, _, short = key.rpartition("_")
    metric, sign = METRIC_KEYS[short], -1.0 if short == "acc" else 1.0

    def order(row: dict[str, Any]) -> tuple[bool, float, str]:
        value = row["metrics"].get(split, {}).get(metric)
        return (value is None, 0.0 if value is None else sign * value, row["id"])

    return sorted(rows, key=order)


def _policy_label(policy: dict[str, Any]) -> str:
    """`onecycle 0.1`: the policy's name and peak LR."""
    if not policy:
        return "-"
    lr = policy.get("max_lr")
    return str(policy.get("name", "?")) + ("" if lr is None else f" {lr:g}")


def _policy_in_id(member: str, policy: dict[str, Any]) -> bool:
    """Whether the id already names the policy, as sweep ids do (`onecycle-0.1-3fa2c1`)."""
    if not policy:
        return True
    lr = policy.get("max_lr")
    head = str(policy.get("name", "")) + ("" if lr is None else f"-{lr:.3g}")
    return member.startswith(head)


def _pool_table(
    rows: list[dict[str, Any]], splits: Sequence[str], extra: Sequence[str], gap: int
) -> Table:
    """The members: ids never cut, the `extra` columns (method, policy, status), and per split
    accuracy (%), NLL and ECE; columns `gap` + 1 characters apart."""
    widest = max((len(r["id"]) for r in rows), default=6)
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
        padding=(0, gap),
    )
    table.add_column("member", no_wrap=True, min_width=widest)
    for column in ("method", "policy", "status"):
        if column in extra:
            table.add_column(column, no_wrap=True)
    for split in splits:
        for head in ("acc%", "nll", "ece"):
            table.add_column(f"{split}\n{head}", justify="right", no_wrap=True)
    for row in rows:
        cells = [row["id"]]
        cells += [row["method"]] if "method" in extra else []
        cells += [_policy_label(row["policy"])] if "policy" in extra else []
        cells += [row["status"]] if "status" in extra else []
        for split in splits:
            m = row["metrics"].get(split, {})
            acc = m.get("accuracy")
            cells += [
                _fmt(None if acc is None else 100 * acc, 2),
                _fmt(m.get("nll"), 3),
                _fmt(m.get("ece"), 3),
            ]
        table.add_row(*cells)
    return table


def _fitting_pool_table(rows: list[dict[str, Any]], splits: Sequence[str]) -> Table:
    """The richest pool table that fits the terminal. Status (some member is not complete),
    method (the pool mixes methods) and policy (the ids do not name it) are shown when they
    tell something, and dropped in the reverse order, then the gaps narrow, until the table
    fits; ids are never cut (--json has every field)."""
    extra = [
        column
        for column, telling in (
            ("status", any(r["status"] != "complete" for r in rows)),
            ("method", len({r["method"] for r in rows}) > 1),
            ("policy", not all(_policy_in_id(r["id"], r["policy"]) for r in rows)),
        )
        if telling
    ]
    wide = out.options.update_width(10_000)
    for kept in range(len(extra), -1, -1):
        for gap in (1, 0):
            table = _pool_table(rows, splits, extra[:kept], gap)
            if out.measure(table, options=wide).maximum <= out.width:
                return table
    return table  # even the narrowest is too wide: ids stay whole, numbers are cut


@pool_app.command("show")
def pool_show(
    pool: Annotated[Path, typer.Argument(help="Pool directory.")],
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="id, or <split>_<metric> (acc, nll, ece, brier), e.g. val_acc (best first).",
        ),
    ] = "id",
    method: Annotated[
        str | None,
        typer.Option(
            "--method", help="Only members made by this method (lr_tuning, starsse, import, ...)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The members of a pool: how they were made, their status, accuracy, NLL and ECE."""
    from lrensemble.pool import Pool

    p = Pool.open(pool)
    rows = _sort_rows(_member_rows(p), sort, p.splits)
    if method is not None:
        made = sorted({r["method"] for r in rows})
        if method not in made:
            raise ParameterError(
                f"No member of {pool} was made by {method!r}; its methods: "
                f"{', '.join(made) or 'none'}."
            )
        rows = [r for r in rows if r["method"] == method]
    if as_json:
        typer.echo(_json({"pool": str(pool), "info": p.info, "members": rows}))
        return
    if not rows:
        out.print(f"pool {pool}: no members yet")
        return
    out.print(_fitting_pool_table(rows, p.splits))


# --- lrens select ------------------------------------------------------------------------------


def _team(pool: Any, members: str | None) -> tuple[list[str], list[int]]:
    ids = pool.ordered_member_ids()
    wanted = parse_members(members)
    if wanted is None:
        return ids, list(range(len(ids)))
    unknown = [m for m in wanted if m not in ids]
    if unknown:
        raise ParameterError(
            f"Not complete members of the pool: {', '.join(unknown)}; it has {', '.join(ids)}."
        )
    return wanted, [ids.index(m) for m in wanted]


def _split_metrics(pool: Any, chosen: ChosenEnsemble) -> dict[str, dict[str, dict[str, float]]]:
    """Raw (plain weighted mean) and calibrated metrics of the chosen ensemble per split."""
    from lrensemble.ensemble import prediction_metrics

    metrics = {}
    for split in pool.splits:
        probs, labels = pool.probs(split, chosen.members), pool.labels(split)
        metrics[split] = {
            "raw": prediction_metrics(chosen.combine(probs, calibrated=False), labels),
            "calibrated": prediction_metrics(chosen.combine(probs), labels),
        }
    return metrics


def _print_choice(report: dict[str, Any], n_pool: int, calibrate: bool) -> None:
    """The chosen members and weights, the temperature, the exclusions and a metrics table per
    split."""
    out.print(
        f"{report['method']} chose {len(report['members'])} of {plural(n_pool, 'member')} on "
        f"{report['selected_on']} (objective {report['objective']}; "
        f"{len(report['candidates'])} candidates at or above {100 * report['floor']:.2f}% accuracy)"
    )
    member_temps = any(t != 1.0 for t in report["member_temperatures"])
    team = _table()
    team.add_column("member", no_wrap=True)
    team.add_column("weight", justify="right")
    if member_temps:
        team.add_column("temperature", justify="right")
    for i, member in enumerate(report["members"]):
        temp = [f"{report['member_temperatures'][i]:.3f}"] if member_temps else []
        team.add_row(member, f"{report['weights'][i]:.3f}", *temp)
    out.print(team)
    if calibrate:
        out.print(f"temperature {report['temperature']:.3f} (fitted on {report['selected_on']})")
    else:
        out.print("no temperature scaling (--no-calibrate)")
    reasons: dict[str, list[str]] = {}
    for row in report["excluded"]:
        reasons.setdefault(row["reason"], []).append(row["id"])
    for reason, members in reasons.items():
        out.print(f"excluded ({reason}): {', '.join(members)}")
    for split, rows in report["metrics"].items():
        table = _table(split, "accuracy", "nll", "ece", "brier")
        for kind, row in rows.items():
            table.add_row(kind, *[_fmt(row[k]) for k in ("accuracy", "nll", "ece", "brier")])
        out.print(table)


@app.command("select")
def select_command(
    pool: Annotated[Path, typer.Argument(help="Pool directory.")],
    method: MethodOption = None,
    size: SizeOption = None,
    objective: ObjectiveOption = None,
    metric: MetricOption = None,
    min_accuracy: MinAccuracyOption = None,
    min_relative_accuracy: MinRelativeOption = None,
    max_candidates: MaxCandidatesOption = None,
    calibrate: CalibrateOption = None,
    calibrate_members: CalibrateMembersOption = None,
    split: Annotated[str, typer.Option(help="Split to select and calibrate on.")] = "val",
    seed: Annotated[int | None, typer.Option(help="Seed of --method random (default 0).")] = None,
    parity: Annotated[
        bool, typer.Option("--parity", help="Focal: score teams as EnsembleBench's scripts do.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Choose an ensemble on the validation split, calibrate it, and report it on every split."""
    from lrensemble.ensemble import choose_ensemble, ensemble_selector
    from lrensemble.pool import Pool

    cfg = ensemble_config(
        method=method,
        parity=parity or None,
        size=size,
        objective=objective,
        metric=metric,
        min_accuracy=min_accuracy,
        min_relative_accuracy=min_relative_accuracy,
        max_candidates=max_candidates,
        calibrate=calibrate,
        calibrate_members=calibrate_members,
        seed=seed,
    )
    ensemble_selector(cfg)  # every selection option checked before the pool is read
    p = Pool.open(pool)
    ids = p.ordered_member_ids()
    probs, labels = p.probs(split, ids), p.labels(split)
    best = float((probs.argmax(axis=2) == labels).mean(axis=1).max())
    if cfg.min_accuracy is not None and cfg.min_accuracy > best:
        raise ParameterError(
            f"--min-accuracy {cfg.min_accuracy:g} is above the best member's {split} accuracy "
            f"{best:.4f}, so no member would be a candidate."
        )
    chosen = choose_ensemble(probs, labels, ids, cfg, max_candidates=cfg.max_candidates)
    report = {
        "method": chosen.method,
        "objective": chosen.objective,
        "selected_on": split,
        "members": chosen.members,
        "weights": chosen.weights,
        "temperature": chosen.temperature,
        "member_temperatures": chosen.member_temperatures,
        "candidates": chosen.candidates,
        "excluded": chosen.excluded,
        "floor": chosen.floor,
        "warnings": chosen.warnings,
        "metrics": _split_metrics(p, chosen),
        "details": chosen.details,
    }
    warn(chosen.warnings)
    if as_json:
        typer.echo(_json(report))
        return
    _print_choice(report, len(ids), cfg.calibrate)


# --- lrens evaluate ------------------------------------------------------------------------------


def _team_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    weights: list[float] | None,
    voting: str,
    temperature: float | None,
) -> dict[str, float]:
    """Metrics of the team's vote; a temperature rescales its soft vote (NLL, ECE, Brier; the
    argmax, hence accuracy, never changes)."""
    from lrensemble.ensemble import apply_temperature, prediction_metrics, soft_vote, team_metrics

    metrics = team_metrics(probs, labels, weights=weights, voting=voting)
    if temperature is not None:
        scaled = apply_temperature(soft_vote(probs, weights=weights), temperature)
        scaled_metrics = prediction_metrics(scaled, labels)
        metrics.update({k: v for k, v in scaled_metrics.items() if k != "accuracy"})
    return metrics


def _metrics_table(metrics: dict[str, dict[str, float]]) -> None:
    table = _table("split", "accuracy", "nll", "ece", "brier")
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
    weights: Annotated[
        str | None,
        typer.Option(help="Comma-separated weights, one per member (normalized to sum 1)."),
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Temperature of the team's soft vote (default none).")
    ] = None,
    voting: Annotated[str, typer.Option(help="soft or plurality.")] = "soft",
    corruptions: Annotated[
        bool,
        typer.Option(
            "--corruptions",
            help="On corrupted test sets instead (CIFAR-10-C's corruptions, or their "
            "counterparts for signals): the team (default: the chosen ensemble), the best "
            "single member and the entire pool; predictions are computed once and cached.",
        ),
    ] = False,
    severities: Annotated[
        str | None,
        typer.Option(help="With --corruptions: severities, e.g. 1,3,5 (default 1 to 5)."),
    ] = None,
    corruption: Annotated[
        list[str] | None,
        typer.Option(
            "--corruption",
            help="With --corruptions: one corruption; repeat for several (default: all).",
        ),
    ] = None,
    corruption_seed: Annotated[
        int, typer.Option(help="With --corruptions: the seed of the corrupted test sets.")
    ] = 0,
    data: CorruptionDataOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = None,
    as_json: JsonOption = False,
) -> None:
    """Metrics (accuracy, NLL, ECE, Brier) of a team's consensus and of its members.

    With --corruptions: accuracy, NLL and ECE on corrupted test sets.
    """
    from lrensemble.ensemble import member_metrics
    from lrensemble.pool import Pool

    if temperature is not None and not (math.isfinite(temperature) and temperature > 0):
        raise ParameterError(f"--temperature must be a positive number, got {temperature:g}.")
    if temperature is not None and voting != "soft":
        raise ParameterError(
            "--temperature scales a soft vote; a plurality vote has no probabilities to scale."
        )
    given = [
        flag
        for flag, value in (
            ("--severities", severities),
            ("--corruption", corruption),
            ("--data", data),
            ("--device", device),
        )
        if value
    ]
    if corruption_seed != 0:
        given.append("--corruption-seed")
    if given and not corruptions:
        raise ParameterError(
            f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --corruptions."
        )
    if corruptions:
        _evaluate_corruptions(
            pool,
            members,
            weights,
            temperature,
            voting,
            severities,
            corruption,
            corruption_seed,
            data,
            device,
            progress,
            as_json,
        )
        return
    p = Pool.open(pool)
    ids, _ = _team(p, members)
    w = None if weights is None else parse_weights(weights, len(ids))
    report = {
        "members": ids,
        "weights": w if w is not None else [1.0 / len(ids)] * len(ids),
        "temperature": temperature,
        "voting": voting,
        "team": {
            s: _team_metrics(p.probs(s, ids), p.labels(s), w, voting, temperature) for s in p.splits
        },
        "per_member": {
            s: dict(zip(ids, member_metrics(p.probs(s, ids), p.labels(s)), strict=True))
            for s in p.splits
        },
    }
    if as_json:
        typer.echo(_json(report))
        return
    scaled = "" if temperature is None else f", temperature {temperature:g}"
    weighted = "" if w is None else "weighted "
    out.print(f"team of {plural(len(ids), 'member')}, {weighted}{voting} voting{scaled}")
    _metrics_table(report["team"])
    table = _table()
    table.add_column("member", no_wrap=True)
    for header in ("weight", *[f"{s} acc" for s in p.splits]):
        table.add_column(header, justify="right")
    for m, wm in zip(ids, report["weights"], strict=True):
        table.add_row(
            m, f"{wm:.3f}", *[_fmt(report["per_member"][s][m]["accuracy"]) for s in p.splits]
        )
    out.print(table)


def _evaluate_corruptions(
    pool: Path,
    members: str | None,
    weights: str | None,
    temperature: float | None,
    voting: str,
    severities: str | None,
    names: list[str] | None,
    seed: int,
    data: list[str] | None,
    device: str | None,
    progress: bool | None,
    as_json: bool,
) -> None:
    """`lrens evaluate --corruptions`: every option checked before anything is computed."""
    from lrensemble.cli.corruption_tables import (
        corruption_report,
        parse_severities,
        print_corruption_report,
    )

    if voting != "soft":
        raise ParameterError("--corruptions scores soft votes; drop --voting plurality.")
    if seed < 0:
        raise ParameterError(f"--corruption-seed must be a non-negative integer, got {seed}.")
    table = None
    if data:
        from lrensemble.data.files import data_table

        table = data_table(data)
    report = corruption_report(
        pool,
        members=members,
        weights=weights,
        temperature=temperature,
        names=names or None,
        severities=parse_severities(severities),
        seed=seed,
        data=table,
        device=device,
        progress=progress,
    )
    if as_json:
        typer.echo(_json(report))
        return
    print_corruption_report(report)
