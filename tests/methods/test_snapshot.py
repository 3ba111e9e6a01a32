"""Snapshot ensembles from one checkpoint: where each member starts, what its cycle trains, the
variants' terms, freezing, head replacement, resume, and mixing with a sweep's pool."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from lrensemble.data.base import from_arrays
from lrensemble.errors import CheckpointError, ConfigError, ParameterError
from lrensemble.methods.snapshot import (
    FreezeBlocks,
    PredictionDiversity,
    WeightOrthogonality,
    load_snapshot_config,
    model_blocks,
    run_snapshot,
)
from lrensemble.methods.snapshot import run as snapshot_run
from lrensemble.pool import Pool
from lrensemble.schedules import create
from lrensemble.train import TrainConfig, TrainHook, build_model, train_member
from lrensemble.train.hooks import TrainContext
from lrensemble.train.pretrained import load_pretrained
from tests.cli.test_cli import run as cli

CONFIG = """
[data]
name = "mnist1d"
[model]
name = "cnn1d"
channels = 8
[train]
epochs = 2
batch_size = 128
seed = 0
[snapshot]
method = "{method}"
checkpoint = {checkpoint}
members = {members}
lr = 0.02
{extra}
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, mnist1d):
    """A 'pre-trained' 1-D CNN: one epoch on MNIST-1D."""
    out = tmp_path_factory.mktemp("pretrained")
    train_member(
        build_model("cnn1d", mnist1d, seed=3, channels=8),
        mnist1d,
        create("onecycle", max_lr=0.1),
        TrainConfig(epochs=1, seed=3),
        out_dir=out,
        progress=False,
    )
    return out / "model.safetensors"


def config(tmp_path, checkpoint, method="starsse", members=3, extra="", name="snap.toml"):
    paths = [str(c) for c in checkpoint] if isinstance(checkpoint, list) else str(checkpoint)
    ckpt = json.dumps(paths)
    path = tmp_path / name
    path.write_text(CONFIG.format(method=method, checkpoint=ckpt, members=members, extra=extra))
    return path


class Starts:
    """Records each member's starting weights and its optimizer state at the start."""

    def __init__(self, monkeypatch):
        self.weights: dict[str, dict[str, torch.Tensor]] = {}
        self.optimizer_state: dict[str, int] = {}
        real = snapshot_run.train_member
        starts = self

        class Observe(TrainHook):
            def __init__(self, member):
                self.member = member

            def on_train_start(self, ctx):
                starts.optimizer_state[self.member] = len(ctx.optimizer.state)

            def spec(self):
                return None

        def recording(model, dataset, policy, config, **kwargs):
            member = kwargs["description"]
            self.weights[member] = {k: v.clone() for k, v in model.state_dict().items()}
            kwargs["hooks"] = [*kwargs.get("hooks", []), Observe(member)]
            return real(model, dataset, policy, config, **kwargs)

        monkeypatch.setattr(snapshot_run, "train_member", recording)


def member_weights(pool: Pool, member: str) -> dict[str, torch.Tensor]:
    return load_file(str(pool.member_file(member, "model.safetensors")))


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("method", ["starsse", "sse"])
def test_cycles_start_where_the_method_says_with_a_fresh_optimizer(
    tmp_path, checkpoint, monkeypatch, method
):
    starts = Starts(monkeypatch)
    result = run_snapshot(
        load_snapshot_config(config(tmp_path, checkpoint, method)),
        tmp_path / "out",
        log=lambda _: None,
        progress=False,
    )
    pool = Pool.open(tmp_path / "out" / "pool")
    first, second, third = result.members
    # StarSSE: every cycle from model 1's exact weights and buffers; SSE: from the previous one
    assert same(starts.weights[second], member_weights(pool, first))
    origin = first if method == "starsse" else second
    assert same(starts.weights[third], member_weights(pool, origin))
    assert not same(member_weights(pool, second), member_weights(pool, first))
    assert set(starts.optimizer_state.values()) == {0}  # momentum reset at every cycle start
    records = [pool.member(m) for m in result.members]
    assert [r["snapshot"]["cycle"] for r in records] == [1, 2, 3]
    assert {r["method"] for r in records} == {method}
    assert records[0]["parent"] == str(checkpoint)
    assert records[2]["parent"] == origin
    assert records[0]["snapshot"]["lr"] == 0.02 and records[1]["snapshot"]["lr"] == 0.04
    assert records[0]["train"]["epochs"] == 2 and records[1]["train"]["epochs"] == 1


def test_phase_one_replaces_the_head_and_keeps_the_body(tmp_path, checkpoint, monkeypatch):
    starts = Starts(monkeypatch)
    result = run_snapshot(
        load_snapshot_config(config(tmp_path, checkpoint, "starsse", members=1)),
        tmp_path / "out",
        log=lambda _: None,
        progress=False,
    )
    start = starts.weights[result.members[0]]
    pretrained = load_file(str(checkpoint))
    for name, value in pretrained.items():
        if name.startswith("head."):
            assert not torch.equal(start[name], value), name  # a new head, seeded
        else:
            assert torch.equal(start[name], value), name


def test_local_de_members_differ_in_seed_and_head_global_de_in_checkpoint(
    tmp_path, checkpoint, monkeypatch, mnist1d
):
    starts = Starts(monkeypatch)
    local = run_snapshot(
        load_snapshot_config(config(tmp_path, checkpoint, "local_de", members=2)),
        tmp_path / "local",
        log=lambda _: None,
        progress=False,
    )
    a, b = (starts.weights[m] for m in local.members)
    assert not torch.equal(a["head.weight"], b["head.weight"])
    assert torch.equal(a["body.0.weight"], b["body.0.weight"])  # the same checkpoint
    pool = Pool.open(tmp_path / "local" / "pool")
    assert [pool.member(m)["train"]["seed"] for m in local.members] == [0, 1]

    other = tmp_path / "other"
    train_member(
        build_model("cnn1d", mnist1d, seed=9, channels=8),
        mnist1d,
        create("onecycle", max_lr=0.1),
        TrainConfig(epochs=1, seed=9),
        out_dir=other,
        progress=False,
    )
    glob = run_snapshot(
        load_snapshot_config(
            config(tmp_path, [checkpoint, other / "model.safetensors"], "global_de", members=2)
        ),
        tmp_path / "global",
        log=lambda _: None,
        progress=False,
    )
    a, b = (starts.weights[m] for m in glob.members)
    assert not torch.equal(a["body.0.weight"], b["body.0.weight"])


def test_a_killed_run_resumes_without_duplicating_a_member(tmp_path, checkpoint, monkeypatch):
    """Killed during member 3's second epoch: the rerun keeps members 1 and 2, resumes member 3
    from its epoch checkpoint, and ends with the members of an uninterrupted run."""
    cfg = load_snapshot_config(
        config(tmp_path, checkpoint, "starsse", members=3, extra="cycle_epochs = 2")
    )
    straight = run_snapshot(cfg, tmp_path / "straight", log=lambda _: None, progress=False)

    class Kill(Exception):
        pass

    real = snapshot_run.train_member
    seen = []

    class KillAfterFirstEpoch(TrainHook):  # in the second epoch: the first is checkpointed
        def on_epoch_end(self, ctx):
            if ctx.epoch == 1:
                raise Kill

        def spec(self):
            return None

    def killing(model, dataset, policy, config, **kwargs):
        seen.append(kwargs["description"])
        if len(seen) == 3:
            kwargs["hooks"] = [*kwargs["hooks"], KillAfterFirstEpoch()]
        return real(model, dataset, policy, config, **kwargs)

    monkeypatch.setattr(snapshot_run, "train_member", killing)
    with pytest.raises(Kill):
        run_snapshot(cfg, tmp_path / "r", log=lambda _: None, progress=False)
    assert len(Pool.open(tmp_path / "r" / "pool").member_ids()) == 2
    lines = []
    resumed = run_snapshot(cfg, tmp_path / "r", log=lines.append, progress=False)
    assert resumed.trained == [straight.members[2]]
    assert sum("already in the pool" in line for line in lines) == 2
    pool, expected = Pool.open(tmp_path / "r" / "pool"), Pool.open(tmp_path / "straight" / "pool")
    assert pool.member_ids() == expected.member_ids()
    assert pool.member(straight.members[2])["resumed_from_epoch"] == 1
    for member in straight.members:
        a, b = member_weights(pool, member), member_weights(expected, member)
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["mse", "wo", "ce2"])
def test_variants_train_and_name_their_hooks(tmp_path, checkpoint, variant):
    result = run_snapshot(
        load_snapshot_config(
            config(tmp_path, checkpoint, "starsse", members=3, extra=f'variant = "{variant}"')
        ),
        tmp_path / "out",
        log=lambda _: None,
        progress=False,
    )
    pool = Pool.open(tmp_path / "out" / "pool")
    first, second, third = (pool.member(m) for m in result.members)
    assert first["hooks"] == []  # phase I has no extra term
    hook = {"mse": "FeatureDistance", "wo": "WeightOrthogonality", "ce2": "PredictionDiversity"}
    assert [h["hook"] for h in third["hooks"]] == [hook[variant]]
    if variant != "mse":  # compared with the earlier star members 2..i-1: none in cycle 2
        assert second["hooks"][0]["others"] == [] and len(third["hooks"][0]["others"]) == 1
    assert third["snapshot"]["variant"] == variant and third["snapshot"]["alpha"] > 0


def test_weight_orthogonality_has_a_gradient_through_the_current_weights():
    torch.manual_seed(0)
    model, other = nn.Linear(4, 3), nn.Linear(4, 3)
    hook = WeightOrthogonality([other], alpha=10.0, seed=0)
    ctx = TrainContext(model, None, None, None, torch.device("cpu"), 1)  # type: ignore[arg-type]
    x = torch.randn(5, 4)
    term = hook.extra_loss(ctx, x, torch.zeros(5, dtype=torch.long), model(x))
    term.backward()
    assert term.item() > 0
    assert model.weight.grad is not None and model.weight.grad.abs().sum() > 0
    w = torch.cat([model.weight.flatten(), model.bias])
    w_j = torch.cat([other.weight.flatten(), other.bias])
    expected = 10 * float(torch.cosine_similarity(w, w_j, 0).detach()) ** 2
    assert math.isclose(term.item(), expected, rel_tol=1e-5)
    assert other.weight.grad is None  # the earlier member is a frozen reference


def test_prediction_diversity_v2_on_a_batch_the_other_gets_right_is_zero():
    torch.manual_seed(0)
    model, other = nn.Linear(4, 3), nn.Linear(4, 3)
    x = torch.randn(6, 4)
    y = other(x).argmax(1)  # model j is right everywhere: an empty mask
    ctx = TrainContext(model, None, None, None, torch.device("cpu"), 1)  # type: ignore[arg-type]
    v2 = PredictionDiversity([other], alpha=0.1, seed=0, version=2)
    term = v2.extra_loss(ctx, x, y, model(x))
    assert torch.isfinite(term) and term.item() == 0.0
    v1 = PredictionDiversity([other], alpha=0.1, seed=0, version=1)
    assert v1.extra_loss(ctx, x, y, model(x)).item() < 0  # pushes away from j's predictions
    assert PredictionDiversity([], 0.1, 0).extra_loss(ctx, x, y, model(x)) is None


class TinyNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 16)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.body(x.flatten(1)))


def test_frozen_blocks_keep_weights_and_statistics_bit_identical():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 8, generator=g), torch.randint(0, 3, (300,), generator=g)
    data = from_arrays(x[:200], y[:200], x[200:], y[200:], num_classes=3)
    torch.manual_seed(0)
    model = TinyNormNet()
    assert [n for n, _ in model_blocks(model)] == ["body.0", "body.1", "body.3"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_member(
        model,
        data,
        create("constant", max_lr=0.1),
        TrainConfig(epochs=2, batch_size=32, weight_decay=1e-3),
        hooks=[FreezeBlocks(2)],
        progress=False,
    )
    after = model.state_dict()
    for name in ("body.0.weight", "body.0.bias", "body.1.weight", "body.1.running_mean",
                 "body.1.running_var", "body.1.num_batches_tracked"):  # fmt: skip
        assert torch.equal(before[name], after[name]), name
    assert not torch.equal(before["body.3.weight"], after["body.3.weight"])
    assert not torch.equal(before["head.weight"], after["head.weight"])
    assert all(p.requires_grad for p in model.parameters())  # given back after training
    model.train()
    assert model.body[1].training  # and its train() is nn.Module's again
    with pytest.raises(ParameterError, match="has 3 blocks"):
        FreezeBlocks(4).check(model)


def test_a_checkpoint_of_another_class_count_gets_a_new_head(tmp_path, mnist1d):
    five = from_arrays(
        mnist1d.x_train, mnist1d.y_train % 5, mnist1d.x_test, mnist1d.y_test % 5, num_classes=5
    )
    source = build_model("cnn1d", five, seed=0, channels=8)
    torch.save(source.state_dict(), tmp_path / "five.pt")
    model = build_model("cnn1d", mnist1d, seed=1, channels=8)
    head = model.head.weight.clone()
    info = load_pretrained(model, tmp_path / "five.pt")
    assert info["head_replaced"] and torch.equal(model.head.weight, head)
    assert torch.equal(model.body[0].weight, source.body[0].weight)
    wider = build_model("cnn1d", mnist1d, seed=1, channels=16)
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_pretrained(wider, tmp_path / "five.pt")
    backbone = {k: v for k, v in source.state_dict().items() if not k.startswith("head.")}
    torch.save(backbone, tmp_path / "backbone.pt")
    info = load_pretrained(model, tmp_path / "backbone.pt", keep_head=False)
    assert info["head_replaced"] and torch.equal(model.head.weight, head)
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_pretrained(model, tmp_path / "junk.safetensors")


@pytest.mark.parametrize(
    ("extra", "method", "fragment"),
    [
        ('variant = "rtd"', "sse", "no package on the package index"),
        ('variant = "wo"', "sse", "use method = 'starsse'"),
        ("freeze = 1", "local_de", "not local_de"),
        ("", "global_de", "give a list of paths"),
        ("cycle_lr = -1", "sse", "snapshot.cycle_lr"),
        ("cycle_epochz = 3", "sse", "unknown key"),
    ],
)
def test_bad_configs_are_one_sentence(tmp_path, checkpoint, capsys, extra, method, fragment):
    path = config(tmp_path, checkpoint, method, extra=extra)
    code, _, err = cli(capsys, "snapshot", str(path), "--out", str(tmp_path / "o"))
    assert code == 2 and fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_that_does_not_fit_writes_nothing(tmp_path, mnist1d, capsys):
    other = build_model("mlp", mnist1d, seed=0)
    torch.save(other.state_dict(), tmp_path / "mlp.pt")
    path = config(tmp_path, tmp_path / "mlp.pt", "sse")
    code, _, err = cli(capsys, "snapshot", str(path), "--out", str(tmp_path / "o"))
    assert code == 2 and "does not fit the model" in err and not (tmp_path / "o").exists()
    missing = config(tmp_path, tmp_path / "nope.safetensors", "sse", name="m.toml")
    code, _, err = cli(capsys, "snapshot", str(missing), "--out", str(tmp_path / "o"))
    assert code == 2 and "does not exist" in err and not (tmp_path / "o").exists()


def test_snapshot_members_join_a_sweeps_pool_and_are_selected_with_it(tmp_path, checkpoint, capsys):
    from lrensemble.tuning import load_tune_config, run_sweep

    (tmp_path / "sweep.toml").write_text(
        '[data]\nname = "mnist1d"\n[model]\nname = "cnn1d"\nchannels = 8\n[train]\nepochs = 1\n'
        '[search]\nmethod = "grid"\npolicies = [{ name = "onecycle", max_lr = 0.1 },'
        ' { name = "cosine", max_lr = 0.05 }]\n'
    )
    run_sweep(
        load_tune_config(tmp_path / "sweep.toml"), tmp_path / "s", log=lambda _: None,
        progress=False,
    )  # fmt: skip
    path = config(tmp_path, checkpoint, "starsse", members=3)
    code, out, err = cli(
        capsys, "snapshot", str(path), "--out", str(tmp_path / "snap"), "--pool",
        str(tmp_path / "s" / "pool"), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    assert "3 members in" in out and (tmp_path / "snap" / "report" / "report.md").exists()
    results = json.loads((tmp_path / "snap" / "report" / "results.json").read_text())
    assert results["by_method"]["starsse"]["members"] == 3
    assert results["by_method"]["lr_tuning"]["members"] == 2
    assert len(results["candidates"]) >= 2  # selection ran over the union
    assert results["figures"]["member_trajectory"] == "fig2_2_member_trajectory.png"
    assert results["by_method"]["starsse"]["diversity"] is not None
    code, again, _ = cli(
        capsys, "snapshot", str(path), "--out", str(tmp_path / "snap"), "--pool",
        str(tmp_path / "s" / "pool"), "--no-report",
    )  # fmt: skip
    assert code == 0 and again.count("already in the pool") == 3
    assert len(Pool.open(tmp_path / "s" / "pool").member_ids()) == 5
    with pytest.raises(ConfigError, match="another config"):
        run_snapshot(
            load_snapshot_config(config(tmp_path, checkpoint, "sse", members=3, name="o.toml")),
            tmp_path / "snap",
            log=lambda _: None,
        )
