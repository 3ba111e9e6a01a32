"""The report directory of a pool: report.md, results.json, chosen_ensemble.json and the
figures. It reads a pool (and whatever its caller measured, such as inference time) and writes
files; it trains nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lrensemble.atomic import file_in_the_way, write_json, write_text
from lrensemble.ensemble import EnsembleConfig
from lrensemble.ensemble.choice import plural
from lrensemble.errors import DataError, LREnsembleError
from lrensemble.pool import Pool
from lrensemble.report import figures
from lrensemble.report.analysis import WEIGHTS, InferenceTimer, analyze_pool
from lrensemble.report.markdown import pct, render
from lrensemble.schedules.base import from_spec
from lrensemble.schedules.plot import plot_policies

MAX_PLOTTED_EPOCHS = 100_000  # Figure 6 samples every policy 20 times per epoch
# the trials of the pool's producer that filed no member (diverged, failed), given the ids of
# the members the pool has, and a warning when they could be read only in part
UnfinishedTrials = Callable[[set[str]], "tuple[list[dict[str, Any]], str | None]"]


def build_report(
    pool_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    ensemble: EnsembleConfig | None = None,
    inference: InferenceTimer | None = None,
    unfinished: UnfinishedTrials | None = None,
) -> dict[str, Any]:
    """Analyze a pool and write `out_dir/report.md`, `results.json`, `chosen_ensemble.json`
    (the chosen team, its weights and temperatures: `lrens export --team` ships it) and the
    figures. A figure that cannot be drawn is listed in `results["omitted"]` with the reason;
    the sweep's trials that produced no member (diverged, failed) in `results["diverged"]`.
    `inference` measures teams' inference time (`lrensemble.pipeline.inference_timer`);
    without it that column is '-'. `unfinished(member ids)` lists the producer's trials that
    filed no member (`lrensemble.tuning.trials_without_member`) and perhaps a warning."""
    ens = ensemble or EnsembleConfig()
    out = Path(out_dir)
    blocking = file_in_the_way(out)
    if blocking == out:
        raise DataError(f"The report directory {out} is a file; give another --out.")
    if blocking is not None:
        raise DataError(f"Cannot create the report directory {out}: {blocking} is a file.")
    cache: dict[str, Any] = {}
    results = analyze_pool(pool_dir, ens, inference=inference, cache=cache)
    try:  # after the analysis: a pool that cannot be read leaves no empty directory behind
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"Cannot create the report directory {out} ({exc.strerror}).") from None
    members = {m["id"] for m in results["members"]}
    diverged, warning = unfinished(members) if unfinished is not None else ([], None)
    results["diverged"] = diverged
    if warning:
        results["warnings"].append(warning)
    made: dict[str, str] = {}
    omitted: dict[str, str] = {}
    policies, why_not = _policies(results["members"])
    epochs = next((m["epochs"] for m in results["members"] if m.get("epochs")), None)
    if why_not is None and epochs is None:
        why_not = "the members record no number of epochs"
    elif why_not is None and epochs > MAX_PLOTTED_EPOCHS:
        why_not = f"the members record {epochs:,} epochs, more than {MAX_PLOTTED_EPOCHS:,} to draw"
    if why_not is None:
        plot_policies(
            policies,
            out / "fig6_lr_policies.png",
            epochs=epochs,
            title=f"LR policies over {epochs} epochs",
        )
        made["lr_policies"] = "fig6_lr_policies.png"
    else:
        omitted["lr_policies"] = why_not
    m = len(results["candidates"])
    t2, chosen = results["table2"], results["table3"]["chosen"]
    figures.team_accuracy_boxplot(
        cache["test_accuracy"],
        m,
        t2["best_single"]["test"],
        t2["entire"]["test"],
        out / "fig4_team_accuracy.png",
        chosen=(chosen["size"], chosen["test"]["accuracy"]),
    )
    made["team_accuracy"] = "fig4_team_accuracy.png"
    figures.diversity_vs_accuracy(
        cache["focal"],
        cache["test_accuracy"],
        m,
        results["metric"],
        out / "fig7b_diversity_vs_accuracy.png",
        chosen_mask=cache["chosen_mask"],
    )
    made["diversity_vs_accuracy"] = "fig7b_diversity_vs_accuracy.png"
    pool = Pool.open(pool_dir)
    weights = {mid: pool.member_file(mid, WEIGHTS) for mid in results["candidates"]}
    bad = [mid for mid in results["candidates"] if mid in results["unreadable_weights"]]
    if bad:
        why_not = f"the weights of {bad[0]}, {weights[bad[0]]}, are unreadable or truncated"
    else:
        why_not = figures.parameter_similarity(weights, out / "fig7a_parameter_similarity.png")
    if why_not is None:
        made["parameter_similarity"] = "fig7a_parameter_similarity.png"
    else:
        omitted["parameter_similarity"] = why_not
    if figures.member_trajectory(results["members"], out / "fig2_2_member_trajectory.png"):
        made["member_trajectory"] = "fig2_2_member_trajectory.png"
    results["figures"] = made
    results["omitted"] = omitted
    write_json(out / "chosen_ensemble.json", results["chosen_ensemble"])
    write_json(out / "results.json", results)
    write_text(out / "report.md", render(results, made))
    return results


def _policies(members: list[dict[str, Any]]) -> tuple[list[Any], str | None]:
    """The members' LR policies for Figure 6, or why the figure cannot show them."""
    policies = []
    for member in members:
        if member.get("policy"):
            try:
                policies.append(from_spec(member["policy"]))
            except LREnsembleError as exc:
                return [], f"the policy of member {member['id']} cannot be rebuilt ({exc})"
    if not policies:
        return [], "the members record no LR policy (e.g. imported predictions)"
    return policies, None


def headline(results: dict[str, Any], report_dir: Path) -> str:
    """One paragraph for the terminal: the three rows of Table 3 (test accuracy, then NLL and
    ECE raw → calibrated), the chosen members, any warnings and where the report is."""
    t3 = results["table3"]

    def row(label: str, entry: dict[str, Any]) -> str:
        raw, cal = entry["test"], entry["calibrated"]["test"]
        return (
            f"{label}: test acc {pct(raw['accuracy'])}%, NLL {raw['nll']:.3f} → "
            f"{cal['nll']:.3f}, ECE {raw['ece']:.3f} → {cal['ece']:.3f} (calibrated)"
        )

    chosen = t3["chosen"]
    lines = [
        row(
            f"best single ({t3['best_single']['members'][0]}, chosen on validation)",
            t3["best_single"],
        ),
        row(f"chosen ensemble ({chosen['method']}, {plural(chosen['size'], 'member')})", chosen),
        row(f"entire pool ({plural(t3['entire']['size'], 'member')})", t3["entire"]),
        f"chosen members: {', '.join(chosen['members'])}; temperature {chosen['temperature']:.3f}",
        *[f"warning: {w}" for w in results.get("warnings", [])],
        f"report: {report_dir / 'report.md'}",
    ]
    return "\n".join(lines)


__all__ = ["MAX_PLOTTED_EPOCHS", "build_report", "headline"]
