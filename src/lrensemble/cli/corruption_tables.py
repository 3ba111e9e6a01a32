"""`lrens evaluate --corruptions`: a team, the best single member and the entire pool on
corrupted test sets (predictions computed and cached through the pipeline), printed as the
Prune-and-Tune paper's Table 2 or as JSON."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich import box
from rich.table import Table

from lrensemble.cli.app import out
from lrensemble.cli.common import parse_members, parse_weights, warn
from lrensemble.ensemble.choice import plural
from lrensemble.errors import ParameterError

METRICS = ("acc%", "nll", "ece")
SHORT = {"chosen": "chosen", "team": "team", "best_single": "best", "entire": "pool"}
LABELS = {
    "chosen": "chosen ensemble",
    "team": "team",
    "best_single": "best single",
    "entire": "entire pool",
}


def parse_severities(text: str | None) -> list[int]:
    """`--severities 1,3,5` as integers from 1 to 5 (default all five)."""
    if text is None:
        return [1, 2, 3, 4, 5]
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= 5:
            raise ParameterError(
                f"--severities takes integers from 1 to 5 separated by commas (e.g. 1,3,5), "
                f"got {part!r}."
            )
        values.append(int(part))
    return sorted(set(values))


def _soft_vote(weights: Sequence[float] | None, temperature: float | None) -> Callable:
    """A team's weighted soft vote, scaled by `temperature` when given."""
    from lrensemble.ensemble import apply_temperature, soft_vote

    def combine(probs: np.ndarray) -> np.ndarray:
        vote = soft_vote(probs, weights=weights)
        return vote if temperature is None else apply_temperature(vote, temperature)

    return combine


def _teams(
    pool: Any,
    usable: list[str],
    members: str | None,
    weights: str | None,
    temperature: float | None,
) -> tuple[dict[str, tuple[list[str], Callable]], str]:
    """The rows: the team (given, or the chosen ensemble), the best single member (on
    validation) and every member with weights; and a line that describes the team. A chosen
    team's rows are each calibrated with their own temperature, as in the report; a given
    team has its --weights and --temperature, the other rows plain soft votes."""
    from lrensemble.ensemble import EnsembleConfig, choose_ensemble

    pv, yv = pool.probs("val", usable), pool.labels("val")
    best_id = usable[int(np.argmax((pv.argmax(axis=2) == yv).mean(axis=1)))]
    wanted = parse_members(members)
    if wanted is None:
        if weights is not None or temperature is not None:
            raise ParameterError(
                "--weights and --temperature belong to a team given with --members; the chosen "
                "ensemble has its own."
            )
        ids = pool.ordered_member_ids()
        cfg = EnsembleConfig()
        chosen = choose_ensemble(
            pool.probs("val", ids), yv, ids, cfg, max_candidates=cfg.max_candidates
        )
        warn(chosen.warnings)
        _check_runnable(chosen.members, usable, "The chosen ensemble")
        best = choose_ensemble(pv, yv, usable, cfg, members=[best_id])
        entire = choose_ensemble(pv, yv, usable, cfg, members=usable)
        described = (
            f"chosen ensemble ({chosen.method}, {plural(len(chosen.members), 'member')}: "
            f"{', '.join(chosen.members)}; temperature {chosen.temperature:.3f})"
        )
        return {
            "chosen": (chosen.members, chosen.combine),
            "best_single": ([best_id], best.combine),
            "entire": (usable, entire.combine),
        }, described
    ids = pool.ordered_member_ids()
    unknown = [m for m in wanted if m not in ids]
    if unknown:
        raise ParameterError(
            f"Not complete members of the pool: {', '.join(unknown)}; it has {', '.join(ids)}."
        )
    _check_runnable(wanted, usable, "The team")
    w = None if weights is None else parse_weights(weights, len(wanted))
    scaled = "" if temperature is None else f", temperature {temperature:g}"
    described = f"team of {plural(len(wanted), 'member')} ({', '.join(wanted)}{scaled})"
    return {
        "team": (wanted, _soft_vote(w, temperature)),
        "best_single": ([best_id], _soft_vote(None, None)),
        "entire": (usable, _soft_vote(None, None)),
    }, described


def _check_runnable(team: Sequence[str], usable: Sequence[str], what: str) -> None:
    missing = [m for m in team if m not in usable]
    if missing:
        raise ParameterError(
            f"{what} has members without weights ({', '.join(missing)}), which cannot predict "
            "on corrupted test sets; give a team of members with weights with --members."
        )


def corruption_report(
    pool_dir: Path,
    *,
    members: str | None,
    weights: str | None,
    temperature: float | None,
    names: list[str] | None,
    severities: list[int],
    seed: int,
    data: dict[str, Any] | None,
    device: str | None,
    progress: bool | None,
) -> dict[str, Any]:
    """Compute (or reuse) every member's predictions on the corrupted test sets and score the
    rows; the JSON of `lrens evaluate --corruptions`."""
    from lrensemble.pipeline import evaluate_corruptions
    from lrensemble.pipeline.members import has_model
    from lrensemble.pool import Pool
    from lrensemble.report.corruptions import corruption_metrics

    pool = Pool.open(pool_dir)
    ids = pool.ordered_member_ids()
    if not ids:
        raise ParameterError(f"The pool {pool_dir} has no complete members.")
    usable = [m for m in ids if has_model(pool, m)]
    if not usable:
        raise ParameterError(
            f"No member of {pool_dir} has weights and a model spec (e.g. imported "
            "predictions), so none can predict on corrupted test sets."
        )
    teams, described = _teams(pool, usable, members, weights, temperature)
    done = evaluate_corruptions(
        pool_dir,
        data,
        names,
        severities,
        seed,
        members=usable,
        device=device or "auto",
        progress=progress,
    )
    skipped = [m for m in ids if m not in usable]
    if skipped:
        warn(
            [
                f"skipped {plural(len(skipped), 'member')} without weights (imported "
                f"predictions): {', '.join(skipped)}"
            ]
        )
    scores = corruption_metrics(pool, teams, [tuple(s) for s in done["sets"]], seed)
    return {
        "pool": str(pool_dir),
        "team": described,
        "skipped": skipped,
        "computed": done["computed"],
        "cached": done["cached"],
        "test_samples": pool.info["splits"]["test"],
        **scores,
    }


def _table(*headers: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
    return table


def _cells(row: dict[str, float]) -> list[str]:
    return [f"{100 * row['accuracy']:.2f}", f"{row['nll']:.3f}", f"{row['ece']:.3f}"]


def print_corruption_report(report: dict[str, Any]) -> None:
    """The team line, then three tables: each row clean and corrupted (the paper's Table 2),
    every row per severity, and the team per corruption and severity."""
    teams = report["teams"]
    n = len(report["severities"])
    out.print(f"{report['team']}; best single member {teams['best_single']['members'][0]}")
    out.print(
        f"{plural(len(report['corruptions']), 'corruption')} × "
        f"{n} {'severity' if n == 1 else 'severities'} of the "
        f"{report['test_samples']} test samples (seed {report['seed']}): "
        f"{report['computed']} member predictions computed, {report['cached']} cached"
    )
    summary = _table("", "clean\nacc%", "\nnll", "\nece", "corrupted\nacc%", "\nnll", "\nece")
    for label, team in teams.items():
        summary.add_row(LABELS[label], *_cells(team["clean"]), *_cells(team["mean"]))
    out.print(summary)
    out.print(
        "per severity, the mean over the corruptions ("
        + "; ".join(f"{SHORT[label]}: {LABELS[label]}" for label in teams)
        + ")"
    )
    heads = [f"{SHORT[label]}\n{m}" for label in teams for m in METRICS]
    by_severity = _table("\nseverity", *heads)
    for s in report["severities"]:
        by_severity.add_row(
            str(s), *[c for team in teams.values() for c in _cells(team["by_severity"][str(s)])]
        )
    by_severity.add_row("mean", *[c for team in teams.values() for c in _cells(team["mean"])])
    out.print(by_severity)
    label = next(iter(teams))
    team = teams[label]
    out.print(f"{LABELS[label]}: accuracy (%) per corruption and severity, then the mean")
    per = _table("corruption", *[str(s) for s in report["severities"]], "mean acc%", "nll", "ece")
    for name in report["corruptions"]:
        accs = [
            f"{100 * team['by_set'][name][str(s)]['accuracy']:.2f}" for s in report["severities"]
        ]
        per.add_row(name, *accs, *_cells(team["by_corruption"][name]))
    out.print(per)


__all__ = ["corruption_report", "parse_severities", "print_corruption_report"]
