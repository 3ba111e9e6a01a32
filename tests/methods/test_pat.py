"""Prune and Tune: masks (complements, partitions, neurons, the output layer), children whose
masked weights stay exactly zero, the paper's baselines in one run, resume, errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from lrensemble.methods.pat import child_masks, load_pat_config, mask_stats, run_pat
from lrensemble.pool import Pool
from lrensemble.schedules import create
from lrensemble.train import build_model
from tests.cli.test_cli import run as cli

CONFIG = """
[data]
name = "mnist1d"
[model]
name = "cnn1d"
channels = 8
[train]
optimizer = "{optimizer}"
weight_decay = {wd}
batch_size = 128
seed = 0
[pat]
parent_epochs = 2
members = {members}
child_epochs = 1
lr = {lr}
{extra}
"""


def config(tmp_path, optimizer="adamw", wd=0.0, members=4, lr=0.003, extra="", name="pat.toml"):
    path = tmp_path / name
    path.write_text(CONFIG.format(optimizer=optimizer, wd=wd, members=members, lr=lr, extra=extra))
    return path


@pytest.fixture(scope="module")
def cnn(mnist1d):
    return build_model("cnn1d", mnist1d, channels=8)


def weights_of(masks):
    return {k: v for k, v in masks.items() if k.endswith(".weight")}


@pytest.mark.parametrize("prune", ["connection", "neuron"])
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_anti_random_pairs_are_exact_complements(cnn, prune, scope):
    a, b, c, d = child_masks(cnn, 4, "antirandom", prune, scope=scope, seed=1)
    for first, second in ((a, b), (c, d)):
        assert first.keys() == second.keys()
        for name in first:
            assert torch.equal(first[name], ~second[name]), name
    assert not torch.equal(a["body.0.weight"], c["body.0.weight"])  # a new draw per pair


@pytest.mark.parametrize("prune", ["connection", "neuron"])
def test_a_partition_gives_every_weight_to_exactly_one_child(cnn, prune):
    children = child_masks(cnn, 3, "partition", prune, seed=2)
    for name in children[0]:
        owners = torch.stack([c[name] for c in children]).sum(0)
        assert torch.all(owners == 1), name


def test_neuron_pruning_removes_whole_channels_and_their_biases(cnn):
    (mask,) = child_masks(cnn, 1, "random", "neuron", sparsity=0.5, seed=3)
    weight, bias = mask["body.0.weight"], mask["body.0.bias"]
    rows = weight.flatten(1)
    assert torch.all(rows.all(1) | ~rows.any(1))  # each output channel all kept or all pruned
    assert torch.equal(rows.all(1), bias)  # a pruned channel's bias goes with it
    assert int((~bias).sum()) == 4  # half of the 8 channels


def test_connection_pruning_keeps_biases_and_the_sparsity(cnn, mnist1d):
    (mask,) = child_masks(cnn, 1, "random", "connection", sparsity=0.5, seed=4)
    assert not [k for k in mask if not k.endswith(".weight")]  # biases never pruned
    for name, m in mask.items():
        assert abs(float((~m).float().mean()) - 0.5) < 0.01, name
    stats = mask_stats(cnn, mask, mnist1d.input_shape)
    assert abs(stats["sparsity"] - 0.5) < 0.01
    assert stats["nonzero_parameters"] < stats["parameters"]
    assert stats["flops"] < stats["dense_flops"]


class HeadFirst(nn.Module):
    """The output layer registered before the body: found by name, not by order."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 3)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16))

    def forward(self, x):
        return self.head(self.body(x))


def test_the_output_layer_is_never_pruned(cnn):
    for model in (cnn, HeadFirst()):
        for strategy in ("random", "antirandom", "partition"):
            for masks in child_masks(model, 2, strategy, "neuron"):
                assert masks and not [k for k in masks if k.startswith("head.")]


def test_the_parent_schedule_holds_then_decays_to_one_percent():
    p = create("pat_parent", max_lr=0.1)
    assert p(0, 10) == p(4.9, 10) == 0.1
    assert abs(p(7, 10) - 0.0505) < 1e-12 and abs(p(9.5, 10) - 0.001) < 1e-12


@pytest.mark.parametrize(("optimizer", "wd"), [("sgd", 5e-4), ("adamw", 1e-2)])
def test_children_keep_masked_weights_exactly_zero(tmp_path, optimizer, wd):
    """Tuned with momentum and weight decay (SGD) or Adam, batched: every masked weight of
    every child is exactly zero, and the masks are filed with the child."""
    lr = 0.05 if optimizer == "sgd" else 0.003
    cfg = load_pat_config(config(tmp_path, optimizer, wd, members=4, lr=lr))
    result = run_pat(cfg, tmp_path / "out", log=lambda _: None, progress=False)
    pool = Pool.open(tmp_path / "out" / "pool")
    assert len(result.members) == 4
    for member in result.members:
        masks = load_file(str(pool.member_dir(member) / "masks.safetensors"))
        weights = load_file(str(pool.member_file(member, "model.safetensors")))
        for name, mask in masks.items():
            assert torch.all(weights[name][mask == 0] == 0), (member, name)
            assert torch.any(weights[name][mask == 1] != 0), (member, name)
        record = pool.member(member)
        assert record["method"] == "pat-antirandom" and record["parent"].startswith("pat-parent")
        assert record["pat"]["sparsity"] == pytest.approx(0.5, abs=0.01)
        assert record["pat"]["flops"] < record["pat"]["dense_flops"]
        assert [h["hook"] for h in record["hooks"]] == ["WeightMask"]


def test_baselines_run_at_the_same_budget_and_resume(tmp_path, capsys):
    path = config(tmp_path, members=2, extra="baselines = true")
    code, _, err = cli(capsys, "pat", str(path), "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 0, err
    pool = Pool.open(tmp_path / "o" / "pool")
    methods = {}
    for member in pool.member_ids():
        record = pool.member(member)
        methods.setdefault(record["method"], []).append(record)
    assert sorted(methods) == ["bagging", "dropout", "independent", "pat-antirandom", "pat-random"]
    budget = 2 + 2 * 1
    assert methods["independent"][0]["epochs_completed"] == budget
    assert methods["dropout"][0]["model"]["dropout"] > 0
    assert len(methods["bagging"]) == budget // 2
    bags = {r["dataset"]["bag"]["seed"] for r in methods["bagging"]}
    assert len(bags) == budget // 2  # each bagged member on its own subset
    assert len({r["train"]["seed"] for r in methods["bagging"]}) == budget // 2  # own seed
    results = json.loads((tmp_path / "o" / "report" / "results.json").read_text())
    assert set(results["by_method"]) == set(methods)  # the Table 1 analogue
    code, again, _ = cli(capsys, "pat", str(path), "--out", str(tmp_path / "o"), "--no-report")
    assert code == 0 and "(0 trained now" in again
    # merged into another pool, a child keeps its masks
    code, _, err = cli(
        capsys, "pool", "merge", str(tmp_path / "o" / "pool"), "--out", str(tmp_path / "m")
    )
    assert code == 0, err
    child = methods["pat-random"][0]["id"]
    assert (tmp_path / "m" / "members" / child / "masks.safetensors").is_file()


def test_bagged_children_tune_on_their_own_subsets(tmp_path):
    cfg = load_pat_config(config(tmp_path, members=2, extra="bagging = true"))
    result = run_pat(cfg, tmp_path / "out", log=lambda _: None, progress=False)
    pool = Pool.open(tmp_path / "out" / "pool")
    bags = [pool.member(m)["dataset"]["bag"] for m in result.members]
    assert bags[0]["seed"] != bags[1]["seed"] and bags[0]["fraction"] == 0.9
    assert pool.member(result.members[0])["dataset"]["sizes"]["train"] == round(3600 * 0.9)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('strategy = "halves"', "pat.strategy"),
        ("sparsity = 1.0", "pat.sparsity"),
        ('strategy = "partition"\nmembers = 1', "at least 2 children"),
        ('parent_policy = { name = "nope" }', "nope"),
        ('parent_checkpoint = "missing.safetensors"', "does not exist"),
    ],
)
def test_bad_configs_are_one_sentence(tmp_path, capsys, extra, fragment):
    text = CONFIG.format(optimizer="adamw", wd=0.0, members=4, lr=0.003, extra=extra)
    text = text.replace("members = 4\n", "") if "members = 1" in extra else text
    (tmp_path / "bad.toml").write_text(text)
    code, _, err = cli(capsys, "pat", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o"))
    assert code == 2 and fragment in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_a_mask_that_would_empty_a_layer_is_refused():
    from lrensemble.errors import ParameterError

    tiny = nn.Sequential()
    tiny.body = nn.Linear(4, 3)
    tiny.head = nn.Linear(3, 2)
    with pytest.raises(ParameterError, match="would keep nothing of body"):
        child_masks(tiny, 4, "partition", "neuron")


def test_a_parent_checkpoint_of_another_task_is_refused_and_another_pool_too(
    tmp_path, capsys, mnist1d
):
    five = build_model("cnn1d", mnist1d, channels=8)
    five.head = nn.Linear(five.head.in_features, 5)
    torch.save(five.state_dict(), tmp_path / "five.pt")
    path = config(tmp_path, extra=f'parent_checkpoint = "{tmp_path / "five.pt"}"')
    code, _, err = cli(capsys, "pat", str(path), "--out", str(tmp_path / "o"))
    assert code == 2 and "another class count" in err and not (tmp_path / "o").exists()
    path = config(tmp_path, members=2, name="ok.toml")
    code, _, err = cli(capsys, "pat", str(path), "--out", str(tmp_path / "p"), "--no-report")
    assert code == 0, err
    code, _, err = cli(
        capsys, "pat", str(path), "--out", str(tmp_path / "p"), "--pool", str(tmp_path / "q")
    )
    assert code == 2 and "files its members into" in err and not (tmp_path / "q").exists()
