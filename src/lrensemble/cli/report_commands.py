"""`lrens run` (tune, then report), `lrens demo` (the embedded default) and `lrens report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrensemble.cli.app import DeviceOption, EpochsOption, ProgressOption, SeedOption, app, out


@app.command("run")
def run(
    config: Annotated[Path, typer.Argument(help="TOML config: a sweep plus an ensemble table.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/run"),
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = None,
) -> None:
    """The whole job on your config: LR sweep, team selection, report.

    The sweep is resumed or reused when --out holds it; every selection method runs at every
    team size; the report (report.md, results.json, figures) goes to --out/report.
    """
    from lrensemble.report import load_run_config, run_pipeline

    cfg = load_run_config(config, epochs=epochs, seed=seed, device=device)
    out.print(f"run {cfg.study_name()} → {out_dir}")
    run_pipeline(cfg, out_dir, log=out.print, progress=progress)


@app.command("demo")
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/demo"),
    seed: Annotated[
        int | None,
        typer.Option(help="Training seed (initialization and data order of every member)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the demo's 40 epochs.")] = None,
    progress: ProgressOption = None,
) -> None:
    """LREnsemble on the embedded default: MNIST-1D, the 1-D CNN, the paper's 16 policies."""
    from lrensemble.report import demo_config_path, load_run_config, run_pipeline

    cfg = load_run_config(demo_config_path(), seed=seed, epochs=epochs)
    out.print(f"demo: MNIST-1D, 1-D CNN, the 16 policies of Table 1 → {out_dir}")
    run_pipeline(cfg, out_dir, log=out.print, progress=progress)


@app.command("report")
def report(
    pool: Annotated[Path, typer.Argument(help="Pool directory (with val and test splits).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report directory (default: POOL/../report).")
    ] = None,
    method: Annotated[str, typer.Option(help="Selection method of the chosen ensemble.")] = "focal",
    size: Annotated[int | None, typer.Option(help="Team size of the chosen ensemble.")] = None,
    metric: Annotated[str, typer.Option(help="Focal diversity metric.")] = "GD",
    min_accuracy: Annotated[
        float | None,
        typer.Option(help="Minimum validation accuracy of a candidate (default 1.5× chance)."),
    ] = None,
) -> None:
    """Regenerate the report from an existing pool, without training."""
    from lrensemble.report import EnsembleConfig, build_report, headline

    ens = EnsembleConfig(method=method, size=size, metric=metric, min_accuracy=min_accuracy)
    target = out_dir or pool.parent / "report"
    results = build_report(pool, target, ens)
    out.print(headline(results, target))
