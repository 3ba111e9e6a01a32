"""Hooks in the batched trainer: masks and weight averaging run in the stack and give what
one-by-one training gives; members with other hooks train one by one, exactly as
`train_member`; either trainer resumes the other's members with hooks."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from lrensemble import schedules
from lrensemble.errors import ParameterError
from lrensemble.train import (
    ExtraLoss,
    TrainConfig,
    TrainHook,
    WeightAveraging,
    WeightMask,
    build_model,
    train_member,
)
from lrensemble.train.batched import train_members

POLICIES = [
    schedules.create("onecycle", max_lr=0.1),
    schedules.create("multistep", max_lr=0.05),
    schedules.create("cosine", max_lr=0.02),
]
SPEC = {"name": "cnn1d", "channels": 8}


def net(ds, seed=0):
    return build_model("cnn1d", ds, seed=seed, channels=8)


def masks_for(model, seed):
    gen = torch.Generator().manual_seed(seed)
    return {
        name: torch.rand(p.shape, generator=gen) < 0.5
        for name, p in model.named_parameters()
        if p.ndim > 1 and not name.startswith("head")
    }


def make_hooks(ds, kinds):
    """One fresh hook list per member from a description: "mask<seed>", "swa", "ema"."""
    out = []
    for member in kinds:
        hooks = []
        for kind in member:
            if kind.startswith("mask"):
                hooks.append(WeightMask(masks_for(net(ds), int(kind[4:]))))
            elif kind == "swa":
                hooks.append(WeightAveraging("swa", start_epoch=1))
            elif kind == "ema":
                hooks.append(WeightAveraging("ema", decay=0.9))
        out.append(hooks)
    return out


def one_by_one(ds, policies, config, hooks, wds=None, out_dirs=None):
    results, nets = [], []
    for i, (policy, member_hooks) in enumerate(zip(policies, hooks, strict=True)):
        cfg = config if wds is None else config.model_copy(update={"weight_decay": wds[i]})
        model = net(ds)
        results.append(
            train_member(
                model,
                ds,
                policy,
                cfg,
                hooks=member_hooks,
                progress=False,
                model_spec=SPEC,
                out_dir=None if out_dirs is None else out_dirs[i],
            )
        )
        nets.append(model)
    return results, nets


def assert_same(batched_nets, batched, single_nets, single, atol=2e-4):
    for nb, rb, ns, rs in zip(batched_nets, batched, single_nets, single, strict=True):
        assert rb.status == rs.status == "complete"
        for (name, a), b in zip(nb.state_dict().items(), ns.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, atol=atol, rtol=1e-4, msg=name)
        for hb, hs in zip(rb.history, rs.history, strict=True):
            assert hb["train_loss"] == pytest.approx(hs["train_loss"], rel=1e-4, abs=1e-6)
        assert rb.metrics["test"]["nll"] == pytest.approx(rs.metrics["test"]["nll"], rel=1e-3)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "asam"])
def test_masked_members_equal_one_by_one_and_masked_weights_stay_zero(mnist1d, optimizer):
    config = TrainConfig(epochs=2, optimizer=optimizer, nesterov=optimizer != "adamw")
    scale = 0.05 if optimizer == "adamw" else 1.0
    policies = [schedules.create("scaled", policy=p.spec(), factor=scale) for p in POLICIES]
    wds = [1e-3, 0.0, 5e-4]
    kinds = [["mask0"], [], ["mask1", "mask2"]]  # the middle member has no mask
    nets = [net(mnist1d) for _ in policies]
    batched = train_members(
        nets,
        mnist1d,
        policies,
        config,
        weight_decays=wds,
        hooks=make_hooks(mnist1d, kinds),
        progress=False,
    )
    single, single_nets = one_by_one(mnist1d, policies, config, make_hooks(mnist1d, kinds), wds)
    assert_same(nets, batched, single_nets, single)
    for model, member in zip(nets, kinds, strict=True):
        params = dict(model.named_parameters())
        masks = [masks_for(net(mnist1d), int(kind[4:])) for kind in member]
        for name in masks_for(net(mnist1d), 0):
            keep = torch.ones_like(params[name], dtype=torch.bool)
            for mask in masks:
                keep &= mask[name]
            assert torch.all(params[name][~keep] == 0), name  # exactly, through momentum and decay
            assert torch.all(params[name][keep] != 0), name


@pytest.mark.parametrize(
    "kinds",
    [
        [["swa"], ["swa", "mask0"], ["swa"]],
        [["ema"], ["ema", "mask0"], ["mask1", "ema"]],  # the EMA sees masked weights or not
    ],
    ids=["swa", "ema"],
)
def test_averaged_members_equal_one_by_one(mnist1d, kinds):
    config = TrainConfig(epochs=3)
    nets = [net(mnist1d) for _ in POLICIES]
    batched = train_members(
        nets, mnist1d, POLICIES, config, hooks=make_hooks(mnist1d, kinds), progress=False
    )
    single, single_nets = one_by_one(mnist1d, POLICIES, config, make_hooks(mnist1d, kinds))
    assert_same(nets, batched, single_nets, single)
    if kinds[0] == ["ema"]:  # hook order: an EMA taken before masking keeps masked weights
        masked = ~masks_for(net(mnist1d), 0)["body.2.weight"]
        assert torch.any(nets[1].body[2].weight[masked] != 0)
        masked = ~masks_for(net(mnist1d), 1)["body.2.weight"]
        assert torch.all(nets[2].body[2].weight[masked] == 0)
    trained = [net(mnist1d) for _ in POLICIES]  # the same runs without averaging differ
    train_members(trained, mnist1d, POLICIES, config, progress=False)
    assert not torch.allclose(trained[0].head.weight, nets[0].head.weight, atol=1e-3)


def test_batch_norm_members_average_and_recompute_their_statistics():
    from lrensemble.data import from_arrays

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 3, 16, 16, generator=gen)
    y = torch.arange(96) % 3
    ds = from_arrays(x[:64], y[:64], x[64:], y[64:], image=False)
    config = TrainConfig(epochs=2, batch_size=16)
    policies = [schedules.create("scaled", policy=p.spec(), factor=0.2) for p in POLICIES[:2]]

    def nets():
        return [build_model("resnet18", ds, seed=0, width=4) for _ in policies]

    def hooks():
        return [[WeightAveraging("swa")], [WeightAveraging("swa")]]

    batched_nets, single_nets = nets(), nets()
    train_members(batched_nets, ds, policies, config, hooks=hooks(), progress=False)
    for model, policy, member_hooks in zip(single_nets, policies, hooks(), strict=True):
        train_member(model, ds, policy, config, hooks=member_hooks, progress=False)
    for nb, ns in zip(batched_nets, single_nets, strict=True):
        for name, a in nb.state_dict().items():
            torch.testing.assert_close(a, ns.state_dict()[name], atol=1e-3, rtol=1e-3, msg=name)


class Observer(TrainHook):
    """A user's hook: it only counts steps, but the batched trainer cannot know that."""

    def __init__(self):
        self.steps = 0

    def spec(self):
        return None

    def after_step(self, ctx):
        self.steps += 1


def l2(ctx, x, y, logits):
    return sum((p**2).sum() for p in ctx.model.parameters())


def test_a_member_with_another_hook_trains_one_by_one_exactly(mnist1d, caplog):
    config = TrainConfig(epochs=1)
    observer = Observer()
    hooks = [[], [ExtraLoss(l2, 0.01)], [observer]]
    nets = [net(mnist1d) for _ in POLICIES]
    with caplog.at_level(logging.WARNING):
        batched = train_members(nets, mnist1d, POLICIES, config, hooks=hooks, progress=False)
    assert "member 2/3 one by one: its hook ExtraLoss" in caplog.text
    assert "member 3/3 one by one: its hook Observer" in caplog.text
    assert observer.steps == math.ceil(len(mnist1d.split("train")[1]) / 128)
    for i in (1, 2):
        alone = net(mnist1d)
        again = [ExtraLoss(l2, 0.01)] if i == 1 else [Observer()]
        single = train_member(alone, mnist1d, POLICIES[i], config, hooks=again, progress=False)
        for a, b in zip(nets[i].state_dict().values(), alone.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        assert batched[i].history[0]["train_loss"] == single.history[0]["train_loss"]
    penalized = sum(float((p.detach() ** 2).sum()) for p in nets[1].parameters())
    plain = sum(float((p.detach() ** 2).sum()) for p in nets[0].parameters())
    assert penalized < plain


def test_fingerprints_with_hooks_match_the_single_trainer(mnist1d, tmp_path):
    config = TrainConfig(epochs=1)
    kinds = [["mask0", "swa"], ["ema"], []]
    single, _ = one_by_one(
        mnist1d,
        POLICIES,
        config,
        make_hooks(mnist1d, kinds),
        out_dirs=[tmp_path / f"s{i}" for i in range(3)],
    )
    batched = train_members(
        [net(mnist1d) for _ in POLICIES],
        mnist1d,
        POLICIES,
        config,
        hooks=make_hooks(mnist1d, kinds),
        out_dirs=[tmp_path / f"b{i}" for i in range(3)],
        model_spec=SPEC,
        progress=False,
    )
    for i, (a, b) in enumerate(zip(single, batched, strict=True)):
        assert a.record["fingerprint"] == b.record["fingerprint"]
        on_disk = json.loads((tmp_path / f"b{i}" / "member.json").read_text())
        assert on_disk["hooks"] == a.record["hooks"]
    assert single[0].record["fingerprint"] != single[2].record["fingerprint"]
    # a finished member is found again by either trainer with the same hooks
    again = train_members(
        [net(mnist1d) for _ in POLICIES],
        mnist1d,
        POLICIES,
        config,
        hooks=make_hooks(mnist1d, kinds),
        out_dirs=[tmp_path / f"s{i}" for i in range(3)],
        model_spec=SPEC,
        progress=False,
    )
    assert [r.history for r in again] == [r.history for r in single]


class Stop(Exception):
    pass


def interrupted(monkeypatch, after_epochs):
    import lrensemble.train.batched as batched_mod

    real = batched_mod._end_of_epoch
    calls = []

    def interrupt(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == after_epochs:
            raise Stop

    monkeypatch.setattr(batched_mod, "_end_of_epoch", interrupt)


@pytest.mark.parametrize("averaging", ["swa", "ema"])
@pytest.mark.parametrize("resumer", ["single", "batched"])
def test_an_interrupted_batched_member_with_hooks_resumes(
    mnist1d, tmp_path, monkeypatch, resumer, averaging
):
    config = TrainConfig(epochs=3)
    # one stack: the same averaging, and an EMA before no mask in either member
    second = ["swa", "mask1"] if averaging == "swa" else ["ema"]
    kinds = [["mask0", averaging], second]
    policies = POLICIES[:2]
    out = [tmp_path / "0", tmp_path / "1"]
    with monkeypatch.context() as patch:
        interrupted(patch, after_epochs=2)
        with pytest.raises(Stop):
            train_members(
                [net(mnist1d) for _ in policies],
                mnist1d,
                policies,
                config,
                hooks=make_hooks(mnist1d, kinds),
                out_dirs=out,
                model_spec=SPEC,
                progress=False,
            )
    assert all((d / "checkpoint.safetensors").exists() for d in out)
    if resumer == "single":
        resumed, resumed_nets = one_by_one(
            mnist1d, policies, config, make_hooks(mnist1d, kinds), out_dirs=out
        )
    else:
        resumed_nets = [net(mnist1d) for _ in policies]
        resumed = train_members(
            resumed_nets,
            mnist1d,
            policies,
            config,
            hooks=make_hooks(mnist1d, kinds),
            out_dirs=out,
            model_spec=SPEC,
            progress=False,
        )
    assert [r.record["resumed_from_epoch"] for r in resumed] == [2, 2]
    straight, straight_nets = one_by_one(mnist1d, policies, config, make_hooks(mnist1d, kinds))
    assert_same(resumed_nets, resumed, straight_nets, straight)


def test_hooks_need_one_entry_per_member(mnist1d):
    with pytest.raises(ParameterError, match="one entry per member"):
        train_members(
            [net(mnist1d) for _ in range(2)],
            mnist1d,
            POLICIES[:2],
            TrainConfig(epochs=1),
            hooks=[[]],
        )


def test_a_shared_averaging_hook_and_bad_masks(mnist1d, caplog):
    shared = WeightAveraging("swa")
    with caplog.at_level(logging.WARNING):
        results = train_members(
            [net(mnist1d) for _ in POLICIES],
            mnist1d,
            POLICIES,
            TrainConfig(epochs=1),
            hooks=[[shared], [WeightAveraging("swa")], [shared]],
            progress=False,
        )
    assert "member 3/3 one by one: its WeightAveraging hook is another member's too" in caplog.text
    assert [r.status for r in results] == ["complete"] * 3
    bad = WeightMask({"body.9.weight": torch.ones(3)})
    with pytest.raises(ParameterError, match="lacks: body"):
        train_members(
            [net(mnist1d) for _ in range(2)],
            mnist1d,
            POLICIES[:2],
            TrainConfig(epochs=1),
            hooks=[[bad], []],
            progress=False,
        )


def test_ema_between_two_masks_trains_one_by_one():
    """The stack applies a member's masks together, before or after its EMA update; a member
    masked on both sides of it cannot be stacked."""
    from lrensemble.train.stacked_hooks import hooks_blocker

    mask = WeightMask({})
    assert hooks_blocker([mask, WeightAveraging("ema")]) is None
    assert hooks_blocker([WeightAveraging("ema"), mask]) is None
    assert "both before and after" in hooks_blocker([mask, WeightAveraging("ema"), WeightMask({})])
    assert hooks_blocker([mask, WeightAveraging("swa"), WeightMask({})]) is None
