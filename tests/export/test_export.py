"""Exporting the chosen ensemble and loading it as a model: the loaded ensemble reproduces
`ChosenEnsemble.combine` of the pool's cached predictions, `lrens predict` gives the same
probabilities from .npy and CSV inputs, pools of imported predictions export their team
without weights, and every bad input is one sentence with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lrensemble.ensemble import ChosenEnsemble, EnsembleConfig, choose_ensemble
from lrensemble.errors import CheckpointError, DataError, ParameterError
from lrensemble.export import (
    ENSEMBLE_JSON,
    WEIGHTS_FILE,
    EnsembleModel,
    as_batch,
    export_ensemble,
    load_ensemble,
    read_inputs,
    read_manifest,
)
from lrensemble.export.manifest import file_sha256
from lrensemble.pool import Pool, import_predictions
from tests.cli.test_cli import run
from tests.export.conftest import CLASSES, CSV_FEATURES, MEMBERS, write_rows

ATOL = 1e-5


def combined(pool_dir, chosen: ChosenEnsemble) -> np.ndarray:
    """What the chosen ensemble predicts on test, from the pool's cached predictions."""
    return chosen.combine(Pool.open(pool_dir).probs("test", chosen.members))


def as_chosen(manifest: dict) -> ChosenEnsemble:
    members = manifest["members"]
    return ChosenEnsemble(
        manifest["method"],
        manifest["objective"],
        [m["id"] for m in members],
        [m["weight"] for m in members],
        temperature=manifest["temperature"],
        member_temperatures=[m["temperature"] for m in members],
    )


def one_sentence_error(code: int, err: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def default_export(trained_pool, tmp_path_factory):
    pool_dir = trained_pool[0]
    target = export_ensemble(pool_dir, tmp_path_factory.mktemp("ens") / "ens")
    return target


# --- library -------------------------------------------------------------------------------------


def test_default_export_is_the_chosen_ensemble_and_reproduces_combine(trained_pool, default_export):
    pool_dir, ds, _, _ = trained_pool
    pool = Pool.open(pool_dir)
    ids = pool.member_ids()
    expected = choose_ensemble(pool.probs("val", ids), pool.labels("val"), ids, EnsembleConfig())
    manifest = read_manifest(default_export)
    assert [m["id"] for m in manifest["members"]] == expected.members
    assert manifest["temperature"] == pytest.approx(expected.temperature)
    assert manifest["method"] == expected.method and manifest["objective"] == "nll"
    model = load_ensemble(default_export)
    got = model(ds.x_test).detach().numpy()
    assert got.shape == (len(ds.y_test), 3)
    np.testing.assert_allclose(got, combined(pool_dir, expected), atol=ATOL)
    assert not model.training
    model.train()
    assert not model.training and not model.groups[0].training


def test_manifest_fields_and_prefixed_weights(trained_pool, default_export):
    norm = trained_pool[3]
    manifest = read_manifest(default_export)
    assert manifest["format"] == 1 and manifest["has_weights"] is True
    assert manifest["dataset"] == "waves" and manifest["classes"] == CLASSES
    assert manifest["normalization"] == norm.to_dict()
    assert manifest["num_classes"] == 3 and manifest["input_shape"] == [1, 40]
    assert manifest["lrensemble"] and manifest["created"]
    assert manifest["weights_sha256"] == file_sha256(default_export / WEIGHTS_FILE)
    weights = load_file(str(default_export / WEIGHTS_FILE))
    for i, member in enumerate(manifest["members"]):
        assert member["prefix"] == f"m{i}"
        assert member["model"] == MEMBERS[member["id"]][0]
        assert member["num_classes"] == 3 and member["input_shape"] == [1, 40]
        assert any(k.startswith(f"m{i}.") for k in weights)
    assert sum(m["weight"] for m in manifest["members"]) == pytest.approx(1.0)
    assert {k.split(".")[0] for k in weights} == {f"m{i}" for i in range(len(manifest["members"]))}


def test_given_team_of_three_architectures_is_grouped_and_calibrated(trained_pool, tmp_path):
    pool_dir, ds, _, _ = trained_pool
    ids = ["c8a", "c16", "c8b", "mlp"]
    config = EnsembleConfig(calibrate_members=True)
    target = export_ensemble(pool_dir, tmp_path / "ens", config, members=ids, weights=[1, 2, 3, 4])
    manifest = read_manifest(target)
    assert manifest["method"] == "given"
    assert [m["id"] for m in manifest["members"]] == ids
    assert [m["weight"] for m in manifest["members"]] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert [m["group"] for m in manifest["members"]] == [0, 1, 0, 2]
    assert any(m["temperature"] != 1.0 for m in manifest["members"])
    model = load_ensemble(target)
    assert sorted(g.rows.tolist() for g in model.groups) == [[0, 2], [1], [3]]
    expected = combined(pool_dir, as_chosen(manifest))
    np.testing.assert_allclose(model(ds.x_test).detach().numpy(), expected, atol=ATOL)
    pool = Pool.open(pool_dir)
    again = choose_ensemble(
        pool.probs("val", ids), pool.labels("val"), ids, config, members=ids, weights=[1, 2, 3, 4]
    )
    np.testing.assert_allclose(expected, again.combine(pool.probs("test", ids)), atol=1e-12)


@pytest.mark.parametrize("wrapped", [False, True], ids=["to_dict", "results_json"])
def test_team_file_is_used_as_it_is(trained_pool, tmp_path, capsys, wrapped):
    pool_dir, ds, _, _ = trained_pool
    chosen = ChosenEnsemble(
        "focal", "nll", ["mlp", "c8a"], [0.3, 0.7], temperature=1.7, member_temperatures=[0.8, 1.2]
    )
    data = {"chosen_ensemble": chosen.to_dict()} if wrapped else chosen.to_dict()
    (tmp_path / "team.json").write_text(json.dumps(data))
    target = tmp_path / "ens"
    if wrapped:  # through the command
        code, out, err = run(
            capsys,
            "export",
            str(pool_dir),
            "--out",
            str(target),
            "--team",
            str(tmp_path / "team.json"),
        )
        assert code == 0 and "ensemble temperature 1.7000" in out, err
    else:
        export_ensemble(pool_dir, target, team_file=tmp_path / "team.json")
    manifest = read_manifest(target)
    assert manifest["method"] == "focal" and manifest["temperature"] == 1.7
    assert [m["temperature"] for m in manifest["members"]] == [0.8, 1.2]
    assert [m["weight"] for m in manifest["members"]] == pytest.approx([0.3, 0.7])
    got = load_ensemble(target)(ds.x_test).detach().numpy()
    np.testing.assert_allclose(got, combined(pool_dir, chosen), atol=ATOL)


def test_predict_proba_normalizes_raw_inputs_and_reshapes_rows(trained_pool, default_export):
    _, ds, x_raw, _ = trained_pool
    model = load_ensemble(default_export)
    expected = model(ds.x_test).detach().numpy()
    np.testing.assert_allclose(model.predict_proba(x_raw, batch_size=64), expected, atol=ATOL)
    flat = x_raw.reshape(len(x_raw), -1)
    np.testing.assert_allclose(model.predict_proba(flat), expected, atol=ATOL)
    np.testing.assert_allclose(model.predict_proba(ds.x_test, normalized=True), expected, atol=ATOL)
    np.testing.assert_allclose(model.normalize(x_raw), ds.x_test.numpy(), atol=1e-5)


def test_ensemble_model_stacks_buffers_and_matches_combine():
    torch.manual_seed(0)

    def bn_net() -> nn.Module:
        net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        net[1].running_mean.normal_()
        net[1].running_var.uniform_(0.5, 2.0)
        return net

    models = [bn_net(), nn.Sequential(nn.Linear(4, 3)), bn_net()]
    x = torch.randn(50, 4)
    with torch.no_grad():
        probs = np.stack([torch.softmax(m.eval()(x), -1).numpy() for m in models])
    chosen = ChosenEnsemble(
        "given", "accuracy", ["a", "b", "c"], [0.5, 0.2, 0.3], 0.7, [1.0, 2.0, 0.5]
    )
    ens = EnsembleModel(models, chosen.weights, chosen.member_temperatures, chosen.temperature)
    assert len(ens.groups) == 2 and len(ens.groups[0].buffer_names) == 3
    assert ens.normalize(x) is x  # no normalization recorded: the identity
    np.testing.assert_allclose(ens(x).detach().numpy(), chosen.combine(probs), atol=ATOL)


class Branchy(nn.Module):
    """A model with data-dependent control flow, which vmap cannot vectorize."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        return h if float(h.sum()) > 0 else -h


def test_members_vmap_cannot_vectorize_are_evaluated_one_by_one():
    torch.manual_seed(1)
    models = [Branchy(), Branchy()]
    x = torch.randn(20, 4)
    with torch.no_grad():
        probs = np.stack([torch.softmax(m(x), -1).numpy() for m in models])
    ens = EnsembleModel(models, [0.4, 0.6])
    assert ens.groups[0].vectorized
    np.testing.assert_allclose(
        ens(x).detach().numpy(), np.tensordot([0.4, 0.6], probs, 1), atol=ATOL
    )
    assert not ens.groups[0].vectorized


# --- loading errors ------------------------------------------------------------------------------


def copy_export(src, dst):
    dst.mkdir()
    for name in (ENSEMBLE_JSON, WEIGHTS_FILE):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_loading_a_bad_directory_is_one_sentence(default_export, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_ensemble(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"has no ensemble\.json"):
        load_ensemble(tmp_path / "empty")
    truncated = copy_export(default_export, tmp_path / "truncated")
    text = (truncated / ENSEMBLE_JSON).read_text()
    (truncated / ENSEMBLE_JSON).write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        load_ensemble(truncated)
    (truncated / ENSEMBLE_JSON).write_text(json.dumps({"members": []}))
    with pytest.raises(CheckpointError, match="not describe an ensemble"):
        load_ensemble(truncated)
    cut = copy_export(default_export, tmp_path / "cut")
    data = (cut / WEIGHTS_FILE).read_bytes()
    (cut / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or from another export"):
        load_ensemble(cut)
    (cut / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_ensemble(cut)
    foreign = copy_export(default_export, tmp_path / "foreign")
    save_file({"m0.other": torch.zeros(2)}, str(foreign / WEIGHTS_FILE))
    manifest = json.loads((foreign / ENSEMBLE_JSON).read_text())
    manifest["weights_sha256"] = file_sha256(foreign / WEIGHTS_FILE)
    (foreign / ENSEMBLE_JSON).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_ensemble(foreign)


def test_a_failed_export_does_not_look_valid(trained_pool, default_export, tmp_path, monkeypatch):
    import lrensemble.export.writer as writer

    target = copy_export(default_export, tmp_path / "ens")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "save_file", broken)
    with pytest.raises(DataError, match=r"Cannot write the ensemble .* \(No space left"):
        export_ensemble(trained_pool[0], target)
    assert not (target / ENSEMBLE_JSON).exists()
    with pytest.raises(CheckpointError, match=r"has no ensemble\.json"):
        load_ensemble(target)


# --- imported predictions ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def imported_pool(trained_pool, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("imported")
    pool = Pool.open(trained_pool[0])
    (tmp / "preds").mkdir()
    for split in ("val", "test"):
        np.save(tmp / f"y_{split}.npy", pool.labels(split))
        for member in pool.member_ids():
            np.save(tmp / "preds" / f"{member}_{split}.npy", pool.probs(split, [member])[0])
    labels = {s: tmp / f"y_{s}.npy" for s in ("val", "test")}
    import_predictions(tmp / "pool", labels, str(tmp / "preds" / "{member}_{split}.npy"))
    return tmp / "pool"


def test_imported_predictions_export_the_team_without_weights(imported_pool, tmp_path, capsys):
    code, out, err = run(
        capsys,
        "export",
        str(imported_pool),
        "--out",
        str(tmp_path / "ens"),
        "--members",
        "c8a,mlp",
        "--weights",
        "3,1",
    )
    assert code == 0, err
    assert "holds no weights" in out and "cannot predict" in out
    manifest = read_manifest(tmp_path / "ens")
    assert manifest["has_weights"] is False and manifest["missing_weights"] == ["c8a", "mlp"]
    assert [m["id"] for m in manifest["members"]] == ["c8a", "mlp"]
    assert [m["weight"] for m in manifest["members"]] == pytest.approx([0.75, 0.25])
    assert manifest["members"][0]["model"] is None and manifest["temperature"] > 0
    assert not (tmp_path / "ens" / WEIGHTS_FILE).exists()
    with pytest.raises(CheckpointError, match=r"holds no weights .* cannot predict"):
        load_ensemble(tmp_path / "ens")
    np.save(tmp_path / "x.npy", np.zeros((3, 1, 40), dtype=np.float32))
    code, _, err = run(
        capsys,
        "predict",
        str(tmp_path / "ens"),
        str(tmp_path / "x.npy"),
        "--out",
        str(tmp_path / "p.npy"),
    )
    one_sentence_error(code, err)
    assert "cannot predict" in err and not (tmp_path / "p.npy").exists()


# --- commands ------------------------------------------------------------------------------------


def test_export_command_prints_the_team(trained_pool, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(
        '[data]\nname = "mnist1d"\n\n[ensemble]\nmethod = "brute_force"\nsize = 2\n'
        "min_relative_accuracy = 0.0\n"
    )
    code, out, err = run(
        capsys,
        "export",
        str(trained_pool[0]),
        "--out",
        str(tmp_path / "ens"),
        "--config",
        str(config),
    )
    assert code == 0, err
    manifest = read_manifest(tmp_path / "ens")
    assert manifest["method"] == "brute_force" and len(manifest["members"]) == 2
    assert "exported 2 members (brute_force" in out and "ensemble temperature" in out
    for member in manifest["members"]:
        assert member["id"] in out
    code, out, err = run(
        capsys,
        "export",
        str(trained_pool[0]),
        "--out",
        str(tmp_path / "ens"),
        "--config",
        str(config),
        "--size",
        "3",
    )
    assert code == 0, err
    assert len(read_manifest(tmp_path / "ens")["members"]) == 3  # the option wins, replaced


def test_predict_command_from_npy_npz_and_csv(trained_pool, default_export, tmp_path, capsys):
    _, ds, x_raw, _ = trained_pool
    expected = load_ensemble(default_export)(ds.x_test).detach().numpy()
    np.save(tmp_path / "x.npy", x_raw)
    flat = x_raw.reshape(len(x_raw), -1)
    lines = [",".join([f"x{j}" for j in range(40)] + ["label"])]
    lines += [",".join([repr(float(v)) for v in row] + ["7"]) for row in flat]
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    np.savez(tmp_path / "x.npz", x_test=ds.x_test.numpy(), y_test=ds.y_test.numpy())
    cases = {
        "npy": [str(tmp_path / "x.npy")],
        "csv": [str(tmp_path / "x.csv"), "--label-column", "label"],
        "npz": [str(tmp_path / "x.npz"), "--normalized", "--batch-size", "7"],
    }
    for name, args in cases.items():
        target = tmp_path / f"p_{name}.npy"
        code, out, err = run(
            capsys, "predict", str(default_export), *args, "--out", str(target), "--device", "cpu"
        )
        assert code == 0, err
        got = np.load(target)
        assert got.dtype == np.float32 and got.shape == (len(x_raw), 3)
        np.testing.assert_allclose(got, expected, atol=ATOL, err_msg=name)
        assert f"predicted {len(x_raw)} samples" in out and "warning" not in err
        counts = np.bincount(got.argmax(1), minlength=3)
        assert ", ".join(f"{CLASSES[c]} {n}" for c, n in enumerate(counts) if n) in out


def bad_predict_inputs(tmp_path):
    """name -> (input file, extra options, fragment of the error)."""
    good = np.zeros((4, 1, 40), dtype=np.float32)
    np.save(tmp_path / "short.npy", np.zeros((4, 39), dtype=np.float32))
    (tmp_path / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "text.csv").write_text("a,b\n1,2\n")
    (tmp_path / "header.csv").write_text("a,b\n")
    rows = [",".join(["1"] * 40)] * 3
    rows[1] = ",".join(["1"] * 39 + ["abc"])
    (tmp_path / "cell.csv").write_text("\n".join(rows) + "\n")
    np.savez(tmp_path / "two.npz", a=good, b=good)
    np.save(tmp_path / "nan.npy", np.full((4, 1, 40), np.nan, dtype=np.float32))
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "last.npy", good.transpose(0, 2, 1))
    np.savez_compressed(tmp_path / "corrupt.npz", x=np.random.default_rng(0).normal(size=(50, 40)))
    blob = bytearray((tmp_path / "corrupt.npz").read_bytes())
    blob[100:400] = bytes(300)  # inside the deflate stream: zlib fails, not the zip directory
    (tmp_path / "corrupt.npz").write_bytes(bytes(blob))
    (tmp_path / "file").write_text("")
    (tmp_path / "folder").mkdir()
    (tmp_path / "text.npz").write_text("x\n1\n")
    (tmp_path / "text.npy").write_text("1 2 3\n")
    np.save(tmp_path / "objects.npy", np.array([{}, None], dtype=object), allow_pickle=True)
    return {
        "a directory": ("folder", [], "lrens predict reads .npy, .npz or .csv files (save images"),
        "text as npz": ("text.npz", [], "text.npz is not a .npz (zip) file."),
        "text as npy": ("text.npy", [], "text.npy is not a .npy file."),
        "pickled npy": ("objects.npy", [], "pickled arrays are refused"),
        "out not npy": ("good.npy", ["--out", str(tmp_path / "p.csv")], "ending in .npy"),
        "wrong shape": ("short.npy", [], "samples of shape (39,)"),
        "unreadable": ("garbage.npy", [], "not a readable .npy/.npz file"),
        "corrupted compressed npz": ("corrupt.npz", [], "not a readable .npy/.npz file"),
        "channels last": (
            "last.npy",
            [],
            "channels first: transpose them, e.g. x.transpose(0, 2, 1)",
        ),
        "missing": ("absent.npy", [], "does not exist"),
        "non-numeric cell": ("cell.csv", [], "line 2, column 40 holds 'abc'"),
        "too few columns": ("text.csv", [], "samples of shape (2,)"),
        "header without rows": ("header.csv", [], "holds a header but no data rows"),
        "ambiguous npz": ("two.npz", [], "name the inputs with --key"),
        "unknown npz key": ("two.npz", ["--key", "x"], "has no array 'x'"),
        "nan": ("nan.npy", [], "NaN"),
        "unknown format": ("file", [], "unknown format"),
        "out under a file": ("good.npy", ["--out", str(tmp_path / "file" / "p.npy")], "is a file"),
        "out is a directory": ("good.npy", ["--out", str(tmp_path)], "is a directory"),
    }


def test_bad_predict_inputs_are_one_sentence_and_write_nothing(default_export, tmp_path, capsys):
    for name, (file, extra, fragment) in bad_predict_inputs(tmp_path).items():
        before = sorted(p.name for p in tmp_path.rglob("*"))
        args = ["predict", str(default_export), str(tmp_path / file)]
        args += extra if "--out" in extra else [*extra, "--out", str(tmp_path / "p.npy")]
        code, _, err = run(capsys, *args)
        one_sentence_error(code, err)
        assert fragment in err, (name, err)
        assert sorted(p.name for p in tmp_path.rglob("*")) == before, name


def test_bad_export_requests_are_one_sentence_and_write_nothing(trained_pool, tmp_path, capsys):
    pool = str(trained_pool[0])
    (tmp_path / "file").write_text("")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    (tmp_path / "bad.toml").write_text("[ensemble]\nsize = 0\n")
    (tmp_path / "high.toml").write_text("[ensemble]\nmin_accuracy = 0.999\n")
    (tmp_path / "ok.toml").write_text("[ensemble]\nsize = 2\n")
    (tmp_path / "team.json").write_text(json.dumps({"members": ["c8a"], "weights": [1.0]}))
    out = str(tmp_path / "ens")
    cases = {
        "under a file": (["--out", str(tmp_path / "file" / "ens")], "is a file"),
        "other files": (["--out", str(tmp_path / "busy")], "holds other files (notes.txt)"),
        "weights alone": (["--out", out, "--weights", "1,2"], "need the members"),
        "team and method": (
            ["--out", out, "--team", str(tmp_path / "team.json"), "--method", "greedy"],
            "team file gives the team",
        ),
        "bad config": (["--out", out, "--config", str(tmp_path / "bad.toml")], "ensemble.size"),
        "floor above all": (
            ["--out", out, "--config", str(tmp_path / "high.toml")],
            "No member reaches the candidate floor",
        ),
        "bad method": (["--out", out, "--method", "best"], "--method: "),
        "unknown member": (["--out", out, "--members", "c8a,zzz"], "zzz"),
        "weights count": (
            ["--out", out, "--members", "c8a,mlp", "--weights", "1"],
            "--weights has 1 number for a team of 2 members",
        ),
        "config and bad objective": (
            ["--out", out, "--config", str(tmp_path / "ok.toml"), "--objective", "best"],
            "--objective: ",
        ),
        "bad weight": (["--out", out, "--members", "c8a", "--weights", "x"], "--weights takes"),
        "negative weight": (
            ["--out", out, "--members", "c8a,mlp", "--weights", "1,-1"],
            "non-negative",
        ),
        "missing team file": (["--out", out, "--team", str(tmp_path / "no.json")], "not exist"),
    }
    for name, (args, fragment) in cases.items():
        before = sorted(p.name for p in tmp_path.rglob("*"))
        code, _, err = run(capsys, "export", pool, *args)
        one_sentence_error(code, err)
        assert fragment in err, (name, err)
        assert sorted(p.name for p in tmp_path.rglob("*")) == before, name


def test_weights_without_members_in_the_library(trained_pool, tmp_path):
    with pytest.raises(ParameterError, match="need the members"):
        export_ensemble(trained_pool[0], tmp_path / "ens", weights=[1.0])
    assert not (tmp_path / "ens").exists()


# --- input shapes, CSV columns, normalization ----------------------------------------------------


def test_as_batch_reshapes_flat_rows_only():
    shape = (3, 32, 32)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    np.testing.assert_array_equal(as_batch(x, shape), x)
    np.testing.assert_array_equal(as_batch(x.reshape(2, -1), shape), x)
    with pytest.raises(DataError, match=r"\(32, 32, 3\).*x\.transpose\(0, 3, 1, 2\)") as info:
        as_batch(x.transpose(0, 2, 3, 1), shape)  # channels last: never reshaped
    assert "\n" not in str(info.value) and str(info.value).endswith(".")
    with pytest.raises(DataError, match=r"shape \(32, 3, 32\); the ensemble takes \(3, 32, 32\)"):
        as_batch(x.transpose(0, 2, 1, 3), shape)


def test_channels_last_inputs_are_refused_not_scrambled(default_export):
    model = load_ensemble(default_export)
    x = np.zeros((2, 40, 1), dtype=np.float32)  # the members take (1, 40)
    for call in (model.normalize, model.predict_proba, lambda a: model(torch.from_numpy(a))):
        with pytest.raises(DataError, match=r"transpose\(0, 2, 1\)"):
            call(x)


def test_predict_csv_takes_the_recorded_columns_by_name(csv_pool, tmp_path, capsys):
    pool_dir, ds, test_csv = csv_pool
    target = export_ensemble(pool_dir, tmp_path / "ens", members=["m"])
    manifest = read_manifest(target)
    assert manifest["columns"] == CSV_FEATURES and manifest["label_column"] == "class"
    expected = load_ensemble(target)(ds.x_test).detach().numpy()
    header, *body = [line.split(",") for line in test_csv.read_text().split()]
    order = [6, 2, 0, 5, 1, 3, 4]
    shuffled = tmp_path / "shuffled.csv"  # columns reordered, and an extra text column
    write_rows(
        shuffled,
        ["note", *[header[j] for j in order]],
        [["n/a"] + [r[j] for j in order] for r in body],
    )
    for path in (test_csv, shuffled):  # the label column is left in: no --label-column
        out_file = tmp_path / f"p_{path.stem}.npy"
        code, _, err = run(capsys, "predict", str(target), str(path), "--out", str(out_file))
        assert code == 0, err
        np.testing.assert_allclose(np.load(out_file), expected, atol=ATOL, err_msg=path.name)
    keep = [j for j, name in enumerate(header) if name != "f3"]
    write_rows(
        tmp_path / "short.csv", [header[j] for j in keep], [[r[j] for j in keep] for r in body]
    )
    code, _, err = run(
        capsys,
        "predict",
        str(target),
        str(tmp_path / "short.csv"),
        "--out",
        str(tmp_path / "p.npy"),
    )
    one_sentence_error(code, err)
    assert "'f3'" in err and not (tmp_path / "p.npy").exists()


def test_headerless_csv_drops_the_recorded_label_index(tmp_path):
    write_rows(tmp_path / "l.csv", None, [[1.0, 7, 2.0, 3.0], [4.0, 8, 5.0, 6.0]])
    assert read_inputs(tmp_path / "l.csv", label=1, size=3).tolist() == [[1, 2, 3], [4, 5, 6]]
    write_rows(tmp_path / "f.csv", None, [[1.0, 2.0, 3.0]])
    assert read_inputs(tmp_path / "f.csv", label=1, size=3).tolist() == [[1, 2, 3]]
    write_rows(tmp_path / "s.csv", None, [[1.0, "slow", 2.0, 3.0]])  # a class name: no header
    assert read_inputs(tmp_path / "s.csv", label=1, size=3).tolist() == [[1, 2, 3]]
    by_option = read_inputs(tmp_path / "l.csv", label_column="0", label=1, size=3)  # it overrides
    assert by_option.tolist() == [[7, 2, 3], [8, 5, 6]]


def test_team_of_a_real_report(trained_pool, tmp_path, capsys):
    from lrensemble.ensemble import EnsembleConfig
    from lrensemble.report import build_report

    # a pool of mixed architectures: Figure 7a leaves their pairs blank
    pool_dir = trained_pool[0]
    results = build_report(pool_dir, tmp_path / "report", EnsembleConfig(min_relative_accuracy=0.0))
    assert "parameter_similarity" in results["figures"]
    team = json.loads((tmp_path / "report" / "results.json").read_text())["chosen_ensemble"]
    for name in ("results.json", "chosen_ensemble.json"):
        target = tmp_path / name.split(".")[0]
        team_file = str(tmp_path / "report" / name)
        code, _, err = run(
            capsys, "export", str(pool_dir), "--out", str(target), "--team", team_file
        )
        assert code == 0, (name, err)
        manifest = read_manifest(target)
        assert [m["id"] for m in manifest["members"]] == team["members"], name
        assert [m["weight"] for m in manifest["members"]] == pytest.approx(team["weights"])
        assert manifest["temperature"] == pytest.approx(team["temperature"])


def test_predict_warns_when_no_normalization_is_recorded(
    trained_pool, default_export, tmp_path, capsys
):
    target = copy_export(default_export, tmp_path / "ens")
    manifest = json.loads((target / ENSEMBLE_JSON).read_text())
    manifest["normalization"] = None  # as exports of pools made before it was recorded
    (target / ENSEMBLE_JSON).write_text(json.dumps(manifest))
    np.save(tmp_path / "x.npy", trained_pool[1].x_test.numpy())
    args = ["predict", str(target), str(tmp_path / "x.npy"), "--out", str(tmp_path / "p.npy")]
    code, _, err = run(capsys, *args)
    assert code == 0 and err.startswith("warning: ") and "no input normalization" in err, err
    code, _, err = run(capsys, *args, "--normalized")
    assert code == 0 and err == "", err


def test_a_team_file_of_another_pool_is_refused(trained_pool, tmp_path, capsys):
    pool_dir = trained_pool[0]
    pool = Pool.open(pool_dir)
    (tmp_path / "preds").mkdir()
    for split in ("val", "test"):  # the same member ids, other validation labels
        y = pool.labels(split)
        np.save(tmp_path / f"y_{split}.npy", (y + 1) % 3 if split == "val" else y)
        for member in pool.member_ids():
            np.save(tmp_path / "preds" / f"{member}_{split}.npy", pool.probs(split, [member])[0])
    labels = {s: tmp_path / f"y_{s}.npy" for s in ("val", "test")}
    import_predictions(tmp_path / "other", labels, str(tmp_path / "preds" / "{member}_{split}.npy"))
    chosen = ChosenEnsemble("focal", "nll", ["c8a", "mlp"], [0.5, 0.5], temperature=1.3)
    team = {
        **chosen.to_dict(),
        "pool": str(pool_dir.resolve()),
        "val_labels_sha256": pool.info["labels_sha256"]["val"],
    }
    (tmp_path / "team.json").write_text(json.dumps(team))
    (tmp_path / "results.json").write_text(json.dumps({"chosen_ensemble": team}))
    for name in ("team.json", "results.json"):
        args = ["export", str(tmp_path / "other"), "--out", str(tmp_path / "ens"), "--team"]
        code, _, err = run(capsys, *args, str(tmp_path / name))
        one_sentence_error(code, err)
        assert f"was chosen on another pool ({pool_dir.resolve()}); choose on this pool" in err
        assert not (tmp_path / "ens").exists()
    export_ensemble(pool_dir, tmp_path / "ens", team_file=tmp_path / "team.json")  # its own pool
    assert read_manifest(tmp_path / "ens")["temperature"] == 1.3
    (tmp_path / "hand.json").write_text(json.dumps(chosen.to_dict()))  # no checksum: as it is
    export_ensemble(tmp_path / "other", tmp_path / "ens2", team_file=tmp_path / "hand.json")
    assert read_manifest(tmp_path / "ens2")["temperature"] == 1.3


def test_predict_a_headerless_copy_of_a_named_csv(csv_pool, tmp_path, capsys):
    pool_dir, ds, test_csv = csv_pool
    target = export_ensemble(pool_dir, tmp_path / "ens", members=["m"])
    expected = load_ensemble(target)(ds.x_test).detach().numpy()
    body = test_csv.read_text().split("\n", 1)[1]
    assert body.split(",")[2] in CLASSES  # a class name in the first row
    (tmp_path / "bare.csv").write_text(body)
    out_file = tmp_path / "p.npy"
    code, _, err = run(
        capsys, "predict", str(target), str(tmp_path / "bare.csv"), "--out", str(out_file)
    )
    assert code == 0 and err == "", err
    np.testing.assert_allclose(np.load(out_file), expected, atol=ATOL)


def test_predict_warns_when_a_header_is_read_by_position(csv_pool, tmp_path, capsys):
    pool_dir, ds, test_csv = csv_pool
    target = export_ensemble(pool_dir, tmp_path / "ens", members=["m"])
    expected = load_ensemble(target)(ds.x_test).detach().numpy()
    manifest = json.loads((target / ENSEMBLE_JSON).read_text())
    manifest.update(columns=None, label_column=2)  # as if trained on a CSV without a header
    (target / ENSEMBLE_JSON).write_text(json.dumps(manifest))
    out_file = tmp_path / "p.npy"
    code, _, err = run(capsys, "predict", str(target), str(test_csv), "--out", str(out_file))
    assert code == 0, err
    assert err.startswith("warning: ") and err.count("\n") == 1, err
    assert "columns are taken by position" in err and "without column names" in err
    np.testing.assert_allclose(np.load(out_file), expected, atol=ATOL)


def test_predict_refuses_an_out_file_other_than_npy_before_predicting(tmp_path, capsys):
    for name in ("preds.csv", "preds.txt", "preds"):
        args = ["predict", str(tmp_path / "no-ensemble"), str(tmp_path / "no.npy")]
        code, _, err = run(capsys, *args, "--out", str(tmp_path / name))
        one_sentence_error(code, err)
        assert "give a file name ending in .npy" in err, err
    assert list(tmp_path.iterdir()) == []
