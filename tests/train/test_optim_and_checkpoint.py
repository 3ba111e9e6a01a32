"""SAM/ASAM, optimizer factory and safetensors state files."""

from __future__ import annotations

import pytest
import torch

from lrensemble.errors import CheckpointError, ParameterError
from lrensemble.train import (
    SAM,
    create_optimizer,
    load_state,
    load_weights,
    save_state,
    save_weights,
)


def quadratic_problem():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5))
    a = torch.randn(5, 5)
    return w, lambda: ((a @ w) ** 2).sum()


def sam_step(adaptive, rho):
    w, loss_fn = quadratic_problem()
    opt = SAM([w], torch.optim.SGD, rho=rho, adaptive=adaptive, lr=0.01)
    start = w.detach().clone()
    loss_fn().backward()
    grad_at_w = w.grad.clone()

    def closure():
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)
    return start, w.detach().clone(), grad_at_w, loss_fn


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_steps_with_the_gradient_at_the_perturbed_point(adaptive):
    start, after, g, _ = sam_step(adaptive, rho=0.1)
    t = (start.abs() + 0.01) if adaptive else torch.ones_like(start)
    e = 0.1 * t**2 * g / (t * g).norm()
    probe = (start + e).requires_grad_(True)
    w, probe_loss = quadratic_problem()
    with torch.no_grad():
        w.copy_(probe)
    probe_loss().backward()
    torch.testing.assert_close(after, start - 0.01 * w.grad)


def test_sam_with_tiny_rho_is_sgd():
    start, after, g, _ = sam_step(False, rho=1e-9)
    torch.testing.assert_close(after, start - 0.01 * g)


def test_sam_needs_a_closure_and_round_trips_state():
    w, loss_fn = quadratic_problem()
    opt = create_optimizer([w], "asam", lr=0.1, momentum=0.9)
    with pytest.raises(ParameterError, match="closure"):
        opt.step()
    loss_fn().backward()
    opt.step(lambda: loss_fn().backward())
    state = opt.state_dict()
    other = create_optimizer([w], "asam", lr=0.1, momentum=0.9)
    other.load_state_dict(state)
    assert torch.equal(
        other.base_optimizer.state[w]["momentum_buffer"],
        opt.base_optimizer.state[w]["momentum_buffer"],
    )


def test_optimizer_factory_errors():
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ParameterError, match="Nesterov"):
        create_optimizer(p, "sgd", momentum=0.0, nesterov=True)
    with pytest.raises(ParameterError, match="Unknown optimizer"):
        create_optimizer(p, "lion")


def test_state_round_trip_keeps_int_keys_tuples_and_tensors(tmp_path):
    state = {
        "optim": {"state": {0: {"step": torch.tensor(3.0)}}, "groups": [{"betas": (0.9, 0.99)}]},
        "epoch": 4,
        "name": "x",
        "none": None,
    }
    save_state(tmp_path / "s.safetensors", state)
    back = load_state(tmp_path / "s.safetensors")
    assert back["optim"]["state"][0]["step"] == 3.0
    assert back["optim"]["groups"][0]["betas"] == (0.9, 0.99)
    assert back["epoch"] == 4 and back["name"] == "x" and back["none"] is None


def test_truncated_or_missing_files_raise_checkpoint_errors(tmp_path):
    model = torch.nn.Linear(3, 2)
    path = save_weights(model, tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        load_weights(model, path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state(tmp_path / "nothing.safetensors")


def test_weights_of_another_shape_are_refused(tmp_path):
    path = save_weights(torch.nn.Linear(3, 2), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="has shape"):
        load_weights(torch.nn.Linear(4, 2), path)
    with pytest.raises(CheckpointError, match="missing"):
        load_weights(torch.nn.Sequential(torch.nn.Linear(3, 2)), path)
