"""A small pool of really trained members for export tests: synthetic waves of three
frequencies, recorded with their input normalization and class names, and four members of
three architectures (two 1-D CNNs of 8 channels, one of 16, an MLP) trained for two epochs."""

from __future__ import annotations

import numpy as np
import pytest

from lrensemble.data import from_arrays, load_dataset
from lrensemble.data.normalize import Normalization
from lrensemble.pool import Pool
from lrensemble.train import TrainConfig, build_model, train_member
from lrensemble.train.batched import predict_proba_many

CLASSES = ["slow", "medium", "fast"]
MEMBERS = {  # id: (model spec, seed, max_lr)
    "c8a": ({"name": "cnn1d", "channels": 8}, 0, 0.05),
    "c8b": ({"name": "cnn1d", "channels": 8}, 1, 0.1),
    "c16": ({"name": "cnn1d", "channels": 16}, 2, 0.05),
    "mlp": ({"name": "mlp", "hidden": [32]}, 3, 0.05),
}


def raw_waves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine waves (N, 1, 40) far from zero mean and unit scale, labels by frequency."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = np.linspace(0.0, 1.0, 40)
    x = np.sin(2 * np.pi * (y[:, None] + 1) * t[None]) + 2.0 * rng.normal(size=(n, 40))
    return (50.0 + 20.0 * x)[:, None, :].astype(np.float32), y


@pytest.fixture(scope="session")
def trained_pool(tmp_path_factory):
    """(pool directory, dataset, raw test inputs, normalization)."""
    tmp = tmp_path_factory.mktemp("export-pool")
    (xtr, ytr), (xva, yva), (xte, yte) = raw_waves(600, 0), raw_waves(300, 1), raw_waves(200, 2)
    norm = Normalization.fit(xtr, per="channel")
    ds = from_arrays(
        norm.apply(xtr),
        ytr,
        norm.apply(xte),
        yte,
        norm.apply(xva),
        yva,
        num_classes=3,
        name="waves",
    )
    ds.info.update(normalization=norm.to_dict(), classes=CLASSES)
    pool = Pool.create(
        tmp / "pool", {"val": ds.y_val.numpy(), "test": ds.y_test.numpy()}, 3, ds.describe()
    )
    for member_id, (spec, seed, lr) in MEMBERS.items():
        params = {k: v for k, v in spec.items() if k != "name"}
        model = build_model(spec["name"], ds, seed, **params)
        config = TrainConfig(epochs=2, batch_size=32, seed=seed, device="cpu", checkpoint_every=0)
        result = train_member(
            model,
            ds,
            {"name": "constant", "max_lr": lr},
            config,
            out_dir=tmp / "runs" / member_id,
            model_spec=spec,
            progress=False,
        )
        probs = {
            s: predict_proba_many([model], ds.split(s)[0], device="cpu")[0].numpy()
            for s in ("val", "test")
        }
        pool.add_member(
            member_id,
            probs,
            {**result.record, "method": "test"},
            weights=tmp / "runs" / member_id / "model.safetensors",
        )
    return tmp / "pool", ds, xte, norm


CSV_FEATURES = ["f0", "f1", "f2", "f3", "f4", "f5"]
CSV_HEADER = ["f0", "f1", "class", "f2", "f3", "f4", "f5"]  # the label column in the middle


def write_rows(path, header, rows) -> None:
    lines = [",".join(header)] if header else []
    path.write_text("\n".join(lines + [",".join(map(str, r)) for r in rows]) + "\n")


def csv_rows(n: int, seed: int) -> list[list]:
    """Rows of CSV_HEADER: six features far from zero mean, a class name in column 2."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = 10.0 + 5.0 * rng.normal(size=(n, 6)) + 3.0 * y[:, None]
    names = np.array(CLASSES)[y]
    return [[*map(float, x[i, :2]), names[i], *map(float, x[i, 2:])] for i in range(n)]


@pytest.fixture(scope="session")
def csv_pool(tmp_path_factory):
    """(pool directory, dataset, test.csv path): one MLP trained one epoch on a CSV dataset
    with a header, string labels and the label column between features."""
    tmp = tmp_path_factory.mktemp("csv-pool")
    write_rows(tmp / "train.csv", CSV_HEADER, csv_rows(120, 0))
    write_rows(tmp / "test.csv", CSV_HEADER, csv_rows(30, 1))
    ds = load_dataset("csv", train=str(tmp / "train.csv"), test=str(tmp / "test.csv"))
    pool = Pool.create(
        tmp / "pool", {"val": ds.y_val.numpy(), "test": ds.y_test.numpy()}, 3, ds.describe()
    )
    spec = {"name": "mlp", "hidden": [16]}
    model = build_model("mlp", ds, 0, hidden=[16])
    config = TrainConfig(epochs=1, batch_size=32, seed=0, device="cpu", checkpoint_every=0)
    result = train_member(
        model,
        ds,
        {"name": "constant", "max_lr": 0.05},
        config,
        out_dir=tmp / "runs" / "m",
        model_spec=spec,
        progress=False,
    )
    probs = {
        s: predict_proba_many([model], ds.split(s)[0], device="cpu")[0].numpy()
        for s in ("val", "test")
    }
    pool.add_member(
        "m",
        probs,
        {**result.record, "method": "test"},
        weights=tmp / "runs" / "m" / "model.safetensors",
    )
    return tmp / "pool", ds, tmp / "test.csv"
