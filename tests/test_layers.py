"""The package's layers (docs/architecture.md): no import edge from a lower layer to a higher
one, and the numpy-only packages import no torch when they load."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "lrensemble"
# shared by every layer: errors, config and file helpers, registries, array checks
CORE = {
    "__init__",
    "arrays",
    "atomic",
    "config",
    "device",
    "errors",
    "paths",
    "plotting",
    "progress",
    "registry",
}
PRODUCERS = {"schedules", "data", "models", "train", "pool", "filing", "ensemble"}
ALLOWED = {
    "schedules": set(),
    "data": set(),
    "models": set(),
    "pool": set(),
    "ensemble": set(),
    "train": {"schedules", "data", "models"},
    "filing": {"schedules", "data", "models", "train", "pool"},
    "tuning": PRODUCERS,
    "methods": PRODUCERS,
    "report": {"pool", "ensemble", "schedules"},
    "export": {"data", "models", "train", "pool", "ensemble"},
    "pipeline": PRODUCERS | {"tuning", "methods", "report", "export"},
}


def unit_of(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return rel.parts[0]


def imported_units(path: Path) -> set[str]:
    """The lrensemble units a module imports, at any depth (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: a relative import; import lrensemble.… by name")
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "lrensemble":
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_higher_layer(path):
    unit = unit_of(path)
    if unit in ("cli", "__main__"):
        return  # the command line may use everything
    allowed = CORE | ALLOWED.get(unit, set()) | {unit}
    if unit in CORE:
        allowed = CORE
    assert imported_units(path) <= allowed, (
        f"{path.relative_to(ROOT)} imports {sorted(imported_units(path) - allowed)}"
    )


def test_every_package_has_a_layer():
    units = {unit_of(p) for p in MODULES} - {"cli", "__main__"}
    assert units <= CORE | set(ALLOWED)


@pytest.mark.parametrize(
    "module", ["lrensemble.pool", "lrensemble.ensemble", "lrensemble.schedules"]
)
def test_numpy_level_packages_load_without_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
