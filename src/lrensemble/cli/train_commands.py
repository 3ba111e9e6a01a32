"""`lrens train`: one member from a config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lrensemble.cli.app import DeviceOption, EpochsOption, ProgressOption, SeedOption, app, out


@app.command("train")
def train(
    config: Annotated[
        Path | None, typer.Argument(help="TOML run config (default: MNIST-1D, 1-D CNN, onecycle).")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output directory.")] = None,
    epochs: EpochsOption = None,
    seed: SeedOption = None,
    device: DeviceOption = None,
    progress: ProgressOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Train one member from a config; rerunning with the same --out resumes or reuses it."""
    from lrensemble.train.run import execute_run, load_run

    run = load_run(config, epochs=epochs, seed=seed, device=device)
    result = execute_run(run, out_dir, progress=progress)
    if as_json:
        typer.echo(json.dumps(result.record, indent=2))
    else:
        table = Table("status", "epochs", "val acc", "val nll", "test acc", "test nll", "seconds")
        val, test = result.metrics.get("val", {}), result.metrics.get("test", {})
        fmt = lambda d, k: f"{d[k]:.4f}" if k in d else "-"  # noqa: E731
        table.add_row(
            result.status,
            str(result.epochs_completed),
            fmt(val, "accuracy"),
            fmt(val, "nll"),
            fmt(test, "accuracy"),
            fmt(test, "nll"),
            f"{result.seconds:.1f}",
        )
        out.print(table)
        if out_dir is not None:
            out.print(f"member written to {out_dir}")
    if result.status == "diverged":
        raise typer.Exit(1)
