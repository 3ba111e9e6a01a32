"""The Python examples of the README run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code):
    """Each block runs to its end (its own asserts check what it shows)."""
    namespace: dict = {}
    exec(compile(code + "\n__reached_the_end__ = True\n", str(README), "exec"), namespace)
    assert namespace["__reached_the_end__"]


def test_readme_has_examples():
    assert len(BLOCKS) >= 3


def test_readme_links_point_to_files_in_the_repository():
    """Relative links resolve inside the checkout (a newcomer has nothing else)."""
    root = README.parent
    links = re.findall(r"\]\(([^)#\s]+)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert local  # the docs pages, at least
    for link in local:
        target = (root / link).resolve()
        assert target.is_relative_to(root) and target.exists(), link
    assert "../shared" not in README.read_text(encoding="utf-8")
