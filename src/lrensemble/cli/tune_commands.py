"""`lrens tune` (an LR sweep whose every trial joins the pool) and `lrens policies top`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lrensemble.cli.app import (
    DeviceOption,
    EpochsOption,
    JsonOption,
    ProgressOption,
    SeedOption,
    app,
    out,
    policies_app,
)
from lrensemble.cli.report_commands import DataOption, ModelOption
from lrensemble.ensemble.choice import plural
from lrensemble.errors import ParameterError


@app.command("tune")
def tune(
    config: Annotated[Path, typer.Argument(help="TOML sweep config.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Sweep directory (pool, study).")] = Path(
        "runs/tune"
    ),
    data: DataOption = None,
    model: ModelOption = None,
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    trials: Annotated[int | None, typer.Option(help="Override search.trials.")] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            help="Optuna storage URL, journal file, or env:NAME (default: SQLite in --out)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="How many workers will share the sweep: each claims its share."),
    ] = None,
    device: DeviceOption = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for trials running in other workers.")
    ] = True,
    progress: ProgressOption = None,
) -> None:
    """Run an LR sweep whose every trained model joins the pool.

    Rerun the same command to resume; start more workers on the same --out to share the trials.
    """
    from lrensemble.tuning import load_tune_config, run_sweep

    table = None
    if data:
        from lrensemble.data.files import data_table

        table = data_table(data)
    cfg = load_tune_config(
        config,
        epochs=epochs,
        seed=seed,
        trials=trials,
        storage=storage,
        workers=workers,
        device=device,
        data=table,
        model=model,
    )
    out.print(f"sweep {cfg.study_name()} → {out_dir}")
    result = run_sweep(cfg, out_dir, wait=wait, log=out.print, progress=progress)
    out.print(
        f"done in {result.seconds:.1f} s: {plural(len(result.members), 'member')} in "
        f"{out_dir / 'pool'}"
        + (f", {len(result.diverged)} diverged" if result.diverged else "")
        + (f", {len(result.failed)} failed" if result.failed else "")
    )
    if result.elsewhere_line():
        out.print(result.elsewhere_line())
    if result.failed:
        raise typer.Exit(1)


@policies_app.command("top")
def policies_top(
    dataset: Annotated[str, typer.Option(help="Dataset name.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL or journal file.")] = None,
    sweep: Annotated[
        Path | None, typer.Option("--out", help="A sweep directory (its default SQLite storage).")
    ] = None,
    task: Annotated[str, typer.Option(help="Task.")] = "classification",
    n: Annotated[int, typer.Option("-n", help="How many policies.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Recommend the best LR policies for a dataset and model across all studies of a storage."""
    from lrensemble.tuning import top_policies
    from lrensemble.tuning.config import default_storage

    if (storage is None) == (sweep is None):
        raise ParameterError("Give exactly one of --storage or --out.")
    if sweep is not None:
        if not (sweep / "study.db").exists():
            raise ParameterError(f"{sweep} has no study.db; pass --storage instead.")
        storage = default_storage(sweep)
    rows = top_policies(storage, dataset, model, task, n)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print(f"no complete trials for {dataset} / {model} / {task} in {storage}")
        return
    table = Table("#", "policy", "val acc", "test acc", "epochs", "optimizer", "study")
    for i, r in enumerate(rows, 1):
        pol = r["policy"]
        label = ", ".join(f"{k}={v}" for k, v in pol.items() if k != "name")
        table.add_row(
            str(i),
            f"{pol['name']}({label})",
            f"{r['metrics']['val']['accuracy']:.4f}",
            f"{r['metrics'].get('test', {}).get('accuracy', float('nan')):.4f}",
            str(r["epochs"]),
            str((r["optimizer"] or {}).get("optimizer")),
            r["study"],
        )
    out.print(table)
