"""`lrens`: the command line. It parses, validates and calls library functions; errors a user
can cause print one sentence and exit with status 2."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.text import Text
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from lrensemble.cli.app import Interrupted, app
from lrensemble.errors import LREnsembleError

# Importing a command module registers its commands; this order is the order of `lrens --help`.
COMMAND_MODULES = ("report", "tune", "train", "method", "ensemble", "export", "listing")
for _name in COMMAND_MODULES:
    importlib.import_module(f"lrensemble.cli.{_name}_commands")

INTERRUPTED = "interrupted; rerun the same command to resume."


def _error(message: str) -> None:
    """`error: ` and one sentence on stderr, on one line."""
    text = Text.assemble(("error: ", "bold red"), " ".join(message.split()))
    Console(stderr=True).print(text, highlight=False, soft_wrap=True)


def _usage_sentence(exc: ClickException) -> str:
    """A usage error (unknown option, bad or missing value) as one sentence with a hint."""
    message = exc.format_message().strip().rstrip(".")
    ctx = getattr(exc, "ctx", None)
    return f"{message}; see '{ctx.command_path} --help'." if ctx else f"{message}."


def main(argv: list[str] | None = None) -> None:
    """Entry point of `lrens` and `python -m lrensemble`."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="lrens", standalone_mode=False)
    except LREnsembleError as exc:
        _error(str(exc))
        sys.exit(2)
    except (Interrupted, KeyboardInterrupt):
        Console(stderr=True).print(INTERRUPTED, highlight=False)
        sys.exit(130)
    except NoArgsIsHelpError:  # the help is already printed
        sys.exit(2)
    except UsageError as exc:
        _error(_usage_sentence(exc))
        sys.exit(exc.exit_code)
    except ClickException as exc:
        _error(exc.format_message())
        sys.exit(exc.exit_code)
    except typer.Abort:  # end of input at a prompt
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
