"""Planning a batched run: activation estimates, chunk sizes and evaluation pass sizes."""

from __future__ import annotations

import torch

from lrensemble.train import build_model
from lrensemble.train.batch_plan import activation_bytes, stacked_batch_size


def test_a_stack_evaluates_one_models_batch_at_a_time():
    assert stacked_batch_size(1024, 16) == 64
    assert stacked_batch_size(1024, 1) == 1024
    assert stacked_batch_size(8, 16) == 1


def test_activation_estimate_scales_with_the_batch(mnist1d):
    net = build_model("cnn1d", mnist1d, channels=8)
    small = activation_bytes(net, mnist1d.input_shape, 64)
    large = activation_bytes(net, mnist1d.input_shape, 128)
    assert small > 64 * 8 * 20 * 4  # at least the first layer's output
    assert 1.8 * small < large <= 2 * small  # the saved weights do not grow
    assert next(net.parameters()).device.type == "cpu"  # the model itself is untouched


def test_a_model_the_meta_device_cannot_run_counts_no_activations():
    class NumpyInside(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.lin(x) * float(x.sum().item())

    assert activation_bytes(NumpyInside(), (4,), 8) == 0


def test_chunks_are_bounded_by_activations_too(monkeypatch):
    import lrensemble.train.batch_plan as plan
    from lrensemble.models import create_model

    wrn = create_model("wrn", 10, (3, 32, 32), depth=16, width=4)
    monkeypatch.setattr(plan, "memory_budget", lambda device: 4 * 1024**3)
    params_only = plan.default_chunk_size(wrn, "asam", "cpu")
    with_activations = plan.default_chunk_size(
        wrn, "asam", "cpu", input_shape=(3, 32, 32), batch_size=128
    )
    per_member = plan.member_bytes(wrn, "asam", (3, 32, 32), 128)
    assert params_only == 16 and with_activations == 4 * 1024**3 // per_member < 16
    assert (
        plan.default_chunk_size(wrn, "sgd", "cpu", input_shape=(3, 32, 32), batch_size=100_000) == 1
    )
