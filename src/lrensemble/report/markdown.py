"""`report.md`: the paper's tables and the figures, every number taken from results.json."""

from __future__ import annotations

from typing import Any


def pct(x: float | None) -> str:
    """An accuracy as a percentage with two decimals (the paper's style)."""
    return "-" if x is None else f"{100 * x:.2f}"


def num(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _policy(spec: dict[str, Any] | None) -> str:
    if not spec:
        return "-"
    params = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']}({params})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render(results: dict[str, Any], figures: dict[str, str]) -> str:
    t2, t3 = results["table2"], results["table3"]
    best, chosen, entire = t3["best_single"], t3["chosen"], t3["entire"]
    out = [
        "# LREnsemble report",
        "",
        f"Pool `{results['pool']}`: dataset {results['dataset']}, {results['num_classes']} "
        f"classes, {len(results['members'])} members, {results['splits']['val']} validation "
        f"and {results['splits']['test']} test samples. Teams are chosen on validation and "
        "scored on test.",
        "",
        "## Headline (test accuracy, %)",
        "",
        f"- best single member ({best['members'][0]}): **{pct(best['test']['accuracy'])}**",
        f"- chosen ensemble ({chosen['method']}, {chosen['size']} members): "
        f"**{pct(chosen['test']['accuracy'])}**",
        f"- entire ensemble ({entire['size']} members): **{pct(entire['test']['accuracy'])}**",
        "",
    ]
    reasons: dict[str, list[str]] = {}
    for e in results["excluded"]:
        reasons.setdefault(e["reason"], []).append(f"{e['id']} ({pct(e['val_accuracy'])}%)")
    for reason, names in reasons.items():
        detail = (
            f"validation accuracy below {pct(results['min_accuracy'])}%"
            if reason == "below the minimum accuracy"
            else reason
        )
        out += [f"Not candidates for teams ({detail}): {', '.join(names)}.", ""]
    out += ["## Table 1: the members", ""]
    out.append(
        _table(
            ["member", "policy", "val acc (%)", "test acc (%)", "test NLL", "test ECE"],
            [
                [
                    m["id"],
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
    out += ["", "## Table 2: test accuracy (%) of the teams chosen on validation, by size", ""]
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
    rows.append(["best single", pct(t2["best_single"]["test"]), "", "", ""])
    rows.append(["entire", pct(t2["entire"]["test"]), "", "", ""])
    out.append(
        _table(["size", "random (mean ± std)", "brute force", "greedy", results["metric"]], rows)
    )
    out += ["", "## Table 3: best single member, chosen ensemble, entire ensemble (test)", ""]
    rows = []
    for label, row in (("best single", best), ("chosen", chosen), ("entire", entire)):
        test = row["test"]
        rows.append(
            [
                label,
                str(row["size"]),
                pct(test["accuracy"]),
                num(test["nll"]),
                num(test["ece"]),
                num(test["brier"]),
                "-" if row["parameters"] is None else f"{row['parameters']:,}",
                num(row["inference_seconds"], 3),
            ]
        )
    out.append(
        _table(
            ["", "size", "accuracy (%)", "NLL", "ECE", "Brier", "parameters", "inference (s)"], rows
        )
    )
    costs = results["costs"]
    out += ["", "## Cost (the paper's appendix D)", ""]
    selection = costs["selection_seconds"].get(chosen["method"])
    rows = [
        [
            "best single",
            num(best["train_seconds"], 1),
            "-",
            num(best["inference_seconds"], 3),
            "-" if best["parameters"] is None else f"{best['parameters']:,}",
        ],
        [
            f"chosen ({chosen['method']})",
            num(chosen["train_seconds"], 1),
            num(selection, 3),
            num(chosen["inference_seconds"], 3),
            "-" if chosen["parameters"] is None else f"{chosen['parameters']:,}",
        ],
        [
            "entire",
            num(entire["train_seconds"], 1),
            "-",
            num(entire["inference_seconds"], 3),
            "-" if entire["parameters"] is None else f"{entire['parameters']:,}",
        ],
    ]
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
    titles = {
        "lr_policies": "Figure 6: the LR policies",
        "team_accuracy": "Figure 4: test accuracy of all teams by size",
        "diversity_vs_accuracy": f"Figure 7b: {results['metric']} against test accuracy",
        "parameter_similarity": "Figure 7a: parameter cosine similarity of the members",
    }
    out += ["## Figures", ""]
    for key, title in titles.items():
        if key in figures:
            out += [f"### {title}", "", f"![{title}]({figures[key]})", ""]
    return "\n".join(out) + "\n"
