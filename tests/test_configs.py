"""Every config shipped in configs/ is valid for the command its comments name."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from lrensemble.methods.hdet import load_hdet_config
from lrensemble.methods.pat import load_pat_config
from lrensemble.methods.snapshot import load_snapshot_config
from lrensemble.pipeline import load_run_config
from lrensemble.train.run import load_run

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_loads(path):
    tables = tomllib.loads(path.read_text(encoding="utf-8"))
    if "snapshot" in tables:
        assert load_snapshot_config(path).snapshot.member_count() >= 1
    elif "pat" in tables:
        assert load_pat_config(path).pat.budget() >= 1
    elif "hdet" in tables:
        assert load_hdet_config(path).hdet.replicas >= 1
    elif "search" in tables:
        assert load_run_config(path).sweep.search.method in ("grid", "random", "tpe")
    else:
        assert load_run(path).build_policy() is not None


def test_there_are_configs():
    assert len(CONFIGS) >= 5
