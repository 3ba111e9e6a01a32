"""Draw policy curves (the LREnsemble paper's Figure 6) to an image file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from lrensemble.schedules.base import Policy


def plot_policies(
    policies: Sequence[Policy],
    path: str | os.PathLike[str],
    epochs: float = 200,
    steps_per_epoch: int = 20,
    title: str | None = None,
) -> Path:
    """Plot every policy's LR over `epochs`, one panel per policy name, and save to `path`
    (.png, .pdf or .svg), atomically."""
    from lrensemble.plotting import check_figure_path, pyplot, save_figure

    path = check_figure_path(path)  # before drawing: a bad name costs nothing
    plt = pyplot()
    names = list(dict.fromkeys(p.name for p in policies))
    cols = min(len(names), 4) or 1
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for policy in (p for p in policies if p.name == name):
            ts, lrs = policy.curve(epochs, steps_per_epoch)
            label = f"max_lr={policy.params['max_lr']:g}" if "max_lr" in policy.params else None
            ax.plot(ts, lrs, label=label, linewidth=1.4)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
