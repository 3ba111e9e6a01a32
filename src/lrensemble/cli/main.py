"""`lrens`: the command line. It parses, validates and calls library functions; errors a user
can cause print one sentence and exit with status 2."""

from __future__ import annotations

import importlib
import sys

from rich.console import Console
from rich.text import Text

from lrensemble.cli.app import app
from lrensemble.errors import LREnsembleError

# Importing a command module registers its commands; this order is the order of `lrens --help`.
COMMAND_MODULES = ("report", "tune", "train", "ensemble", "export", "listing")
for _name in COMMAND_MODULES:
    importlib.import_module(f"lrensemble.cli.{_name}_commands")


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
