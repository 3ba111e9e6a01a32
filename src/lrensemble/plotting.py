"""Saving matplotlib figures: a supported format, a writable place, and an atomic write under a
unique temporary name (two processes drawing the same figure never collide)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from lrensemble.atomic import file_in_the_way
from lrensemble.errors import DataError

FORMATS = (".png", ".pdf", ".svg")


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_figure_path(path: str | os.PathLike[str]) -> Path:
    """`path` if a figure can be written there: a supported suffix and a directory (made if
    missing) that is not a file; else one `DataError` sentence."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise DataError(
            f"Cannot draw a figure to {path}: use a name ending in {', '.join(FORMATS)}."
        )
    if path.is_dir():
        raise DataError(f"Cannot draw a figure to {path}: it is a directory.")
    blocking = file_in_the_way(path.parent)
    if blocking is not None:
        raise DataError(f"Cannot draw a figure to {path}: {blocking} is a file.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"Cannot draw a figure to {path}: its folder cannot be created ({exc.strerror})."
        ) from None
    return path


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Save and close `fig`: written to a unique temporary name beside `path`, then renamed."""
    path = check_figure_path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        pyplot().close(fig)
        raise DataError(f"Cannot write a figure to {path} ({exc.strerror}).") from None
    os.close(fd)
    tmp = Path(name)
    try:
        fig.tight_layout()
        fig.savefig(tmp, dpi=dpi, format=path.suffix[1:].lower())
        os.replace(tmp, path)
    except OSError as exc:
        raise DataError(f"Cannot write a figure to {path} ({exc.strerror}).") from None
    finally:
        pyplot().close(fig)
        tmp.unlink(missing_ok=True)
    return path
