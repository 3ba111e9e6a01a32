"""`Normalization`: fit on training inputs, apply to numpy or torch, record and restore; the
transforms recorded by the CIFAR and MNIST-1D loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lrensemble.data import Normalization, load_dataset
from lrensemble.data import mnist1d as mnist1d_module
from lrensemble.data import normalize as normalize_module
from lrensemble.errors import DataError, ParameterError

RNG = np.random.default_rng(0)


def test_channel_statistics_of_images_and_signals():
    x = RNG.integers(0, 256, (40, 3, 5, 4)).astype(np.uint8)
    norm = Normalization.fit(x, "channel", scale=1 / 255)
    assert norm.per == "channel" and norm.sample_shape == (3, 5, 4)
    np.testing.assert_allclose(norm.mean, x.mean(axis=(0, 2, 3)) / 255)
    np.testing.assert_allclose(norm.std, x.std(axis=(0, 2, 3)) / 255)
    z = norm.apply(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-5)
    signal = RNG.normal(3, 2, (30, 2, 16))
    s = Normalization.fit(signal)
    assert len(s.mean) == 2
    np.testing.assert_allclose(s.apply(signal).mean(axis=(0, 2)), 0, atol=1e-5)


def test_feature_statistics_and_channel_on_tables():
    x = RNG.normal(5, 3, (50, 6))
    x[:, 2] = 7.0  # constant: std 1, maps to 0
    for per in ("channel", "feature"):
        norm = Normalization.fit(x, per)
        assert norm.per == "feature" and norm.std[2] == 1.0
        z = norm.apply(x)
        np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
        assert np.all(z[:, 2] == 0)
    grid = RNG.normal(size=(20, 2, 3))
    feat = Normalization.fit(grid, "feature")
    assert len(feat.mean) == 6
    np.testing.assert_allclose(feat.apply(grid).std(0), 1, atol=1e-5)


def test_none_only_scales():
    x = RNG.integers(0, 256, (5, 1, 4, 4))
    norm = Normalization.fit(x, "none", scale=1 / 255)
    assert norm.mean == () and norm.std == ()
    np.testing.assert_allclose(norm.apply(x), x / 255, rtol=1e-6)


@pytest.mark.parametrize("per", ["channel", "feature", "none"])
def test_torch_and_numpy_inputs_agree_exactly(per):
    x = RNG.normal(2, 4, (25, 3, 6)).astype(np.float32)
    norm = Normalization.fit(torch.from_numpy(x), per, scale=0.5)
    assert norm == Normalization.fit(x, per, scale=0.5)
    out = norm.apply(torch.from_numpy(x))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert np.array_equal(out.numpy(), norm.apply(x))
    assert np.array_equal(norm.apply(x.astype(np.float64)), norm.apply(x))


def test_chunked_fit_matches_the_direct_computation(monkeypatch):
    x = RNG.normal(1e3, 2, (37, 3, 5))
    monkeypatch.setattr(normalize_module, "_CHUNK_VALUES", 16)  # 1 sample per chunk
    norm = Normalization.fit(x)
    np.testing.assert_allclose(norm.mean, x.mean(axis=(0, 2)), rtol=1e-12)
    np.testing.assert_allclose(norm.std, x.std(axis=(0, 2)), rtol=1e-9)


def test_to_dict_round_trip_through_json():
    norm = Normalization.fit(RNG.normal(size=(10, 2, 3, 3)), scale=2.0)
    d = json.loads(json.dumps(norm.to_dict()))
    assert Normalization.from_dict(d) == norm
    assert Normalization.from_dict(Normalization.fit(np.ones((3, 2)), "none").to_dict()).per == (
        "none"
    )
    for broken in ({"per": "channel"}, {**d, "mean": [0.0]}, {**d, "per": "pixel"}):
        with pytest.raises(DataError, match="recorded normalization is malformed"):
            Normalization.from_dict(broken)


def test_errors():
    norm = Normalization.fit(RNG.normal(size=(10, 3, 4)))
    with pytest.raises(DataError, match=r"sample shape \(4, 3\); .* fitted on \(3, 4\)"):
        norm.apply(np.zeros((2, 4, 3)))
    with pytest.raises(DataError, match="sample shape"):
        norm.apply(torch.zeros(2, 3, 5))
    with pytest.raises(DataError, match="sample shape"):
        Normalization.fit(np.ones((4, 3)), "none").apply(np.ones((4, 2)))
    with pytest.raises(ParameterError, match="normalize must be"):
        Normalization.fit(np.ones((4, 3)), "pixel")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="Cannot fit"):
        Normalization.fit(np.ones(4))
    with pytest.raises(DataError, match="Cannot fit"):
        Normalization.fit(np.ones((0, 4)))
    with pytest.raises(ParameterError, match="cannot have 2 means"):
        Normalization("channel", 1.0, (0.0, 0.0), (1.0, 1.0), (3, 8))


def test_cifar_records_the_transform_it_applies(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(1)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        records = np.concatenate(
            [rng.integers(0, 10, (4, 1)), rng.integers(0, 256, (4, 3072))], axis=1
        )
        (folder / name).write_bytes(records.astype(np.uint8).tobytes())
    ds = load_dataset("cifar10", root=str(tmp_path))
    rec = ds.info["normalization"]
    assert rec["per"] == "channel" and rec["scale"] == pytest.approx(1 / 255)
    assert rec["mean"] == [0.4914, 0.4822, 0.4465] and rec["sample_shape"] == [3, 32, 32]
    raw = records[:, 1:].astype(np.uint8).reshape(-1, 3, 32, 32)  # the test batch, written last
    restored = Normalization.from_dict(json.loads(json.dumps(rec)))
    assert np.array_equal(restored.apply(raw), ds.x_test.numpy())


def test_mnist1d_records_the_identity(monkeypatch):
    rng = np.random.default_rng(2)
    small = {
        "x": rng.normal(size=(50, 40)).astype(np.float32),
        "y": np.arange(50) % 10,
        "x_test": rng.normal(size=(10, 40)).astype(np.float32),
        "y_test": np.arange(10),
    }
    monkeypatch.setattr(mnist1d_module, "mnist1d_arrays", lambda *args: small)
    ds = load_dataset("mnist1d")
    norm = Normalization.from_dict(ds.info["normalization"])
    assert norm == Normalization("none", 1.0, (), (), (1, 40))
    assert np.array_equal(norm.apply(small["x_test"][:, None]), ds.x_test.numpy())
