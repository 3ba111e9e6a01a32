"""The batched trainer gives what one-by-one training gives, in the same files."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from lrensemble import schedules
from lrensemble.errors import ParameterError
from lrensemble.train import TrainConfig, build_model, predict_proba, train_member
from lrensemble.train.batch_plan import batch_blocker
from lrensemble.train.batched import predict_proba_many, train_members

POLICIES = [
    schedules.create("onecycle", max_lr=0.1),
    schedules.create("multistep", max_lr=0.05),
    schedules.create("cosine", max_lr=0.02),
]


def models(ds, n, name="cnn1d", **params):
    return [build_model(name, ds, seed=0, **{"channels": 8, **params}) for _ in range(n)]


def one_by_one(ds, policies, config, seeds=None, wds=None, name="cnn1d", out_dirs=None):
    results, nets = [], []
    for i, p in enumerate(policies):
        cfg = config.model_copy(
            update={
                "seed": config.seed if seeds is None else seeds[i],
                "weight_decay": config.weight_decay if wds is None else wds[i],
            }
        )
        net = build_model(name, ds, seed=0, channels=8)
        results.append(
            train_member(
                net, ds, p, cfg, progress=False, out_dir=None if out_dirs is None else out_dirs[i]
            )
        )
        nets.append(net)
    return results, nets


def assert_same(batched_nets, batched, single_nets, single, atol):
    for nb, rb, ns, rs in zip(batched_nets, batched, single_nets, single, strict=True):
        assert rb.status == rs.status
        for (name, a), b in zip(nb.state_dict().items(), ns.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, atol=atol, rtol=1e-4, msg=name)
        for hb, hs in zip(rb.history, rs.history, strict=True):
            assert hb["train_loss"] == pytest.approx(hs["train_loss"], rel=1e-4, abs=1e-6)
            assert hb["lr"] == pytest.approx(hs["lr"])
        if rb.status == "complete":
            assert rb.metrics["test"]["accuracy"] == pytest.approx(
                rs.metrics["test"]["accuracy"], abs=2e-3
            )


@pytest.mark.parametrize("optimizer", ["sgd", "adamw", "sam", "asam"])
def test_batched_equals_one_by_one(mnist1d, optimizer):
    config = TrainConfig(
        epochs=2,
        optimizer=optimizer,
        nesterov=optimizer != "adamw",
        label_smoothing=0.1,
        grad_clip=1.0 if optimizer == "sam" else None,
    )
    scale = 0.05 if optimizer == "adamw" else 1.0
    policies = [schedules.create("scaled", policy=p.spec(), factor=scale) for p in POLICIES]
    wds = [0.0, 5e-4, 1e-3]
    nets = models(mnist1d, 3)
    batched = train_members(nets, mnist1d, policies, config, weight_decays=wds, progress=False)
    single, single_nets = one_by_one(mnist1d, policies, config, wds=wds)
    assert_same(nets, batched, single_nets, single, atol=2e-4)


def test_per_member_data_order(mnist1d):
    config = TrainConfig(epochs=1)
    seeds = [0, 1, 2]
    nets = models(mnist1d, 3)
    batched = train_members(nets, mnist1d, POLICIES, config, seeds=seeds, progress=False)
    single, single_nets = one_by_one(mnist1d, POLICIES, config, seeds=seeds)
    assert_same(nets, batched, single_nets, single, atol=2e-4)
    assert [r.record["seed"] for r in batched] == seeds


def test_a_diverging_member_leaves_the_batch_and_the_others_go_on(mnist1d):
    policies = [POLICIES[0], schedules.create("constant", max_lr=1e4), POLICIES[2]]
    config = TrainConfig(epochs=2)
    nets = models(mnist1d, 3)
    batched = train_members(nets, mnist1d, policies, config, progress=False)
    single, single_nets = one_by_one(mnist1d, policies, config)
    assert [r.status for r in batched] == ["complete", "diverged", "complete"]
    assert batched[1].diverged_at == single[1].diverged_at
    keep = [0, 2]
    assert_same(
        [nets[i] for i in keep],
        [batched[i] for i in keep],
        [single_nets[i] for i in keep],
        [single[i] for i in keep],
        atol=2e-4,
    )


@pytest.mark.parametrize("optimizer", ["sgd", "asam"])
def test_outputs_have_the_single_trainers_format_and_resume_across_trainers(
    mnist1d, tmp_path, optimizer
):
    config = TrainConfig(epochs=3, optimizer=optimizer)
    single_dir, batched_dirs = tmp_path / "single", [tmp_path / f"b{i}" for i in range(3)]
    single = train_member(
        build_model("cnn1d", mnist1d, channels=8),
        mnist1d,
        POLICIES[0],
        config,
        out_dir=single_dir,
        progress=False,
        model_spec={"name": "cnn1d", "channels": 8},
    )
    batched = train_members(
        models(mnist1d, 3),
        mnist1d,
        POLICIES,
        config,
        out_dirs=batched_dirs,
        progress=False,
        model_spec={"name": "cnn1d", "channels": 8},
    )
    a = json.loads((single_dir / "member.json").read_text())
    b = json.loads((batched_dirs[0] / "member.json").read_text())
    assert a.keys() == b.keys() and a["fingerprint"] == b["fingerprint"]
    assert [h["epoch"] for h in b["history"]] == [1, 2, 3]
    assert (batched_dirs[0] / "model.safetensors").exists()

    class Stop(Exception):
        pass

    # a batched run interrupted after its second epoch, resumed by the single trainer
    import lrensemble.train.batched as batched_mod

    real = batched_mod._end_of_epoch
    calls = []

    def interrupt(*args, **kwargs):
        real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            raise Stop

    out = tmp_path / "cross"
    batched_mod._end_of_epoch = interrupt
    try:
        with pytest.raises(Stop):
            train_members(
                models(mnist1d, 2),
                mnist1d,
                POLICIES[:2],
                config,
                out_dirs=[out / "0", out / "1"],
                progress=False,
                model_spec={"name": "cnn1d", "channels": 8},
            )
    finally:
        batched_mod._end_of_epoch = real
    assert (out / "0" / "checkpoint.safetensors").exists()
    resumed_net = build_model("cnn1d", mnist1d, seed=0, channels=8)  # the same start
    resumed = train_member(
        resumed_net,
        mnist1d,
        POLICIES[0],
        config,
        out_dir=out / "0",
        progress=False,
        model_spec={"name": "cnn1d", "channels": 8},
    )
    assert resumed.record["resumed_from_epoch"] == 2
    straight_net = build_model("cnn1d", mnist1d, channels=8)
    train_member(straight_net, mnist1d, POLICIES[0], config, progress=False)
    for x, y in zip(
        resumed_net.state_dict().values(), straight_net.state_dict().values(), strict=True
    ):
        # float differences grow faster under ASAM's ascent steps; a lost momentum buffer
        # would differ by orders of magnitude more
        torch.testing.assert_close(x, y, atol=2e-4 if optimizer == "sgd" else 1e-3, rtol=1e-4)
    # and the batched trainer resumes a member from its checkpoint too
    again = train_members(
        models(mnist1d, 1) + models(mnist1d, 1),
        mnist1d,
        [POLICIES[1], POLICIES[2]],
        config,
        out_dirs=[out / "1", out / "2"],
        progress=False,
        model_spec={"name": "cnn1d", "channels": 8},
    )
    assert again[0].record["resumed_from_epoch"] == 2
    assert again[1].record["resumed_from_epoch"] == 0
    assert single.status == "complete" and all(r.status == "complete" for r in batched)


def tiny_images():
    from lrensemble.data import from_arrays

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(96, 3, 16, 16, generator=gen)
    y = torch.arange(96) % 3
    return from_arrays(x[:64], y[:64], x[64:], y[64:], image=False)


def test_batch_norm_members_keep_their_own_running_statistics(caplog):
    ds = tiny_images()
    config = TrainConfig(epochs=2, batch_size=16)
    policies = [schedules.create("scaled", policy=p.spec(), factor=0.2) for p in POLICIES[:2]]
    nets = [build_model("resnet18", ds, seed=0, width=4) for _ in range(2)]
    with caplog.at_level(logging.WARNING):
        batched = train_members(nets, ds, policies, config, progress=False)
    assert "one by one" not in caplog.text
    singles = [build_model("resnet18", ds, seed=0, width=4) for _ in range(2)]
    single = [
        train_member(n, ds, p, config, progress=False)
        for n, p in zip(singles, policies, strict=True)
    ]
    for nb, ns in zip(nets, singles, strict=True):  # weights and running statistics
        for name, a in nb.state_dict().items():
            torch.testing.assert_close(a, ns.state_dict()[name], atol=1e-3, rtol=1e-3, msg=name)
    stats = "stem.1.running_mean"
    assert not torch.equal(nets[0].state_dict()[stats], nets[1].state_dict()[stats])
    for rb, rs in zip(batched, single, strict=True):  # evaluated with their own statistics
        assert rb.metrics["test"]["nll"] == pytest.approx(rs.metrics["test"]["nll"], rel=1e-3)


def test_chunks_give_the_same_members(mnist1d):
    config = TrainConfig(epochs=1)
    policies = [*POLICIES, schedules.create("linear", max_lr=0.05)]
    whole = models(mnist1d, 4)
    chunked = models(mnist1d, 4)
    train_members(whole, mnist1d, policies, config, progress=False)
    train_members(chunked, mnist1d, policies, config, chunk_size=3, progress=False)
    for a, b in zip(whole, chunked, strict=True):
        for x, z in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(x, z, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch_size", [128, 2])  # 2 < 3 models: one sample per pass
def test_batched_inference_equals_per_model_predictions(mnist1d, batch_size):
    nets = [build_model("cnn1d", mnist1d, seed=s, channels=8) for s in range(3)]
    x = mnist1d.x_test[:300]
    many = predict_proba_many(nets, x, batch_size=batch_size, device="cpu")
    assert many.shape == (3, 300, 10)
    for net, p in zip(nets, many, strict=True):
        torch.testing.assert_close(
            p, predict_proba(net, x, device=torch.device("cpu")), atol=1e-6, rtol=1e-5
        )


def test_errors(mnist1d):
    with pytest.raises(ParameterError, match="one entry per member"):
        train_members(models(mnist1d, 2), mnist1d, POLICIES, TrainConfig(epochs=1))
    mixed = [build_model("cnn1d", mnist1d, channels=8), build_model("cnn1d", mnist1d, channels=4)]
    with pytest.raises(ParameterError, match="another architecture"):
        train_members(mixed, mnist1d, POLICIES[:2], TrainConfig(epochs=1), progress=False)
    with pytest.raises(ParameterError, match="chunk_size"):
        train_members(
            models(mnist1d, 2), mnist1d, POLICIES[:2], TrainConfig(epochs=1), chunk_size=0
        )


class DataDependent(torch.nn.Module):
    """A model vmap cannot vectorize: control flow on a tensor's value."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(40, 10)

    def forward(self, x):
        y = self.lin(x.flatten(1))
        return y * 2 if y.max() > 0 else y


def test_a_model_vmap_cannot_vectorize_trains_one_by_one_with_a_message(mnist1d, caplog):
    nets = [DataDependent() for _ in range(2)]
    with caplog.at_level(logging.WARNING):
        results = train_members(nets, mnist1d, POLICIES[:2], TrainConfig(epochs=1), progress=False)
    assert "one by one" in caplog.text and "vmap cannot vectorize" in caplog.text
    assert all(r.status == "complete" for r in results)
    assert batch_blocker(build_model("cnn1d", mnist1d), (1, 40)) is None
