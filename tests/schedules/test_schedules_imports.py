"""The policies load without torch or matplotlib; `PolicyScheduler` brings torch on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(code: str) -> str:
    """Run `code` in a fresh interpreter; its stdout (it must exit normally)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "module",
    [
        "lrensemble.schedules",
        "lrensemble.schedules.base",
        "lrensemble.schedules.policies",
        "lrensemble.schedules.grids",
        "lrensemble.schedules.plot",
    ],
)
def test_importing_the_policies_imports_neither_torch_nor_matplotlib(module):
    loaded = run(
        f"import sys, {module}\n"
        "from lrensemble import schedules\n"
        "schedules.grid('table1')[0](3, 10)\n"
        "print(sorted({'torch', 'matplotlib'} & set(sys.modules)))\n"
    )
    assert loaded.strip() == "[]"


def test_policy_scheduler_still_imports_from_the_package():
    facts = run(
        "import sys\n"
        "from lrensemble.schedules import PolicyScheduler\n"
        "from lrensemble import schedules\n"
        "print(schedules.PolicyScheduler is PolicyScheduler, 'PolicyScheduler' in dir(schedules),"
        " 'torch' in sys.modules)\n"
    )
    assert facts.split() == ["True", "True", "True"]


def test_an_unknown_name_is_an_attribute_error():
    from lrensemble import schedules

    with pytest.raises(AttributeError, match="no_such_thing"):
        schedules.no_such_thing  # noqa: B018
