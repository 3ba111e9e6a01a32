"""Filing members into a pool from outside the LR sweep: a user's own training loop files its
model with `file_members`, and selection and the report treat it as one more member."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lrensemble.ensemble import EnsembleConfig, choose_ensemble
from lrensemble.errors import ParameterError
from lrensemble.filing import NewMember, file_members, file_predictions
from lrensemble.pool import Pool
from lrensemble.report import build_report
from lrensemble.train import build_model
from lrensemble.tuning import load_tune_config, run_sweep

SWEEP = """
[data]
name = "mnist1d"
[model]
name = "cnn1d"
channels = 8
[train]
epochs = 1
[search]
method = "grid"
policies = [{ name = "constant", max_lr = 0.002 }, { name = "constant", max_lr = 0.004 }]
"""


def my_own_loop(dataset, epochs=8):
    """A plain PyTorch loop, nothing from lrensemble's trainer."""
    torch.manual_seed(1)
    model = build_model("cnn1d", dataset, seed=1, channels=16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = dataset.split("train")
    for _ in range(epochs):
        for i in range(0, len(x), 128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i : i + 128]), y[i : i + 128]).backward()
            opt.step()
    return model


@pytest.fixture(scope="module")
def swept(tmp_path_factory, mnist1d):
    tmp = tmp_path_factory.mktemp("filing")
    (tmp / "sweep.toml").write_text(SWEEP)
    run_sweep(load_tune_config(tmp / "sweep.toml"), tmp / "s", log=lambda _: None, progress=False)
    return tmp / "s" / "pool"


def test_a_member_from_a_users_loop_is_selected_with_the_swept_ones(swept, mnist1d, tmp_path):
    import shutil

    pool_dir = tmp_path / "pool"
    shutil.copytree(swept, pool_dir)
    pool = Pool.open(pool_dir)
    model = my_own_loop(mnist1d)
    filed = file_members(
        pool,
        [NewMember("my-loop", model, {"note": "Adam 3e-3, 8 epochs"}, method="my_loop")],
        mnist1d,
    )
    assert filed == ["my-loop"]
    record = pool.member("my-loop")
    assert record["method"] == "my_loop" and record["note"] == "Adam 3e-3, 8 epochs"
    assert (pool.member_dir("my-loop") / "model.safetensors").exists()
    expected = torch.softmax(model.eval()(mnist1d.split("test")[0]), 1).detach().numpy()
    np.testing.assert_allclose(pool.probs("test", ["my-loop"])[0], expected, atol=1e-5)

    # the user's member (far better than two 1-epoch members at tiny LRs) and a swept one
    ids = pool.ordered_member_ids()
    team = choose_ensemble(
        pool.probs("val", ids),
        pool.labels("val"),
        ids,
        EnsembleConfig(method="greedy", size=2, min_relative_accuracy=0.0),
    )
    assert "my-loop" in team.members and len(team.members) == 2
    methods = {pool.member(m)["method"] for m in team.members}
    assert methods == {"my_loop", "lr_tuning"}

    results = build_report(
        pool_dir,
        tmp_path / "report",
        EnsembleConfig(method="greedy", size=2, min_relative_accuracy=0.0),
    )
    mine = results["by_method"]["my_loop"]
    assert mine["members"] == 1 and mine["chosen"] == 1 and mine["diversity"] is None
    assert mine["ensemble_test"]["accuracy"] == mine["best_test_accuracy"]
    assert results["by_method"]["lr_tuning"]["members"] == 2
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| my-loop | my_loop |" in report and "Members by the method" in report


def test_filing_skips_a_member_already_there_and_refuses_other_data(swept, mnist1d, tmp_path):
    import shutil

    pool_dir = tmp_path / "pool"
    shutil.copytree(swept, pool_dir)
    pool = Pool.open(pool_dir)
    existing = pool.member_ids()[0]
    before = (pool.member_dir(existing) / "member.json").read_text()
    model = build_model("cnn1d", mnist1d, channels=8)
    assert file_members(pool, [NewMember(existing, model, {}, method="x")], mnist1d) == []
    assert (pool.member_dir(existing) / "member.json").read_text() == before
    with pytest.raises(ParameterError, match="already has"):
        file_members(
            pool, [NewMember(existing, model, {}, method="x")], mnist1d, skip_existing=False
        )
    from lrensemble.data import load_dataset

    other = load_dataset("mnist1d", seed=7)
    with pytest.raises(ParameterError, match="labels are not those of the pool"):
        file_members(pool, [NewMember("new", model, {}, method="x")], other)
    assert not pool.member_dir("new").exists()


def test_predictions_are_filed_with_their_method_and_parent(swept, tmp_path):
    import shutil

    pool_dir = tmp_path / "pool"
    shutil.copytree(swept, pool_dir)
    pool = Pool.open(pool_dir)
    parent = pool.member_ids()[0]
    probs = {s: pool.probs(s, [parent])[0] for s in pool.splits}
    file_predictions(pool, "child", probs, {"epochs": 2}, method="snapshot", parent=parent)
    record = json.loads((pool.member_dir("child") / "member.json").read_text())
    assert record["method"] == "snapshot" and record["parent"] == parent
    assert record["cost"] == {"epochs": 2}
    with pytest.raises(ParameterError, match="method"):
        file_predictions(pool, "bad", probs, {}, method="")
