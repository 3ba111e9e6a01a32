"""Every registered model: forward and backward; the papers' sizes; errors."""

from __future__ import annotations

import math

import pytest
import torch

from lrensemble.errors import ParameterError, UnknownNameError
from lrensemble.models import Classifier, count_parameters, create_model, list_models
from lrensemble.models.registry import check_model_params

# Small settings keep the big architectures fast; their full sizes are checked by count below.
SMALL = {"wrn": dict(depth=10, width=1), "resnet18": dict(width=8)}
SHAPES = {"mlp": (1, 40), "cnn1d": (1, 40)}


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name):
    torch.manual_seed(0)
    shape = SHAPES.get(name, (3, 32, 32))
    model = create_model(name, num_classes=7, in_shape=shape, **SMALL.get(name, {}))
    assert isinstance(model, Classifier)
    x = torch.randn(4, *shape)
    out = model(x)
    assert out.shape == (4, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.forward_features(x).shape[0] == 4
    assert model.head.out_features == 7


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("lenet_s", 253_290),
        ("lenet_m", 1_007_306),
        ("lenet_l", 4_017_546),
        ("resnet18", 11_173_962),
        ("wrn-28-10", 36_479_194),
    ],
)
def test_parameter_counts_of_the_papers(name, count):
    assert count_parameters(create_model(name, 10)) == count


def test_group_norm_option_has_no_running_statistics():
    model = create_model("resnet18", 10, norm="group", width=8)
    assert not list(model.buffers())


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda: create_model("vgg", 10), UnknownNameError, "Unknown model 'vgg'"),
        (lambda: create_model("wrn", 10, depth=27), ParameterError, "6n + 4"),
        (lambda: create_model("cnn1d", 10, (40,)), ParameterError, "(channels, length)"),
        (lambda: create_model("mlp", 10, (4,), bogus=1), ParameterError, "no parameter 'bogus'"),
        (lambda: create_model("mlp", 0, (4,)), ParameterError, "num_classes"),
        (lambda: create_model("resnet18", 10, norm="layer"), ParameterError, "Unknown norm"),
        (
            lambda: create_model("cnn1d", 10, channels="wide"),
            ParameterError,
            "model 'cnn1d': channels must be an integer, got 'wide'",
        ),
        (lambda: create_model("cnn1d", 10, depth=True), ParameterError, "depth must be an integer"),
        (lambda: create_model("mlp", 10, (4,), hidden=64), ParameterError, "a list of integers"),
        (lambda: create_model("mlp", 10, (4,), dropout=math.nan), ParameterError, "finite"),
        (lambda: create_model("wrn", 10, norm=3), ParameterError, "norm must be a string"),
        (lambda: check_model_params("mlp", {"in_shape": [4]}), ParameterError, "from the data"),
        (lambda: create_model("cnn1d", 10, channels=10**5), ParameterError, "more than 1,000,000"),
        (lambda: create_model("cnn1d", 10, channels=10**12), ParameterError, "cannot be built"),
    ],
)
def test_errors(call, error, fragment):
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value)


def test_timm_bridge_without_timm_says_how_to_install():
    pytest.importorskip("torch")
    try:
        import timm  # noqa: F401
    except ImportError:
        with pytest.raises(UnknownNameError, match=r"lrensemble\[timm\]"):
            create_model("timm/resnet18", 10)
    else:
        model = create_model("timm/resnet18", 10, (3, 32, 32))
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", list_models())
def test_every_model_refuses_a_parameter_of_the_wrong_type(name):
    """Each keyword parameter given a value of another type is one sentence naming it."""
    from lrensemble.models import MODELS

    keyword = set(MODELS.parameters(name)) - {"num_classes", "in_shape"}
    for key in sorted(keyword):
        with pytest.raises(ParameterError, match=f"model '{name}': {key} must be"):
            create_model(name, 3, SHAPES.get(name, (3, 32, 32)), **{key: {"not": "this"}})


def test_the_size_check_draws_no_random_numbers():
    """The meta-device probe leaves the RNG alone: a seeded build gives the same weights."""
    from lrensemble.models import MODELS

    torch.manual_seed(0)
    checked = create_model("cnn1d", 3, (1, 40), channels=8)
    torch.manual_seed(0)
    plain = MODELS.get("cnn1d")(3, (1, 40), channels=8)
    for a, b in zip(checked.state_dict().values(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_users_registered_model_and_numpy_numbers_are_accepted():
    import numpy as np

    from lrensemble.models import create_model
    from lrensemble.models.registry import MODELS, register_model

    @register_model("users_linear_for_test")
    def users_linear(num_classes, in_shape=(10,), width=0):  # a positional-or-keyword width
        return torch.nn.Linear(in_shape[0], num_classes)

    try:
        model = create_model("users_linear_for_test", 3, (10,), width=2.5)
        assert isinstance(model, torch.nn.Module)
    finally:
        MODELS.unregister("users_linear_for_test")
    assert create_model("cnn1d", 3, (1, 40), channels=np.int64(8)) is not None
