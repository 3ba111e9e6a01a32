"""`lrens`: the command line. It parses, validates and calls library functions; errors a user
can cause print one sentence and exit with status 2."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lrensemble import __version__
from lrensemble.errors import LREnsembleError

app = typer.Typer(
    name="lrens",
    help="Deep ensembles from learning-rate and hyperparameter exploration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
policies_app = typer.Typer(
    help="LR policies: list them, show grids, plot curves.", no_args_is_help=True
)
models_app = typer.Typer(help="Registered models.", no_args_is_help=True)
data_app = typer.Typer(help="Registered datasets.", no_args_is_help=True)
app.add_typer(policies_app, name="policies")
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")

out = Console()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lrens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Deep ensembles from learning-rate and hyperparameter exploration."""


def _params_text(params: dict[str, Any]) -> str:
    parts = []
    for name, default in params.items():
        if default is inspect.Parameter.empty:
            parts.append(name)
        else:
            shown = list(default) if isinstance(default, tuple) else default
            parts.append(f"{name}={shown}")
    return ", ".join(parts)


def _first_line(obj: Any) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")


def _registry_table(registry: Any, column: str, skip: tuple[str, ...] = ()) -> Table:
    """One row per registered entry: name, keyword parameters with defaults, first doc line."""
    table = Table(column, "parameters", "description")
    for name in registry.names():
        params = {k: v for k, v in registry.parameters(name).items() if k not in skip}
        table.add_row(name, _params_text(params), _first_line(registry.get(name)))
    return table


@policies_app.command("list")
def policies_list() -> None:
    """List every LR policy with its parameters and defaults."""
    from lrensemble.schedules import POLICIES

    out.print(_registry_table(POLICIES, "policy"))


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
        table.add_row(str(i), p.name, _params_text(p.params))
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

    table = _registry_table(MODELS, "model", skip=("num_classes",))
    table.add_row("timm/<name>", "timm's", "Any timm model, when timm is installed.")
    out.print(table)


@data_app.command("list")
def data_list() -> None:
    """List the registered datasets and their parameters."""
    from lrensemble.data import DATASETS

    out.print(_registry_table(DATASETS, "dataset"))


@data_app.command("prepare")
def data_prepare(
    name: Annotated[str, typer.Argument(help="Dataset name.")] = "mnist1d",
    root: Annotated[str | None, typer.Option(help="Folder with the dataset's files.")] = None,
) -> None:
    """Load a dataset once (generating and caching MNIST-1D) and print its split sizes."""
    from lrensemble.data import load_dataset

    ds = load_dataset(name, **({"root": root} if root else {}))
    typer.echo(f"{ds.name}: {ds.sizes()} · {ds.num_classes} classes · inputs {ds.input_shape}")


@app.command("train")
def train(
    config: Annotated[
        Path | None, typer.Argument(help="TOML run config (default: MNIST-1D, 1-D CNN, onecycle).")
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output directory.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Override train.epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override train.seed.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N.")] = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bars.")
    ] = None,
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of `lrens` and `python -m lrensemble`."""
    try:
        app(args=argv, prog_name="lrens")
    except LREnsembleError as exc:
        message = Text.assemble(("error: ", "bold red"), str(exc))
        Console(stderr=True).print(message, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; rerun the same command to resume.")
        sys.exit(130)
