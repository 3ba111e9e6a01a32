"""Corrupted test sets: every corruption keeps shape and range and is deterministic from its
seed, its effect grows with severity, severity 5 hurts a trained model more than severity 1,
and `corrupted_test_set` normalizes, caches and recovers from a damaged cache file."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lrensemble.data import from_arrays
from lrensemble.data.corruptions import (
    CORRUPTIONS,
    cache_path,
    corrupt,
    corrupted_test_set,
    list_corruptions,
)
from lrensemble.data.normalize import Normalization
from lrensemble.errors import DataError, LREnsembleError, ParameterError, UnknownNameError
from lrensemble.train import TrainConfig, build_model, train_member
from lrensemble.train.evaluate import predict_proba

RANDOM = {
    "image": {"gaussian_noise", "shot_noise", "impulse_noise", "motion_blur"},
    "signal": {"gaussian_noise", "impulse_noise", "dropout", "shift", "time_scale", "offset"},
}
CASES = [(kind, name) for kind, table in CORRUPTIONS.items() for name in table]


def random_images(n: int = 12, channels: int = 3, side: int = 32) -> np.ndarray:
    return np.random.default_rng(0).random((n, channels, side, side), dtype=np.float32)


@pytest.fixture(scope="module")
def signals(mnist1d):
    """MNIST-1D test signals as recorded (its normalization is the identity)."""
    return mnist1d.x_test.numpy()[:300]


def inputs(kind: str, signals: np.ndarray) -> np.ndarray:
    return random_images() if kind == "image" else signals


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_shape_dtype_range_and_determinism(kind, name, signals):
    x = inputs(kind, signals)
    lo, hi = (0.0, 1.0) if kind == "image" else (x.min(axis=(0, 2)), x.max(axis=(0, 2)))
    before = x.copy()
    for severity in (1, 5):
        y = corrupt(x, kind, name, severity, seed=0)
        assert y.shape == x.shape and y.dtype == np.float32
        assert np.isfinite(y).all()
        if kind == "image":
            assert y.min() >= lo and y.max() <= hi
        else:  # each channel stays within its range over the signals given
            assert (y.min(axis=(0, 2)) >= lo - 1e-6).all() and (
                y.max(axis=(0, 2)) <= hi + 1e-6
            ).all()
        np.testing.assert_array_equal(y, corrupt(x, kind, name, severity, seed=0))
        other = corrupt(x, kind, name, severity, seed=1)
        assert (not np.array_equal(y, other)) == (name in RANDOM[kind])
    np.testing.assert_array_equal(x, before)  # the input is never changed


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_the_effect_grows_with_severity(kind, name, signals):
    x = inputs(kind, signals)
    change = [float(np.abs(corrupt(x, kind, name, s) - x).mean()) for s in range(1, 6)]
    assert all(b >= a * 0.98 for a, b in itertools.pairwise(change)), change
    assert change[4] > change[0] > 0, change


def test_grayscale_and_small_images_are_corrupted_too():
    x = random_images(4, channels=1, side=8)
    for name in CORRUPTIONS["image"]:
        y = corrupt(x, "image", name, 5)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1


def test_which_corruptions_apply(mnist1d):
    images = from_arrays(random_images(8), np.arange(8) % 2, random_images(4), np.arange(4) % 2)
    table = from_arrays(np.ones((8, 5)), np.arange(8) % 2, np.ones((4, 5)), np.arange(4) % 2)
    assert list_corruptions(images) == list(CORRUPTIONS["image"])
    assert list_corruptions(mnist1d) == list(CORRUPTIONS["signal"])
    assert list_corruptions(table) == []
    with pytest.raises(ParameterError, match="apply to images"):
        corrupted_test_set(table, "gaussian_noise", 1)


@pytest.mark.parametrize(
    ("name", "severity", "error"),
    [
        ("fog", 1, UnknownNameError),
        ("contrast", 1, UnknownNameError),  # an image corruption, not a signal one
        ("shift", 0, ParameterError),
        ("shift", 6, ParameterError),
        ("shift", True, ParameterError),
        ("shift", 2.0, ParameterError),
    ],
)
def test_bad_names_and_severities_are_one_sentence(mnist1d, name, severity, error):
    with pytest.raises(error) as info:
        corrupted_test_set(mnist1d, name, severity, cache=False)
    message = str(info.value)
    assert isinstance(info.value, LREnsembleError) and message.count(". ") == 0


def cifar_like(n_train: int = 40, n_test: int = 10) -> tuple:
    """8-bit images normalized as CIFAR's loader does: scaled to [0, 1], then per channel."""
    rng = np.random.default_rng(1)
    xtr = rng.integers(0, 256, (n_train, 3, 16, 16)).astype(np.uint8)
    xte = rng.integers(0, 256, (n_test, 3, 16, 16)).astype(np.uint8)
    norm = Normalization("channel", 1 / 255, (0.5, 0.4, 0.3), (0.25, 0.2, 0.3), (3, 16, 16))
    ds = from_arrays(
        norm.apply(xtr), np.arange(n_train) % 2, norm.apply(xte), np.arange(n_test) % 2
    )
    ds.info["normalization"] = norm.to_dict()
    return ds, norm, xte


def test_images_are_corrupted_in_pixel_space_and_normalized_again(tmp_path, monkeypatch):
    monkeypatch.setenv("LRENS_CACHE", str(tmp_path))
    ds, norm, raw = cifar_like()
    x = corrupted_test_set(ds, "contrast", 5)
    assert isinstance(x, torch.Tensor) and x.shape == ds.x_test.shape and x.dtype == torch.float32
    pixels = norm.invert(x.numpy())  # back to 8-bit values
    np.testing.assert_allclose(pixels, np.rint(pixels), atol=1e-3)
    assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3
    expected = corrupt(raw.astype(np.float32) / 255, "image", "contrast", 5)
    np.testing.assert_allclose(pixels / 255, expected, atol=0.5 / 255 + 1e-5)
    np.testing.assert_allclose(norm.invert(ds.x_test.numpy()), raw, atol=1e-3)


def test_images_out_of_range_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LRENS_CACHE", str(tmp_path))
    x = random_images(6) * 1000
    ds = from_arrays(x, np.arange(6) % 2, x, np.arange(6) % 2)
    with pytest.raises(DataError, match=r"\[0, 1\] or \[0, 255\]"):
        corrupted_test_set(ds, "contrast", 1)


def test_cache_hit_is_identical_and_a_damaged_file_is_made_again(tmp_path, monkeypatch, mnist1d):
    monkeypatch.setenv("LRENS_CACHE", str(tmp_path))
    first = corrupted_test_set(mnist1d, "gaussian_noise", 3, seed=0)
    path = cache_path(mnist1d, "gaussian_noise", 3, 0)
    assert path.is_file() and path.parent.parent == tmp_path
    assert torch.equal(first, corrupted_test_set(mnist1d, "gaussian_noise", 3, seed=0))
    assert torch.equal(first, corrupted_test_set(mnist1d, "gaussian_noise", 3, cache=False))
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])  # truncated
    assert torch.equal(first, corrupted_test_set(mnist1d, "gaussian_noise", 3, seed=0))
    assert path.stat().st_size == size
    other = corrupted_test_set(mnist1d, "gaussian_noise", 3, seed=1)
    assert cache_path(mnist1d, "gaussian_noise", 3, 1) != path and not torch.equal(first, other)
    ds, _, _ = cifar_like()
    images = corrupted_test_set(ds, "jpeg_compression", 2)
    image_path = cache_path(ds, "jpeg_compression", 2, 0)
    image_path.write_bytes(b"not a zip")
    assert torch.equal(images, corrupted_test_set(ds, "jpeg_compression", 2))


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict_proba(model, x).argmax(1) == y).float().mean())


def train(dataset, name: str, epochs: int, lr: float, **params) -> torch.nn.Module:
    model = build_model(name, dataset, 0, **params)
    config = TrainConfig(
        epochs=epochs, batch_size=64, device="cpu", checkpoint_every=0, augment=False
    )
    train_member(model, dataset, {"name": "onecycle", "max_lr": lr}, config, progress=False)
    return model.eval()


def test_severity_5_hurts_a_trained_1d_cnn_more_than_severity_1(mnist1d):
    model = train(mnist1d, "cnn1d", 20, 0.1, channels=16)
    clean = accuracy(model, mnist1d.x_test, mnist1d.y_test)
    assert clean > 0.8
    drops = []
    for name in CORRUPTIONS["signal"]:
        mild = accuracy(model, corrupted_test_set(mnist1d, name, 1), mnist1d.y_test)
        harsh = accuracy(model, corrupted_test_set(mnist1d, name, 5), mnist1d.y_test)
        assert harsh < mild, name
        drops.append(mild - harsh)
    assert np.mean(drops) > 0.15


def textures(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8-bit RGB 16×16 textures whose class is their band of spatial frequencies."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    f = np.fft.fftfreq(16)
    radius = np.hypot(f[:, None], f[None, :])
    bands = [(0.04, 0.12), (0.12, 0.22), (0.22, 0.34), (0.34, 0.5)]
    masks = np.stack([(radius >= lo) & (radius < hi) for lo, hi in bands])
    tex = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((n, 16, 16))) * masks[y]))
    tex /= tex.std(axis=(1, 2), keepdims=True)
    x = 0.5 + 0.15 * tex[:, None] * rng.uniform(0.6, 1.0, (n, 3, 1, 1))
    return np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8), y


def test_severity_5_hurts_a_trained_image_model_more_than_severity_1(tmp_path, monkeypatch):
    monkeypatch.setenv("LRENS_CACHE", str(tmp_path))
    (xtr, ytr), (xte, yte) = textures(400, 0), textures(200, 1)
    norm = Normalization.fit(xtr, "channel", scale=1 / 255)
    ds = from_arrays(norm.apply(xtr), ytr, norm.apply(xte), yte, num_classes=4, name="textures")
    ds.info["normalization"] = norm.to_dict()
    model = train(ds, "lenet_s", 8, 0.05)
    assert accuracy(model, ds.x_test, ds.y_test) > 0.9
    mild, harsh = [], []
    for name in CORRUPTIONS["image"]:
        mild.append(accuracy(model, corrupted_test_set(ds, name, 1), ds.y_test))
        harsh.append(accuracy(model, corrupted_test_set(ds, name, 5), ds.y_test))
        assert harsh[-1] <= mild[-1], name
    assert np.mean(mild) - np.mean(harsh) > 0.15


@pytest.mark.parametrize("per", ["channel", "feature", "none"])
def test_invert_undoes_apply(per):
    x = np.random.default_rng(2).integers(0, 256, (20, 3, 4, 5)).astype(np.float32)
    norm = Normalization.fit(x, per, scale=1 / 255)
    z = norm.apply(x)
    np.testing.assert_allclose(norm.invert(z), x, rtol=1e-5, atol=1e-3)
    back = norm.invert(torch.from_numpy(z))
    assert isinstance(back, torch.Tensor)
    np.testing.assert_allclose(back.numpy(), norm.invert(z), rtol=1e-6, atol=1e-4)
    with pytest.raises(DataError, match="sample shape"):
        norm.invert(z[:, :2])
