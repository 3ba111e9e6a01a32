"""The typer applications of `lrens` and shared output helpers."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from lrensemble import __version__


class Interrupted(Exception):
    """Ctrl-C inside a command. typer turns a `KeyboardInterrupt` into a silent exit 130, so the
    root group passes it on as this instead and `main` says how to resume."""


class _RootGroup(TyperGroup):
    """The `lrens` group: a `KeyboardInterrupt` in any command leaves it as `Interrupted`."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise Interrupted() from exc


app = typer.Typer(
    name="lrens",
    cls=_RootGroup,
    help="Deep ensembles from learning-rate and hyperparameter exploration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
policies_app = typer.Typer(
    help="LR policies: list them, show grids, plot curves.", no_args_is_help=True
)
models_app = typer.Typer(help="Registered models.", no_args_is_help=True)
data_app = typer.Typer(
    help="Datasets: list the registered ones, check yours.", no_args_is_help=True
)
pool_app = typer.Typer(
    help="Model pools: import predictions, merge pools, show members.", no_args_is_help=True
)
app.add_typer(policies_app, name="policies")
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(pool_app, name="pool")

out = Console(soft_wrap=True)

# Options shared by several commands.
EpochsOption = Annotated[int | None, typer.Option("--epochs", help="Override train.epochs.")]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Override train.seed.")]
DeviceOption = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:N.")]
ProgressOption = Annotated[
    bool | None, typer.Option("--progress/--no-progress", help="Progress bars.")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON.")
]  # long paths stay on one line; tables still fit the terminal


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


def params_text(params: dict[str, Any]) -> str:
    parts = []
    for name, default in params.items():
        if default is inspect.Parameter.empty:
            parts.append(name)
        else:
            shown = list(default) if isinstance(default, tuple) else default
            parts.append(f"{name}={shown}")
    return ", ".join(parts)


def first_line(obj: Any) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")


def registry_table(registry: Any, column: str, skip: tuple[str, ...] = ()) -> Table:
    """One row per registered entry: name, keyword parameters with defaults, first doc line."""
    table = Table(column, "parameters", "description")
    for name in registry.names():
        params = {k: v for k, v in registry.parameters(name).items() if k not in skip}
        table.add_row(name, params_text(params), first_line(registry.get(name)))
    return table
