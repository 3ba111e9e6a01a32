"""`report.md`: the paper's tables and the figures, every number taken from results.json."""

from __future__ import annotations

from typing import Any

from lrensemble.ensemble.choice import plural
from lrensemble.pool import UNKNOWN_METHOD


def pct(x: float | None) -> str:
    """An accuracy as a percentage with two decimals (the paper's style)."""
    return "-" if x is None else f"{100 * x:.2f}"


def num(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _policy(spec: Any) -> str:
    """`name(param=value, ...)`, '-' for no policy, the raw value for a malformed one."""
    if not spec:
        return "-"
    if not isinstance(spec, dict) or "name" not in spec:
        return str(spec)
    params = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']}({params})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _excluded_lines(results: dict[str, Any]) -> list[str]:
    reasons: dict[str, list[str]] = {}
    for e in results["excluded"]:
        reasons.setdefault(e["reason"], []).append(f"{e['id']} ({pct(e['val_accuracy'])}%)")
    out = []
    for reason, names in reasons.items():
        detail = (
            f"validation accuracy below the floor of {pct(results['min_accuracy'])}%"
            if reason == "below the floor"
            else reason
        )
        out += [f"Not candidates for teams ({detail}): {', '.join(names)}.", ""]
    return out


def _chosen_lines(chosen: dict[str, Any], best: dict[str, Any]) -> list[str]:
    """The chosen members by name, with their weights and temperatures, and what won them the
    choice: their validation scores against the best single member's."""
    temps = chosen.get("member_temperatures") or [1.0] * chosen["size"]
    calibrated_members = any(abs(t - 1.0) > 1e-12 for t in temps)
    header = ["member", "weight"] + (["temperature"] if calibrated_members else [])
    rows = [
        [m, f"{w:.3f}"] + ([f"{t:.3f}"] if calibrated_members else [])
        for m, w, t in zip(chosen["members"], chosen["weights"], temps, strict=True)
    ]
    return [
        f"Chosen on validation by {chosen['method']} (objective: {chosen['objective']}); "
        f"soft vote of {plural(chosen['size'], 'member')}, then temperature "
        f"{chosen['temperature']:.3f} (fitted on validation). On validation, before temperature "
        f"scaling, it scores {pct(chosen['val']['accuracy'])}% accuracy and NLL "
        f"{num(chosen['val']['nll'], 3)}; the best single member "
        f"{pct(best['val']['accuracy'])}% and {num(best['val']['nll'], 3)}.",
        "",
        _table(header, rows),
        "",
    ]


def _metric_cells(row: dict[str, Any]) -> list[str]:
    raw, cal = row["test"], row["calibrated"]["test"]
    return [
        pct(raw["accuracy"]),
        num(raw["nll"]),
        num(cal["nll"]),
        num(raw["ece"]),
        num(cal["ece"]),
        num(raw["brier"]),
        num(cal["brier"]),
        num(row["temperature"], 3),
    ]


def _trial_lines(trials: list[dict[str, Any]]) -> list[str]:
    """The sweep's trials that produced no member (diverged, failed), after Table 1."""
    if not trials:
        return []
    rows = [
        [
            str(t["member"]),
            _policy(t.get("policy")),
            str(t["status"]),
            "-" if t.get("epoch") is None else str(t["epoch"]),
        ]
        for t in trials
    ]
    return [
        "",
        "## Trials that produced no member",
        "",
        _table(["member", "policy", "status", "epoch"], rows),
        "",
        "Epoch: the epoch (counted from 1) in which a diverged trial's loss stopped being finite.",
    ]


def _corruption_lines(corrupted: dict[str, Any] | None) -> list[str]:
    """ "Corrupted test sets": each team's accuracy (%), NLL and ECE on the clean test set,
    per severity (mean over the corruptions) and overall, then per corruption (mean over the
    severities), as the Prune-and-Tune paper's Table 2; nothing without cached sets."""
    if not corrupted:
        return []
    teams = corrupted["teams"]
    names = {"best_single": "best single", "chosen": "chosen", "entire": "entire pool"}
    header = [""] + [
        f"{names.get(label, label)} {m}" for label in teams for m in ("acc (%)", "NLL", "ECE")
    ]

    def cells(row: dict[str, float]) -> list[str]:
        return [pct(row["accuracy"]), num(row["nll"]), num(row["ece"])]

    def line(label: str, pick: Any) -> list[str]:
        return [label] + [c for team in teams.values() for c in cells(pick(team))]

    rows = [line("clean", lambda t: t["clean"])]
    rows += [
        line(f"severity {s}", lambda t, s=s: t["by_severity"][str(s)])
        for s in corrupted["severities"]
    ]
    rows.append(line("**mean (corrupted)**", lambda t: t["mean"]))
    per_corruption = [
        line(name, lambda t, n=name: t["by_corruption"][n]) for name in corrupted["corruptions"]
    ]
    severities = ", ".join(str(s) for s in corrupted["severities"])
    return [
        "## Corrupted test sets",
        "",
        f"The test set under {plural(len(corrupted['corruptions']), 'corruption')} at severities "
        f"{severities} ({len(corrupted['sets'])} sets, made locally with seed "
        f"{corrupted['seed']}: CIFAR-10-C's corruptions for images, their counterparts for "
        "signals), as the Prune-and-Tune paper's Table 2. Each team as shipped: its "
        "temperature fitted on clean validation. Per severity: the mean over the corruptions.",
        "",
        _table(header, rows),
        "",
        "Per corruption (the mean over its severities):",
        "",
        _table(header, per_corruption),
        "",
    ]


def render(results: dict[str, Any], figures: dict[str, str]) -> str:
    t2, t3 = results["table2"], results["table3"]
    best, chosen, entire = t3["best_single"], t3["chosen"], t3["entire"]
    n_cand = len(results["candidates"])

    def head(label: str, row: dict[str, Any]) -> str:
        raw, cal = row["test"], row["calibrated"]["test"]
        return (
            f"- {label}: **{pct(raw['accuracy'])}** (NLL {num(raw['nll'], 3)} → "
            f"{num(cal['nll'], 3)}, ECE {num(raw['ece'], 3)} → {num(cal['ece'], 3)})"
        )

    out = [
        "# LREnsemble report",
        "",
        f"Pool `{results['pool']}`: dataset {results['dataset']}, {results['num_classes']} "
        f"classes, {len(results['members'])} members, {results['splits']['val']} validation "
        f"and {results['splits']['test']} test samples. Teams and temperatures are chosen on "
        "validation and scored on test.",
        "",
    ]
    for warning in results.get("warnings", []):
        out += [f"> **Warning.** {warning}", ""]
    out += [
        "## Headline (test accuracy, %; NLL and ECE raw → calibrated)",
        "",
        head(f"best single member ({best['members'][0]}, chosen on validation)", best),
        head(f"chosen ensemble ({chosen['method']}, {plural(chosen['size'], 'member')})", chosen),
        head(f"entire pool ({plural(entire['size'], 'member')})", entire),
        "",
        "## The chosen ensemble",
        "",
        *_chosen_lines(chosen, best),
    ]
    out += _excluded_lines(results)
    out += ["## Table 1: the members (in the sweep's order)", ""]
    by_method = results.get("by_method") or {}
    mixed = len(by_method) > 1  # a pool of several methods names each member's
    out.append(
        _table(
            [
                "member",
                *(["method"] if mixed else []),
                *("policy", "val acc (%)", "test acc (%)", "test NLL", "test ECE"),
            ],
            [
                [
                    m["id"],
                    *([m.get("method") or UNKNOWN_METHOD] if mixed else []),
                    _policy(m["policy"]),
                    pct(m["val"]["accuracy"]),
                    pct(m["test"]["accuracy"]),
                    num(m["test"]["nll"]),
                    num(m["test"]["ece"]),
                ]
                for m in results["members"]
            ],
        )
    )
    if by_method:
        out += [
            "",
            "Members by the method that made them, each method's members also as one ensemble "
            "(soft vote) on test, with their mean accuracy and prediction diversity (Fort et al.), "
            "as the StarSSE thesis's Table 4.1 compares methods:",
            "",
        ]
        out.append(
            _table(
                [
                    *("method", "members", "in the chosen ensemble", "best val acc (%)"),
                    *("mean member test acc (%)", "diversity", "ensemble test acc (%)"),
                    *("ensemble NLL", "ensemble ECE"),
                ],
                [
                    [
                        method,
                        str(row["members"]),
                        str(row["chosen"]),
                        pct(row["best_val_accuracy"]),
                        pct(row["mean_test_accuracy"]),
                        num(row["diversity"], 1),
                        pct(row["ensemble_test"]["accuracy"]),
                        num(row["ensemble_test"]["nll"]),
                        num(row["ensemble_test"]["ece"]),
                    ]
                    for method, row in by_method.items()
                ],
            )
        )
    out += _trial_lines(results.get("diverged") or [])
    out += [
        "",
        f"## Table 2: test accuracy (%) of the teams chosen on validation, by size "
        f"({n_cand} candidates)",
        "",
    ]
    rows = [
        [
            str(r["size"]),
            f"{pct(r['random_mean'])} ± {pct(r['random_std'])}",
            pct(r["brute_force"]),
            pct(r["greedy"]),
            pct(r["focal"]),
        ]
        for r in t2["rows"]
    ]
    rows.append(["best single (chosen on validation)", pct(t2["best_single"]["test"]), "", "", ""])
    rows.append([f"all {n_cand} candidates", pct(t2["entire"]["test"]), "", "", ""])
    out.append(
        _table(["size", "random (mean ± std)", "brute force", "greedy", results["metric"]], rows)
    )
    out += [
        "",
        "## Table 3: best single member, chosen ensemble, entire pool (test; raw and calibrated)",
        "",
    ]
    rows = []
    for label, row in (("best single", best), ("chosen", chosen), ("entire", entire)):
        rows.append(
            [
                label,
                str(row["size"]),
                *_metric_cells(row),
                "-" if row["parameters"] is None else f"{row['parameters']:,}",
                num(row["inference_seconds"], 3),
            ]
        )
    out.append(
        _table(
            [
                "",
                "size",
                "accuracy (%)",
                "NLL",
                "NLL (cal.)",
                "ECE",
                "ECE (cal.)",
                "Brier",
                "Brier (cal.)",
                "temperature",
                "parameters",
                "inference (s)",
            ],
            rows,
        )
    )
    out += [
        "",
        "Calibrated: each row's soft vote scaled by its own temperature, fitted on validation "
        "(accuracy is unchanged).",
    ]
    if results.get("unreadable_weights"):
        out.append(
            "A '-' marks a row with a member whose weights are unreadable (see the warnings)."
        )
    elif best["parameters"] is None:
        out.append(
            "Parameters and inference time are '-': the members have no weights in the pool."
        )
    elif best["inference_seconds"] is None and not results.get("timing", True):
        out.append("Inference time is '-': timing was switched off for this report.")
    elif best["inference_seconds"] is None:
        out.append("Inference time is '-': see the warnings.")
    out.append("")
    costs = results["costs"]
    out += ["## Cost (the paper's appendix D)", ""]
    selection = costs["selection_seconds"].get(chosen["method"])
    rows = []
    for label, row, sel in (
        ("best single", best, None),
        (f"chosen ({chosen['method']})", chosen, selection),
        ("entire", entire, None),
    ):
        rows.append(
            [
                label,
                num(row["train_seconds"], 1),
                num(sel, 3),
                num(row["inference_seconds"], 3),
                "-" if row["parameters"] is None else f"{row['parameters']:,}",
            ]
        )
    out.append(_table(["", "training (s)", "selection (s)", "inference (s)", "parameters"], rows))
    out += [
        "",
        "Training time counts every member of a team; the whole sweep trained in "
        f"{num(costs['training_seconds_all_members'], 1)} s of member time. Selection times "
        "(s): "
        + ", ".join(f"{k} {v:.3f}" for k, v in costs["selection_seconds"].items())
        + f"; all of Table 2 in {costs['table2_seconds']:.1f} s.",
        "",
    ]
    out += _corruption_lines(results.get("corruptions"))
    titles = {
        "lr_policies": "Figure 6: the LR policies",
        "team_accuracy": "Figure 4: test accuracy of every team of the candidates, by size",
        "diversity_vs_accuracy": f"Figure 7b: {results['metric']} against test accuracy",
        "parameter_similarity": "Figure 7a: parameter cosine similarity of the candidates",
        "member_trajectory": "Figure 2.2 (StarSSE thesis): each member's test accuracy along "
        "the trajectory",
    }
    out += ["## Figures", ""]
    for key, title in titles.items():
        if key in figures:
            out += [f"### {title}", "", f"![{title}]({figures[key]})", ""]
    for key, reason in results.get("omitted", {}).items():
        out += [f"{titles[key]} is omitted: {reason}.", ""]
    return "\n".join(out) + "\n"
