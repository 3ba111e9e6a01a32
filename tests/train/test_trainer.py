"""The single-member trainer on MNIST-1D: learning, divergence, resume, hooks, outputs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lrensemble import schedules
from lrensemble.errors import CheckpointError, ConfigError
from lrensemble.train import (
    ExtraLoss,
    TrainConfig,
    TrainHook,
    WeightAveraging,
    WeightMask,
    build_model,
    load_weights,
    train_member,
)


def cfg(**kw):
    return TrainConfig(**{"epochs": 3, "batch_size": 128, **kw})


def test_short_mnist1d_run_learns_well_above_chance(mnist1d, tmp_path):
    model = build_model("cnn1d", mnist1d, seed=0)
    result = train_member(
        model,
        mnist1d,
        schedules.create("onecycle", max_lr=0.1),
        cfg(epochs=8),
        out_dir=tmp_path / "m",
        model_spec={"name": "cnn1d"},
        progress=False,
    )
    assert result.status == "complete"
    assert result.metrics["test"]["accuracy"] > 0.5  # chance is 0.1
    assert len(result.history) == 8
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    record = json.loads((tmp_path / "m" / "member.json").read_text())
    assert record["status"] == "complete"
    assert record["policy"] == {
        "name": "onecycle",
        "max_lr": 0.1,
        "min_lr": 0.0,
        "pct_start": 0.3,
        "div_factor": 25.0,
    }
    assert record["model"] == {"name": "cnn1d"}
    assert record["dataset"]["name"] == "mnist1d"
    assert {"torch", "numpy", "lrensemble", "python"} <= set(record["versions"])
    assert not (tmp_path / "m" / "checkpoint.safetensors").exists()
    again = build_model("cnn1d", mnist1d, seed=99)
    load_weights(again, tmp_path / "m" / "model.safetensors")
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a.cpu(), b)


def test_lr_follows_the_policy_every_iteration(mnist1d):
    seen = []

    class Spy(TrainHook):
        def after_step(self, ctx):
            seen.append((ctx.step, ctx.optimizer.param_groups[0]["lr"]))

    policy = schedules.create("composite", max_lr=0.5, min_lr=0.1, cycle_epochs=[1, 1, 1])
    model = build_model("cnn1d", mnist1d)
    train_member(model, mnist1d, policy, cfg(epochs=2), hooks=[Spy()], progress=False)
    steps = -(-3600 // 128)
    assert len(seen) == 2 * steps
    for step, lr in seen:
        assert lr == pytest.approx(policy(step / steps, 2))


def test_divergence_stops_cleanly_and_is_marked(mnist1d, tmp_path):
    model = build_model("cnn1d", mnist1d)
    result = train_member(
        model,
        mnist1d,
        schedules.create("constant", max_lr=1e4),
        cfg(momentum=0.9),
        out_dir=tmp_path / "d",
        progress=False,
    )
    assert result.status == "diverged"
    assert result.diverged_at["epoch"] == 0
    record = json.loads((tmp_path / "d" / "member.json").read_text())
    assert record["status"] == "diverged" and record["diverged_at"] == result.diverged_at
    assert not (tmp_path / "d" / "model.safetensors").exists()
    assert not (tmp_path / "d" / "checkpoint.safetensors").exists()


class Interrupt(Exception):
    pass


class CrashAfterEpoch(TrainHook):
    """Simulates a kill after an epoch: it observes only, so it changes no member's identity."""

    def __init__(self, epoch):
        self.epoch = epoch

    def spec(self):
        return None

    def on_epoch_end(self, ctx):
        if ctx.epoch == self.epoch:
            raise Interrupt


@pytest.mark.parametrize("optimizer", ["sgd", "asam"])
def test_resume_from_checkpoint_equals_an_uninterrupted_run(mnist1d, tmp_path, optimizer):
    policy = schedules.create("warmup_cosine", max_lr=0.1)
    config = cfg(epochs=4, optimizer=optimizer, nesterov=True, seed=3)
    spec = {"name": "mlp", "hidden": [64], "dropout": 0.2}

    def model():
        return build_model("mlp", mnist1d, seed=3, hidden=[64], dropout=0.2)

    straight = model()
    expected = train_member(straight, mnist1d, policy, config, model_spec=spec, progress=False)

    resumed = model()
    with pytest.raises(Interrupt):
        train_member(
            resumed,
            mnist1d,
            policy,
            config,
            out_dir=tmp_path / "r",
            model_spec=spec,
            hooks=[CrashAfterEpoch(2)],
            progress=False,
        )
    assert (tmp_path / "r" / "checkpoint.safetensors").exists()
    assert not (tmp_path / "r" / "member.json").exists()
    fresh = model()
    result = train_member(
        fresh, mnist1d, policy, config, out_dir=tmp_path / "r", model_spec=spec, progress=False
    )
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    for a, b in zip(straight.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert result.metrics == expected.metrics


def test_finished_member_is_not_retrained(mnist1d, tmp_path):
    policy = schedules.create("cosine", max_lr=0.05)
    first = train_member(
        build_model("cnn1d", mnist1d),
        mnist1d,
        policy,
        cfg(epochs=1),
        out_dir=tmp_path / "f",
        progress=False,
    )

    class Fail(TrainHook):
        def on_train_start(self, ctx):
            raise AssertionError("retrained")

        def spec(self):  # observes only
            return None

    model = build_model("cnn1d", mnist1d)
    again = train_member(
        model,
        mnist1d,
        policy,
        cfg(epochs=1),
        out_dir=tmp_path / "f",
        hooks=[Fail()],
        progress=False,
    )
    assert again.metrics == first.metrics


def test_other_setup_in_the_same_directory_is_refused(mnist1d, tmp_path):
    train_member(
        build_model("cnn1d", mnist1d),
        mnist1d,
        schedules.create("cosine", max_lr=0.05),
        cfg(epochs=1),
        out_dir=tmp_path / "x",
        progress=False,
    )
    with pytest.raises(CheckpointError, match="different setup"):
        train_member(
            build_model("cnn1d", mnist1d),
            mnist1d,
            schedules.create("cosine", max_lr=0.2),
            cfg(epochs=1),
            out_dir=tmp_path / "x",
            progress=False,
        )


def half_masks(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {
        name: torch.rand(p.shape, generator=gen) < 0.5
        for name, p in model.named_parameters()
        if p.ndim > 1 and not name.startswith("head")
    }


@pytest.mark.parametrize("change", ["mask", "other mask", "start weights", "extra loss"])
def test_a_changed_hook_or_start_is_another_member_not_the_finished_one(mnist1d, tmp_path, change):
    """Training again into one directory with a mask added, another mask, other starting
    weights or an extra loss never returns the member already there: it is another member."""
    policy = schedules.create("cosine", max_lr=0.05)
    base = build_model("cnn1d", mnist1d)
    first_hooks = [WeightMask(half_masks(base))] if change == "other mask" else []
    train_member(
        base,
        mnist1d,
        policy,
        cfg(epochs=1),
        out_dir=tmp_path / "m",
        hooks=first_hooks,
        progress=False,
    )
    model = build_model("cnn1d", mnist1d, seed=5 if change == "start weights" else 0)
    hooks = {
        "mask": [WeightMask(half_masks(model))],
        "other mask": [WeightMask(half_masks(model, seed=1))],
        "start weights": [],
        "extra loss": [ExtraLoss(lambda ctx, x, y, logits: logits.pow(2).mean(), 0.1)],
    }[change]
    with pytest.raises(CheckpointError, match="different setup"):
        train_member(
            model,
            mnist1d,
            policy,
            cfg(epochs=1),
            out_dir=tmp_path / "m",
            hooks=hooks,
            progress=False,
        )
    other = train_member(
        model,
        mnist1d,
        policy,
        cfg(epochs=1),
        out_dir=tmp_path / "n",
        hooks=hooks,
        progress=False,
    )
    first = json.loads((tmp_path / "m" / "member.json").read_text())
    assert other.record["fingerprint"] != first["fingerprint"]


def test_data_of_the_same_shape_is_another_member(tmp_path):
    from lrensemble.data import from_arrays

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(120, 1, 40, generator=g), torch.arange(120) % 3
    a = from_arrays(x[:100], y[:100], x[100:], y[100:])
    b = from_arrays(x[:100] + 1, y[:100], x[100:], y[100:])
    policy = schedules.create("constant", max_lr=0.05)
    train_member(build_model("mlp", a), a, policy, cfg(epochs=1), out_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="different setup"):
        train_member(
            build_model("mlp", b), b, policy, cfg(epochs=1), out_dir=tmp_path, progress=False
        )


def test_the_device_and_progress_bars_are_not_part_of_a_member(mnist1d, tmp_path):
    policy = schedules.create("cosine", max_lr=0.05)
    first = train_member(
        build_model("cnn1d", mnist1d),
        mnist1d,
        policy,
        cfg(epochs=1, device="cpu"),
        out_dir=tmp_path / "d",
        progress=False,
    )
    again = train_member(
        build_model("cnn1d", mnist1d),
        mnist1d,
        policy,
        cfg(epochs=1, device="auto"),
        out_dir=tmp_path / "d",
        progress=True,
    )
    assert again.record["fingerprint"] == first.record["fingerprint"]
    assert again.metrics == first.metrics and again.history == first.history


def test_weight_mask_keeps_masked_weights_exactly_zero(mnist1d):
    model = build_model("cnn1d", mnist1d)
    gen = torch.Generator().manual_seed(0)
    masks = {
        name: torch.rand(p.shape, generator=gen) < 0.5
        for name, p in model.named_parameters()
        if p.ndim > 1 and not name.startswith("head")
    }
    train_member(
        model,
        mnist1d,
        schedules.create("constant", max_lr=0.05),
        cfg(epochs=1, weight_decay=1e-3),
        hooks=[WeightMask(masks)],
        progress=False,
    )
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.all(params[name][~mask] == 0), name
        assert torch.any(params[name][mask] != 0), name


def test_swa_averages_the_end_of_epoch_weights(mnist1d):
    snapshots = []

    class Snap(TrainHook):
        def on_epoch_end(self, ctx):
            if ctx.epoch >= 1:
                snapshots.append({k: v.clone() for k, v in ctx.model.state_dict().items()})

    model = build_model("cnn1d", mnist1d)
    train_member(
        model,
        mnist1d,
        schedules.create("constant", max_lr=0.05),
        cfg(epochs=3),
        hooks=[Snap(), WeightAveraging("swa", start_epoch=1)],
        progress=False,
    )
    for name, value in model.state_dict().items():
        mean = torch.stack([s[name] for s in snapshots]).mean(0)
        torch.testing.assert_close(value, mean)


def test_ema_averages_every_step_with_its_decay(mnist1d):
    """EMA: the first step's weights, then avg = decay * avg + (1 - decay) * weights after
    every step; at the end the averaged weights replace the model's. Four steps at decay 0.5:
    the start of the average still weighs 1/8, so a wrong start would show."""
    decay = 0.5
    ema: dict[str, torch.Tensor] = {}
    raw: dict[str, torch.Tensor] = {}

    class Track(TrainHook):  # runs before the averaging hook, on the same steps
        def after_step(self, ctx):
            for k, v in ctx.model.state_dict().items():
                w = v.detach().clone()
                ema[k] = w if k not in ema else decay * ema[k] + (1 - decay) * w
                raw[k] = w

        def spec(self):
            return None

    model = build_model("cnn1d", mnist1d)
    train_member(
        model,
        mnist1d,
        schedules.create("constant", max_lr=0.05),
        cfg(epochs=1, batch_size=1024),
        hooks=[Track(), WeightAveraging("ema", decay=decay)],
        progress=False,
    )
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, ema[name], rtol=1e-5, atol=1e-7)
    # the last step's weights are not the average: the check above can tell them apart
    assert max((model.state_dict()[k] - raw[k]).abs().max().item() for k in raw) > 1e-4


def test_a_member_with_hooks_resumed_after_a_kill_equals_an_uninterrupted_one(mnist1d, tmp_path):
    """Masks and SWA averaging survive a kill: the averaged weights so far are in the
    checkpoint, and the resumed member equals one trained without interruption."""
    policy = schedules.create("cosine", max_lr=0.05)

    def run(out_dir, extra=()):
        model = build_model("cnn1d", mnist1d)
        # an observer first, then not at all: hook states must follow the hooks, not positions
        hooks = [*extra, WeightMask(half_masks(model)), WeightAveraging("swa", start_epoch=1)]
        train_member(
            model, mnist1d, policy, cfg(epochs=4), out_dir=out_dir, hooks=hooks, progress=False
        )
        return model

    straight = run(tmp_path / "straight")
    with pytest.raises(Interrupt):
        run(tmp_path / "r", extra=[CrashAfterEpoch(2)])
    resumed = run(tmp_path / "r")
    record = json.loads((tmp_path / "r" / "member.json").read_text())
    assert record["resumed_from_epoch"] == 2
    assert [h["hook"] for h in record["hooks"]] == ["WeightMask", "WeightAveraging"]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_extra_loss_sees_the_batch_and_changes_training(mnist1d):
    calls = []

    def l2(ctx, x, y, logits):
        calls.append((x.shape[0], logits.shape))
        return sum((p**2).sum() for p in ctx.model.parameters())

    plain = build_model("cnn1d", mnist1d)
    penalized = build_model("cnn1d", mnist1d)
    policy = schedules.create("constant", max_lr=0.05)
    train_member(plain, mnist1d, policy, cfg(epochs=1), progress=False)
    train_member(
        penalized, mnist1d, policy, cfg(epochs=1), hooks=[ExtraLoss(l2, 0.01)], progress=False
    )
    assert calls and calls[0][1][1] == 10
    norm = lambda m: sum(float((p.detach() ** 2).sum()) for p in m.parameters())  # noqa: E731
    assert norm(penalized) < norm(plain)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (dict(epochs=0), "epochs"),
        (dict(optimizer="adam"), "optimizer"),
        (dict(learning_rate=0.1), "unknown key"),
        (dict(momentum=1.5), "momentum"),
        (dict(weight_decay=math.inf), "weight_decay: Input should be a finite number"),
        (dict(grad_clip=math.inf), "grad_clip: Input should be a finite number"),
        (dict(momentum=math.nan), "momentum: Input should be a finite number"),
        (dict(betas=(0.9, math.inf)), "betas.1: Input should be a finite number"),
        (dict(epochs=10**30), "epochs: Input should be less than or equal to 1000000"),
        (dict(seed=-1), "seed: Input should be greater than or equal to 0"),
        (dict(seed=2**64), "seed: Input should be less than or equal to"),
    ],
)
def test_train_config_errors_are_one_sentence(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)
