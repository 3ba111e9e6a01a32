"""The report's figures, as PNG files with labelled axes (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lrensemble.ensemble import parameter_cosine_similarity, team_sizes
from lrensemble.plotting import pyplot, save_figure
from lrensemble.pool import UNKNOWN_METHOD

MAX_POINTS = 200_000


def _pyplot() -> Any:
    return pyplot()


def _save(fig: Any, path: Path) -> Path:
    return save_figure(fig, path)


def team_accuracy_boxplot(
    test_accuracy: np.ndarray,
    m: int,
    best_single: float,
    entire: float,
    path: Path,
    chosen: tuple[int, float] | None = None,
) -> Path:
    """Figure 4: test accuracy of every team of the candidates, one box per team size with
    its outliers drawn; the best single member (chosen on validation) as a line, the
    candidates' whole ensemble and the chosen team (size, test accuracy) as markers."""
    plt = _pyplot()
    sizes = team_sizes(m)
    data = [test_accuracy[sizes == s] for s in range(1, m + 1)]
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * m), 4))
    ax.boxplot(
        data,
        positions=range(1, m + 1),
        widths=0.6,
        showfliers=True,
        flierprops={"marker": ".", "markersize": 3, "alpha": 0.4},
    )
    ax.axhline(
        best_single, color="tab:red", linestyle="--", label="best single (chosen on validation)"
    )
    ax.scatter([m], [entire], color="tab:green", zorder=3, label=f"all {m} candidates")
    if chosen is not None:
        ax.scatter(
            [chosen[0]],
            [chosen[1]],
            marker="*",
            s=160,
            color="tab:orange",
            edgecolor="black",
            zorder=4,
            label="chosen ensemble (on validation)",
        )
    ax.set_xlabel("team size")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Test accuracy of every team of the {m} candidates (dots: outliers)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def diversity_vs_accuracy(
    focal: np.ndarray,
    test_accuracy: np.ndarray,
    m: int,
    metric: str,
    path: Path,
    chosen_mask: int | None = None,
) -> Path:
    """Figure 7b: focal diversity on validation against test accuracy, a point per team,
    colored by team size; the chosen team (when it has two members or more) marked."""
    plt = _pyplot()
    sizes = team_sizes(m)
    keep = np.nonzero(sizes >= 2)[0]
    shown = f"all {len(keep):,} teams"
    if len(keep) > MAX_POINTS:  # a readable, fast scatter: a seeded sample of the teams
        keep = np.sort(np.random.default_rng(0).choice(keep, MAX_POINTS, replace=False))
        shown = f"{MAX_POINTS:,} of {int((sizes >= 2).sum()):,} teams"
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    points = ax.scatter(
        focal[keep], test_accuracy[keep], c=sizes[keep], cmap="viridis", s=6, alpha=0.6
    )
    bar = fig.colorbar(points, ax=ax, label="team size")
    from matplotlib.ticker import MaxNLocator

    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    if chosen_mask is not None and sizes[chosen_mask] >= 2:
        ax.scatter(
            [focal[chosen_mask]],
            [test_accuracy[chosen_mask]],
            marker="*",
            s=200,
            color="tab:orange",
            edgecolor="black",
            zorder=4,
            label="chosen team (equal weights)",
        )
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel(f"{metric} (validation)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{metric} against test accuracy, {shown}")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def parameter_similarity(weights: dict[str, Path], path: Path) -> str | None:
    """Figure 7a: pairwise cosine similarity of the members' final parameters (output layer
    left out); pairs of different architectures stay blank. Returns why the figure cannot be
    drawn (fewer than two members with weights, an unreadable weights file, or no two of one
    architecture), else None."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from lrensemble.errors import ParameterError

    loaded = {}
    for name, p in weights.items():
        if p.exists():
            try:
                loaded[name] = load_file(str(p))
            except (SafetensorError, OSError, ValueError, TypeError) as exc:
                return f"the weights of {name}, {p}, are unreadable or truncated ({exc})"
    if len(loaded) < 2:
        return "fewer than two candidates have weights in the pool (e.g. imported predictions)"
    names = list(loaded)
    k = len(names)
    sim = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            try:
                value = parameter_cosine_similarity(loaded[names[i]], loaded[names[j]])
            except ParameterError:  # different architectures: no common parameter space
                value = np.nan
            sim[i, j] = sim[j, i] = value
    if np.isnan(sim[~np.eye(k, dtype=bool)]).all():
        return "no two candidates share an architecture"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * k + 2), max(4, 0.45 * k + 1)))
    low = min(0.0, float(np.nanmin(sim)))
    image = ax.imshow(np.ma.masked_invalid(sim), cmap="magma", vmin=low, vmax=1.0)
    fig.colorbar(image, ax=ax, label="cosine similarity")
    ax.set_xticks(range(k), names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("member")
    ax.set_ylabel("member")
    title = "Parameter cosine similarity at the end of training"
    if np.isnan(sim).any():
        title += "\n(blank: different architectures)"
    ax.set_title(title)
    _save(fig, path)
    return None


def member_trajectory(members: list[dict[str, Any]], path: Path) -> Path | None:
    """The StarSSE thesis's Figure 2.2: each member's test accuracy along its method's
    trajectory (cycle 1 is the fine-tuned model 1), one line per method; None when no member
    records a cycle (only snapshot runs do)."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for m in members:
        if isinstance(m.get("cycle"), int):
            lines.setdefault(m.get("method") or UNKNOWN_METHOD, []).append(
                (m["cycle"], m["test"]["accuracy"])
            )
    if not lines:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, points in sorted(lines.items()):
        points.sort()
        ax.plot([c for c, _ in points], [a for _, a in points], marker="o", label=method)
    ax.set_xlabel("member (cycle 1: fine-tuned from the checkpoint)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Each member's test accuracy along the trajectory", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
