"""`lrens run` (tune, then report), `lrens demo` (the embedded default) and `lrens report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lrensemble.cli.app import DeviceOption, EpochsOption, ProgressOption, SeedOption, app, out
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
)

DataOption = Annotated[
    list[str] | None,
    typer.Option(
        "--data",
        help="Your data instead of the config's data table: a .npz, a .csv or an image "
        "folder, or SPLIT=PATH items (train=a.csv --data test=b.csv).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Model name instead of the config's model table (default with --data: by shape).",
    ),
]


@app.command("run")
def run(
    config: Annotated[
        Path | None,
        typer.Argument(help="TOML config: a sweep plus an ensemble table (default: the demo's)."),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Run directory.")] = Path("runs/run"),
    data: DataOption = None,
    model: ModelOption = None,
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = None,
) -> None:
    """The whole job on your config or your data: LR sweep, team selection, report.

    The sweep is resumed or reused when --out holds it; every selection method runs at every
    team size; the report (report.md, results.json, figures) goes to --out/report. Without a
    config, the demo's settings (the paper's 16 policies, 40 epochs) apply to --data.
    """
    from lrensemble.pipeline import demo_config_path, load_run_config, run_pipeline

    table = None
    if data:
        from lrensemble.data.files import data_table

        table = data_table(data)
        if model is None and config is None:
            model = _model_for(table)
    cfg = load_run_config(
        config if config is not None else demo_config_path(),
        epochs=epochs,
        seed=seed,
        device=device,
        data=table,
        model=model,
    )
    out.print(f"run {cfg.study_name()} → {out_dir}")
    run_pipeline(cfg, out_dir, log=out.print, progress=progress)


def _model_for(table: dict) -> str:
    """The built-in model for the inputs of a `[data]` table (loads the data once)."""
    from lrensemble.data import load_dataset
    from lrensemble.models import model_for_inputs

    params = {k: v for k, v in table.items() if k != "name"}
    name = model_for_inputs(load_dataset(table["name"], **params).input_shape)
    out.print(f"model: {name} (chosen for the data's input shape; --model to change it)")
    return name


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
    from lrensemble.pipeline import demo_config_path, load_run_config, run_pipeline

    cfg = load_run_config(demo_config_path(), seed=seed, epochs=epochs)
    out.print(f"demo: MNIST-1D, 1-D CNN, the 16 policies of Table 1 → {out_dir}")
    run_pipeline(cfg, out_dir, log=out.print, progress=progress)


@app.command("report")
def report(
    pool: Annotated[Path, typer.Argument(help="Pool directory (with val and test splits).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report directory (default: POOL/../report).")
    ] = None,
    method: MethodOption = None,
    size: SizeOption = None,
    objective: ObjectiveOption = None,
    metric: MetricOption = None,
    min_accuracy: MinAccuracyOption = None,
    min_relative_accuracy: MinRelativeOption = None,
    max_candidates: MaxCandidatesOption = None,
    calibrate: CalibrateOption = None,
    calibrate_members: CalibrateMembersOption = None,
    corruptions: Annotated[
        bool,
        typer.Option(
            "--corruptions",
            help="Also score the teams on corrupted test sets: every member with weights is "
            "first predicted on them (cached in the pool) for a 'Corrupted test sets' section.",
        ),
    ] = False,
    data: CorruptionDataOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = None,
) -> None:
    """Regenerate the report from an existing pool, without training.

    With --corruptions, members are first run on corrupted test sets.
    """
    from lrensemble.cli.common import ensemble_config
    from lrensemble.errors import ParameterError
    from lrensemble.pipeline import report_pool
    from lrensemble.report import headline

    ens = ensemble_config(
        method=method,
        size=size,
        objective=objective,
        metric=metric,
        min_accuracy=min_accuracy,
        min_relative_accuracy=min_relative_accuracy,
        max_candidates=max_candidates,
        calibrate=calibrate,
        calibrate_members=calibrate_members,
    )
    given = [flag for flag, value in (("--data", data), ("--device", device)) if value]
    if given and not corruptions:
        raise ParameterError(
            f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --corruptions."
        )
    table = None
    if data:
        from lrensemble.data.files import data_table

        table = data_table(data)
    target = out_dir or pool.parent / "report"
    results = report_pool(
        pool,
        target,
        ens,
        corruptions=corruptions,
        data=table,
        device=device or "auto",
        log=out.print,
        progress=progress,
    )
    out.print(headline(results, target))
