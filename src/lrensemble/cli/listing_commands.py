"""Listings and plots: `lrens policies|models|data ...`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lrensemble.cli.app import (
    data_app,
    models_app,
    out,
    params_text,
    policies_app,
    registry_table,
)


@policies_app.command("list")
def policies_list() -> None:
    """List every LR policy with its parameters and defaults."""
    from lrensemble.schedules import POLICIES

    out.print(registry_table(POLICIES, "policy"))


@policies_app.command("grid")
def policies_grid(
    name: Annotated[str, typer.Argument(help="Grid name.")] = "table1",
    scale: Annotated[float, typer.Option(help="Multiply every LR by this factor.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print policy specs as JSON.")] = False,
) -> None:
    """Show the policies of a named grid (table1: the LREnsemble paper's 16)."""
    from lrensemble.schedules import grid

    policies = grid(name, scale)
    if as_json:
        typer.echo(json.dumps([p.spec() for p in policies], indent=2))
        return
    table = Table("#", "policy", "parameters")
    for i, p in enumerate(policies):
        table.add_row(str(i), p.name, params_text(p.params))
    out.print(table)


@policies_app.command("plot")
def policies_plot(
    output: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path(
        "lr_policies.png"
    ),
    grid_name: Annotated[str, typer.Option("--grid", help="Grid to draw.")] = "table1",
    scale: Annotated[float, typer.Option(help="Multiply every LR by this factor.")] = 1.0,
    epochs: Annotated[float, typer.Option(help="Total epochs T of the x-axis.")] = 200,
) -> None:
    """Draw the LR curves of a grid, one panel per policy (the paper's Figure 6)."""
    from lrensemble.errors import ParameterError
    from lrensemble.schedules import grid, plot_policies

    if epochs <= 0:
        raise ParameterError(f"--epochs must be positive, got {epochs:g}.")
    path = plot_policies(
        grid(grid_name, scale),
        output,
        epochs=epochs,
        title=f"{grid_name} (scale {scale:g}, T = {epochs:g} epochs)",
    )
    typer.echo(f"wrote {path}")


@models_app.command("list")
def models_list() -> None:
    """List the registered models and their parameters."""
    from lrensemble.models import MODELS

    table = registry_table(MODELS, "model", skip=("num_classes",))
    table.add_row("timm/<name>", "timm's", "Any timm model, when timm is installed.")
    out.print(table)


@data_app.command("list")
def data_list() -> None:
    """List the registered datasets and their parameters."""
    from lrensemble.data import DATASETS

    out.print(registry_table(DATASETS, "dataset"))


@data_app.command("prepare")
def data_prepare(
    name: Annotated[str, typer.Argument(help="Dataset name.")] = "mnist1d",
    root: Annotated[str | None, typer.Option(help="Folder with the dataset's files.")] = None,
) -> None:
    """Load a dataset once (generating and caching MNIST-1D) and print its split sizes."""
    from lrensemble.data import load_dataset

    ds = load_dataset(name, **({"root": root} if root else {}))
    typer.echo(f"{ds.name}: {ds.sizes()} · {ds.num_classes} classes · inputs {ds.input_shape}")
