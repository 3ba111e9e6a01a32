"""Where lrensemble keeps generated data: `$LRENS_CACHE`, else `~/.cache/lrensemble`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache directory (created on first use)."""
    root = os.environ.get("LRENS_CACHE") or Path.home() / ".cache" / "lrensemble"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Where datasets read from local files are looked for by default: `$LRENS_DATA`, else
    `./data`."""
    return Path(os.environ.get("LRENS_DATA") or "data")
