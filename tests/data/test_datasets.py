"""MNIST-1D, a user's arrays and CIFAR from local files (small fake archives in both formats)."""

from __future__ import annotations

import io
import pickle
import random
import tarfile

import numpy as np
import pytest
import torch

from lrensemble.data import from_arrays, list_datasets, load_dataset
from lrensemble.errors import DataError, ParameterError, UnknownNameError


def test_registry_lists_the_datasets():
    assert list_datasets() == ["cifar10", "cifar100", "csv", "image_folder", "mnist1d", "npz"]
    with pytest.raises(UnknownNameError, match="Unknown dataset 'mnist'"):
        load_dataset("mnist")


def test_mnist1d_standard_split_with_validation_carved_from_train(mnist1d):
    assert mnist1d.sizes() == {"train": 3600, "val": 400, "test": 1000}
    assert mnist1d.input_shape == (1, 40)
    assert mnist1d.num_classes == 10
    assert set(mnist1d.y_train.unique().tolist()) == set(range(10))
    train_rows = {tuple(r) for r in mnist1d.x_train[:, 0].numpy().round(5).tolist()}
    assert not any(tuple(r) in train_rows for r in mnist1d.x_val[:, 0].numpy().round(5).tolist())


def test_mnist1d_split_is_seeded(mnist1d):
    again = load_dataset("mnist1d")
    assert torch.equal(again.x_val, mnist1d.x_val)
    other = load_dataset("mnist1d", seed=1, val_fraction=0.2)
    assert other.sizes()["val"] == 800
    assert not torch.equal(other.x_val[:400], mnist1d.x_val)


def test_mnist1d_generation_leaves_global_rng_alone_and_survives_a_bad_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LRENS_CACHE", str(tmp_path))
    (tmp_path / "mnist1d-v1.npz").write_bytes(b"PK\x03\x04 truncated")
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(123)
    random.seed(123)
    ds = load_dataset("mnist1d")
    assert ds.sizes()["test"] == 1000
    assert np.random.rand() == expected_np and random.random() == expected_py
    assert (tmp_path / "mnist1d-v1.npz").stat().st_size > 100_000


def test_mnist1d_source_tasks_are_other_datasets_with_their_own_identity(mnist1d):
    source = load_dataset("mnist1d", samples=1000, generator_seed=7)
    assert source.sizes() == {"train": 720, "val": 80, "test": 200}
    assert source.info["samples"] == 1000 and source.info["generator_seed"] == 7
    assert "samples" not in mnist1d.info  # the standard dataset keeps its identity
    other = load_dataset("mnist1d", samples=1000, generator_seed=8)
    assert not torch.equal(source.x_test, other.x_test)
    assert source.describe() != other.describe()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"samples": 10}, "samples must be"), ({"generator_seed": -1}, "generator_seed must")],
)
def test_mnist1d_generator_parameters_are_checked(kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        load_dataset("mnist1d", **kwargs)


def test_from_arrays_accepts_numpy_and_torch():
    x = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    y = np.arange(50) % 4
    ds = from_arrays(torch.from_numpy(x), torch.from_numpy(y), x[:10], y[:10], val_fraction=0.2)
    assert ds.sizes() == {"train": 40, "val": 10, "test": 10}
    assert ds.num_classes == 4 and not ds.image
    ds = from_arrays(x, y, x[:10], y[:10], x[:5], y[:5], num_classes=6)
    assert ds.sizes()["val"] == 5 and ds.num_classes == 6


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(y_train=np.arange(9)), "has 9 labels but its inputs have 10 rows"),
        (dict(y_train=np.full(10, 7)), "Labels must lie in [0, 3)"),
        (dict(y_train=np.full(10, -1)), "Labels must lie in"),
        (dict(y_train=np.full(10, 0.5)), "integer class indices"),
        (dict(x_train=np.full((10, 2), np.nan)), "NaN"),
        (dict(x_test=np.zeros((4, 5))), "sample shape (5,)"),
        (dict(x_val=np.zeros((2, 2))), "both x_val and y_val"),
    ],
)
def test_from_arrays_errors(kwargs, fragment):
    args = dict(
        x_train=np.zeros((10, 2)),
        y_train=np.arange(10) % 3,
        x_test=np.zeros((4, 2)),
        y_test=np.arange(4) % 3,
        num_classes=3,
    )
    args.update(kwargs)
    with pytest.raises(DataError) as info:
        from_arrays(**args)
    assert fragment in str(info.value)


def test_bad_val_fraction():
    with pytest.raises(ParameterError):
        from_arrays(np.zeros((10, 2)), np.zeros(10), np.zeros((2, 2)), np.zeros(2), val_fraction=1)


# --- CIFAR from local files ----------------------------------------------------------------------


def fake_batch(n, classes, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, classes, n)


def write_binary(folder, names, classes, label_bytes, n=6):
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        data, labels = fake_batch(n, classes, i)
        rows = [
            bytes([0] * (label_bytes - 1) + [lab]) + row.tobytes()
            for row, lab in zip(data, labels, strict=True)
        ]
        (folder / name).write_bytes(b"".join(rows))


def python_blob(n, classes, seed, key):
    data, labels = fake_batch(n, classes, seed)
    return pickle.dumps({b"data": data, key: labels.tolist()}, protocol=2)


def test_cifar10_binary_folder(tmp_path):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    write_binary(tmp_path / "cifar-10-batches-bin", names, 10, 1)
    ds = load_dataset("cifar10", root=str(tmp_path), val_fraction=0.1)
    assert ds.sizes() == {"train": 27, "val": 3, "test": 6}
    assert ds.input_shape == (3, 32, 32) and ds.image and ds.num_classes == 10
    data, labels = fake_batch(6, 10, 5)
    assert ds.y_test.tolist() == labels.tolist()
    # normalized per channel: pixel 0 of channel 0 of the first test image
    expected = (data[0, 0] / 255.0 - 0.4914) / 0.2470
    assert float(ds.x_test[0, 0, 0, 0]) == pytest.approx(expected, rel=1e-5)


def test_cifar100_python_archive(tmp_path):
    with tarfile.open(tmp_path / "cifar-100-python.tar.gz", "w:gz") as tar:
        for i, name in enumerate(["train", "test"]):
            blob = python_blob(8, 100, i, b"fine_labels")
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    ds = load_dataset("cifar100", root=str(tmp_path), val_fraction=0.25)
    assert ds.sizes() == {"train": 6, "val": 2, "test": 8}
    assert ds.y_test.tolist() == fake_batch(8, 100, 1)[1].tolist()


def test_cifar_missing_names_what_to_provide(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", root=str(tmp_path))
    msg = str(info.value)
    assert "cifar-10-binary.tar.gz" in msg and "cifar-10-python.tar.gz" in msg and "\n" not in msg


def test_cifar_truncated_binary_batch(tmp_path):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    write_binary(tmp_path / "cifar-10-batches-bin", names, 10, 1)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_dataset("cifar10", root=str(tmp_path))


def test_cifar_pickle_that_would_run_code_is_refused(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "train").write_bytes(pickle.dumps({b"data": Evil()}))
    (folder / "test").write_bytes(python_blob(2, 100, 0, b"fine_labels"))
    with pytest.raises(DataError, match="not a readable CIFAR python batch"):
        load_dataset("cifar100", root=str(tmp_path))
