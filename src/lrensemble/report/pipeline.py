"""The whole LREnsemble job: tune (or reuse the sweep), then analyze the pool and write the
report directory (report.md, results.json, figures)."""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from lrensemble.atomic import write_json, write_text
from lrensemble.config import StrictModel
from lrensemble.ensemble.teams import MAX_ENUMERATION_MEMBERS
from lrensemble.pool import Pool
from lrensemble.report import figures
from lrensemble.report.analysis import analyze_pool
from lrensemble.report.markdown import pct, render
from lrensemble.schedules.base import from_spec
from lrensemble.schedules.plot import plot_policies
from lrensemble.tuning.config import TuneConfig, load_tune_config
from lrensemble.tuning.runner import run_sweep


class EnsembleConfig(StrictModel):
    """How the report chooses its ensemble: a selection method and team size (None: the
    method's own choice), the focal metric, the minimum validation accuracy of a candidate
    (None: 1.5× chance), random teams per size, their seed, and how many of the best members
    are candidates at most (every team of the candidates is enumerated)."""

    method: Literal["brute_force", "greedy", "focal", "hierarchical"] = "focal"
    size: int | None = Field(None, ge=1, le=MAX_ENUMERATION_MEMBERS)
    metric: Literal["GD", "KW", "BD", "QS", "CK", "FK"] = "GD"
    min_accuracy: float | None = Field(None, ge=0.0, le=1.0)
    repeats: int = Field(10, ge=1)
    seed: int = 0
    max_candidates: int = Field(20, ge=3, le=MAX_ENUMERATION_MEMBERS)


class RunConfig(TuneConfig):
    """A sweep config plus an `[ensemble]` table."""

    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)


def demo_config_path() -> Path:
    """The embedded default: MNIST-1D, the 1-D CNN, the paper's 16 policies."""
    return Path(str(resources.files("lrensemble") / "configs" / "demo.toml"))


def load_run_config(path: str | os.PathLike[str] | None, **overrides: Any) -> RunConfig:
    return load_tune_config(path, cls=RunConfig, **overrides)  # type: ignore[return-value]


def build_report(
    pool_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    ensemble: EnsembleConfig | None = None,
    timing: bool = True,
) -> dict[str, Any]:
    """Analyze a pool and write `out_dir/report.md`, `results.json` and the figures."""
    ens = ensemble or EnsembleConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Any] = {}
    results = analyze_pool(
        pool_dir,
        method=ens.method,
        size=ens.size,
        metric=ens.metric,
        min_accuracy=ens.min_accuracy,
        repeats=ens.repeats,
        max_candidates=ens.max_candidates,
        seed=ens.seed,
        timing=timing,
        cache=cache,
    )
    made: dict[str, str] = {}
    policies = [from_spec(m["policy"]) for m in results["members"] if m.get("policy")]
    epochs = next((m["epochs"] for m in results["members"] if m.get("epochs")), None)
    if policies and epochs:
        plot_policies(
            policies,
            out / "fig6_lr_policies.png",
            epochs=epochs,
            title=f"LR policies over {epochs} epochs",
        )
        made["lr_policies"] = "fig6_lr_policies.png"
    m = len(results["candidates"])
    t2 = results["table2"]
    figures.team_accuracy_boxplot(
        cache["test_accuracy"],
        m,
        t2["best_single"]["test"],
        t2["entire"]["test"],
        out / "fig4_team_accuracy.png",
    )
    made["team_accuracy"] = "fig4_team_accuracy.png"
    figures.diversity_vs_accuracy(
        cache["focal"],
        cache["test_accuracy"],
        m,
        results["metric"],
        out / "fig7b_diversity_vs_accuracy.png",
    )
    made["diversity_vs_accuracy"] = "fig7b_diversity_vs_accuracy.png"
    pool = Pool.open(pool_dir)
    weights = {mid: pool.member_dir(mid) / "model.safetensors" for mid in results["candidates"]}
    if figures.parameter_similarity(weights, out / "fig7a_parameter_similarity.png"):
        made["parameter_similarity"] = "fig7a_parameter_similarity.png"
    results["figures"] = made
    write_json(out / "results.json", results)
    write_text(out / "report.md", render(results, made))
    return results


def headline(results: dict[str, Any], report_dir: Path) -> str:
    t3 = results["table3"]
    best, chosen, entire = t3["best_single"], t3["chosen"], t3["entire"]
    return (
        f"best single {pct(best['test']['accuracy'])}% ({best['members'][0]}) · "
        f"chosen ensemble {pct(chosen['test']['accuracy'])}% ({chosen['method']}, "
        f"{chosen['size']} members) · entire ensemble {pct(entire['test']['accuracy'])}% "
        f"({entire['size']} members) · report {report_dir / 'report.md'}"
    )


def run_pipeline(
    config: RunConfig,
    out_dir: str | os.PathLike[str],
    *,
    log: Callable[[str], None] = print,
    progress: bool | None = None,
    timing: bool = True,
) -> dict[str, Any]:
    """Tune into `out_dir` (resuming or reusing a sweep there), then report into
    `out_dir/report`."""
    out = Path(out_dir)
    run_sweep(config, out, log=log, progress=progress)
    results = build_report(out / "pool", out / "report", config.ensemble, timing=timing)
    log(headline(results, out / "report"))
    return results


__all__ = [
    "EnsembleConfig",
    "RunConfig",
    "build_report",
    "demo_config_path",
    "headline",
    "load_run_config",
    "run_pipeline",
]
