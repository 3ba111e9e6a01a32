"""The dataset registry: `load_dataset(name, **params)` and `list_datasets()`."""

from __future__ import annotations

from typing import Any

from lrensemble.data.base import Dataset
from lrensemble.registry import Registry

DATASETS: Registry[Dataset] = Registry("dataset")
register_dataset = DATASETS.register


def load_dataset(name: str, **params: Any) -> Dataset:
    """Load a registered dataset, e.g. `load_dataset("mnist1d", val_fraction=0.1)`."""
    return DATASETS.create(name, **params)


def list_datasets() -> list[str]:
    return DATASETS.names()
