"""Listings and plots: `lrens policies|models|data ...`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
from lrensemble.errors import LREnsembleError, ParameterError

if TYPE_CHECKING:
    from lrensemble.schedules import Policy


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


def _grid_policies(name: str, scale: float | None) -> tuple[list[Policy], str]:
    """A named grid's policies and the plot title."""
    from lrensemble.schedules import grid

    scale = 1.0 if scale is None else scale
    return grid(name, scale), f"{name} (scale {scale:g})"


def _config_policies(config: Path) -> tuple[list[Policy], str, float]:
    """The policies a sweep (or run) config trains, its title and its epochs: a grid search's
    points; random and TPE searches draw theirs during the sweep."""
    from lrensemble.tuning import grid_points, load_tune_config

    cfg = load_tune_config(config)
    if cfg.search.method != "grid":
        raise ParameterError(
            f"{config}: a {cfg.search.method} search draws its policies during the sweep, so "
            "they are known only afterwards; plot them with --pool SWEEP_DIR/pool."
        )
    policies = list(grid_points(cfg.search).values())
    return policies, f"{config.name}: {len(policies)} policies", float(cfg.train.epochs)


def _pool_policies(pool: Path) -> tuple[list[Policy], str, float | None]:
    """The distinct policies recorded by a pool's members, its title, and the members' epochs
    (the longest, when they differ)."""
    from lrensemble.pool import Pool
    from lrensemble.schedules import from_spec

    p = Pool.open(pool)
    records = [p.member(m) for m in p.member_ids(status=None)]
    policies: list[Policy] = []
    for record in (r for r in records if r.get("policy")):
        try:
            policies.append(from_spec(record["policy"]))
        except LREnsembleError as exc:
            raise ParameterError(f"Member {record.get('id')} of {pool}: {exc}") from None
    policies = list(dict.fromkeys(policies))
    if not policies:
        raise ParameterError(
            f"The members of {pool} record no LR policy (e.g. imported predictions); "
            "nothing to plot."
        )
    epochs = [e for r in records if r.get("policy") and _epochs_ok(e := r.get("epochs"))]
    return policies, f"{pool}: {len(policies)} policies", max(epochs, default=None)


def _epochs_ok(value: object) -> bool:
    """Whether `value` is a number of epochs a curve can span: positive, finite, bounded."""
    from lrensemble.schedules.base import MAX_EPOCHS

    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and 0 < value <= MAX_EPOCHS  # type: ignore[operator]


@policies_app.command("plot")
def policies_plot(
    output: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path(
        "lr_policies.png"
    ),
    grid_name: Annotated[
        str | None, typer.Option("--grid", help="Named grid to draw (default table1).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Sweep config: draw its grid's policies.")
    ] = None,
    pool: Annotated[
        Path | None, typer.Option("--pool", help="Pool: draw its members' recorded policies.")
    ] = None,
    scale: Annotated[
        float | None, typer.Option(help="--grid: multiply every LR by this factor (default 1).")
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option(help="Total epochs T of the x-axis (default: the config's or members'; 200)."),
    ] = None,
) -> None:
    """Draw LR curves, one panel per policy (the paper's Figure 6): a named grid (--grid, the
    default), a sweep config's grid (--config) or the policies a pool's members used (--pool)."""
    from lrensemble.schedules import plot_policies
    from lrensemble.schedules.base import MAX_EPOCHS

    sources = (("--grid", grid_name), ("--config", config), ("--pool", pool))
    given = [name for name, value in sources if value is not None]
    if len(given) > 1:
        raise ParameterError(f"Give one of --grid, --config or --pool, not {' and '.join(given)}.")
    if scale is not None and (config or pool):
        raise ParameterError(
            "--scale applies to --grid only: a config has its own search.scale, a pool its LRs."
        )
    if epochs is not None and not _epochs_ok(epochs):
        raise ParameterError(
            f"--epochs must be positive, finite and at most {MAX_EPOCHS:,}, got {epochs:g}."
        )
    default_epochs: float | None = 200.0
    if config is not None:
        policies, title, default_epochs = _config_policies(config)
    elif pool is not None:
        policies, title, default_epochs = _pool_policies(pool)
    else:
        policies, title = _grid_policies(grid_name or "table1", scale)
    total = epochs or default_epochs or 200.0
    path = plot_policies(policies, output, epochs=total, title=f"{title}, T = {total:g} epochs")
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
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", help="Your file(s) instead of a name, as for lrens run (e.g. train=a.csv)."
        ),
    ] = None,
) -> None:
    """Load a dataset once (generating and caching MNIST-1D), or check your own files, and
    print its split sizes, classes, input shape and normalization."""
    from lrensemble.data import load_dataset

    if data:
        from lrensemble.data.files import data_table

        table = data_table(data)
        ds = load_dataset(table["name"], **{k: v for k, v in table.items() if k != "name"})
    else:
        ds = load_dataset(name, **({"root": root} if root else {}))
    typer.echo(f"{ds.name}: {ds.sizes()} · {ds.num_classes} classes · inputs {ds.input_shape}")
    label = ds.info.get("label_column")
    if label is not None:
        typer.echo(f"label column: {label}")
    classes = ds.info.get("classes")
    if classes:
        typer.echo(f"classes: {', '.join(map(str, classes))}")
    norm = ds.info.get("normalization")
    if norm:
        typer.echo(f"normalization: {norm['per']} (scale {norm['scale']:g}), fitted on train")
