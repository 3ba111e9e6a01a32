"""Shared fixtures: a private cache directory (MNIST-1D is generated once per test session)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("lrens-cache")
    old = os.environ.get("LRENS_CACHE")
    os.environ["LRENS_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("LRENS_CACHE", None)
    else:
        os.environ["LRENS_CACHE"] = old


@pytest.fixture(scope="session")
def mnist1d():
    from lrensemble.data import load_dataset

    return load_dataset("mnist1d")
