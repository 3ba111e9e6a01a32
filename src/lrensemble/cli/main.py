"""`lrens`: the command line. It parses, validates and calls library functions; errors a user
can cause print one sentence and exit with status 2."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.text import Text

from lrensemble.cli import (  # noqa: F401  (registers the commands)
    ensemble_commands,
    listing_commands,
    report_commands,
    train_commands,
    tune_commands,
)
from lrensemble.cli.app import app
from lrensemble.errors import LREnsembleError


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
