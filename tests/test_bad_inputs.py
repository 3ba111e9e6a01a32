"""Every `lrens` command over a table of malformed inputs.

Each case runs one command in-process inside a copy of a small workspace (configs, pools,
an exported ensemble, data and prediction files, good and broken) and asserts what a user
must see: exit status 2, one line on stderr starting `error: `, no traceback, no warning, and
no file of the workspace changed or left behind. Cases that fail today are marked xfail
(strict) with the module that needs the fix.
"""

from __future__ import annotations

import os
import shlex
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from lrensemble.cli.main import main

GOOD_TRAIN = """
[data]
name = "npz"
path = "data.npz"

[model]
name = "mlp"
hidden = [8]

[policy]
name = "constant"
max_lr = 0.05

[train]
epochs = 1
batch_size = 16
"""

GOOD_SWEEP = """
[data]
name = "npz"
path = "data.npz"

[model]
name = "mlp"
hidden = [8]

[train]
epochs = 1
batch_size = 16

[search]
method = "grid"
policies = [{ name = "constant", max_lr = 0.05 }, { name = "constant", max_lr = 0.1 }]
"""

TPE_NEGATIVE_SEED = (
    GOOD_SWEEP.split("[search]")[0]
    + """
[search]
method = "tpe"
trials = 1

[search.space]
policies = ["constant"]
max_lr = [0.01, 0.1]

[study]
seed = -1
"""
)


def _dataset_arrays(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 6)).astype(np.float32) + y[:, None]
    return x, y


def _write_pool(root: Path, members: int = 3, n: int = 40) -> None:
    from lrensemble.pool import Pool

    rng = np.random.default_rng(0)
    labels = {s: rng.integers(0, 3, n) for s in ("val", "test")}
    pool = Pool.create(root, labels, 3, "toy")
    for i in range(members):
        probs = {s: rng.dirichlet(np.ones(3), size=n) for s in labels}
        record = {"method": "lr_tuning", "epochs": 10, "policy": {"name": "cosine", "max_lr": 0.1}}
        pool.add_member(f"m{i}", probs, record)


def _write_export(root: Path) -> None:
    """A pool of one really trained (one epoch, 48 samples) MLP, exported to root/export."""
    from lrensemble.data import from_arrays
    from lrensemble.data.normalize import Normalization
    from lrensemble.export import export_ensemble
    from lrensemble.pool import Pool
    from lrensemble.train import TrainConfig, build_model, train_member
    from lrensemble.train.batched import predict_proba_many

    rng = np.random.default_rng(1)
    (xtr, ytr), (xva, yva), (xte, yte) = (_dataset_arrays(rng, n) for n in (48, 24, 24))
    norm = Normalization.fit(xtr, per="feature")
    ds = from_arrays(
        *(norm.apply(x) if x.ndim > 1 else x for x in (xtr, ytr, xte, yte, xva, yva)),
        num_classes=3,
        name="toy",
    )
    ds.info.update(normalization=norm.to_dict())
    build = root / "build"
    pool = Pool.create(build / "pool", {"val": yva, "test": yte}, 3, ds.describe())
    spec = {"name": "mlp", "hidden": [8]}
    model = build_model("mlp", ds, 0, hidden=[8])
    config = TrainConfig(epochs=1, batch_size=16, device="cpu", checkpoint_every=0)
    result = train_member(
        model, ds, {"name": "constant", "max_lr": 0.05}, config, out_dir=build / "m", progress=False
    )
    probs = {
        s: predict_proba_many([model], ds.split(s)[0], device="cpu")[0].numpy()
        for s in ("val", "test")
    }
    record = {**result.record, "model": spec, "method": "test"}
    pool.add_member("m", probs, record, weights=build / "m" / "model.safetensors")
    export_ensemble(build / "pool", root / "export", members=["m"])
    shutil.rmtree(build)


def _truncate(path: Path, keep: int = 20) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The workspace every case starts from (copied, so no case sees another's leftovers)."""
    w = tmp_path_factory.mktemp("bad-inputs")
    rng = np.random.default_rng(0)
    # configs
    (w / "train.toml").write_text(GOOD_TRAIN)
    (w / "sweep.toml").write_text(GOOD_SWEEP)
    (w / "garbage.toml").write_bytes(bytes(range(256)) * 4)
    (w / "truncated.toml").write_text("[train]\nepochs = ")
    (w / "tpe_seed.toml").write_text(TPE_NEGATIVE_SEED)
    (w / "dir.toml").mkdir()
    (w / "blocker").write_text("a file in the way\n")
    (w / "out_dir").mkdir()
    (w / "empty_dir").mkdir()
    # data
    (xtr, ytr), (xte, yte) = _dataset_arrays(rng, 60), _dataset_arrays(rng, 30)
    np.savez(w / "data.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    (w / "garbage.npz").write_bytes(b"PK\x03\x04 not really a zip file")
    np.savez(w / "pickled.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    np.savez(w / "nokeys.npz", a=np.zeros(3))
    (w / "notes.txt").write_text("hello\n")
    (w / "ragged.csv").write_text("a,b,label\n1,2,0\n3\n4,5,1\n")
    np.save(w / "zero_d.npy", np.array(3.0))
    zero = {k: np.array(1.0) for k in ("x_train", "y_train", "x_test", "y_test")}
    np.savez(w / "zero_d.npz", **zero)
    # pools
    _write_pool(w / "pool")
    (w / "notpool").mkdir()
    for name, text in {
        "pool_list": "[]",
        "pool_string": '"a pool"',
        "pool_truncated": '{"format": 1, "num_cl',
    }.items():
        (w / name).mkdir()
        (w / name / "pool.json").write_text(text)
    shutil.copytree(w / "pool", w / "pool_classes")
    info = w / "pool_classes" / "pool.json"
    info.write_text(info.read_text().replace('"num_classes": 3', '"num_classes": "3"'))
    shutil.copytree(w / "pool", w / "pool_npy")
    _truncate(w / "pool_npy" / "labels" / "val.npy")
    shutil.copytree(w / "pool", w / "pool_member")
    _truncate(w / "pool_member" / "members" / "m1" / "val.npy")
    shutil.copytree(w / "pool", w / "pool_record")
    (w / "pool_record" / "members" / "m1" / "member.json").write_text("[1, 2]")
    # predictions to import
    (w / "preds").mkdir()
    (w / "labels").mkdir()
    y = rng.integers(0, 3, 20)
    np.save(w / "labels" / "y_val.npy", y)
    np.save(w / "labels" / "y_float.npy", y + 0.5)
    np.save(w / "labels" / "y_neg.npy", y - 5)
    for m in ("a", "b"):
        np.save(w / "preds" / f"{m}_val.npy", rng.dirichlet(np.ones(3), size=20))
    (w / "bad_preds").mkdir()
    nan = rng.dirichlet(np.ones(3), size=20)
    nan[0, 0] = np.nan
    np.save(w / "bad_preds" / "nan_val.npy", nan)
    (w / "neg_preds").mkdir()
    np.save(w / "neg_preds" / "n_val.npy", -rng.dirichlet(np.ones(3), size=20))
    (w / "short_preds").mkdir()
    np.save(w / "short_preds" / "s_val.npy", rng.dirichlet(np.ones(3), size=7))
    (w / "zero_preds").mkdir()
    np.save(w / "zero_preds" / "z_val.npy", np.array(0.5))
    (w / "cut_preds").mkdir()
    np.save(w / "cut_preds" / "c_val.npy", rng.dirichlet(np.ones(3), size=20))
    _truncate(w / "cut_preds" / "c_val.npy", 100)
    # an exported ensemble and inputs to predict
    _write_export(w)
    (w / "export_garbage").mkdir()
    (w / "export_garbage" / "ensemble.json").write_text("{ not json")
    (w / "export_list").mkdir()
    (w / "export_list" / "ensemble.json").write_text("[]")
    np.save(w / "inputs.npy", _dataset_arrays(rng, 5)[0])
    np.save(w / "inputs_shape.npy", np.zeros((5, 7), dtype=np.float32))
    np.save(w / "inputs_nan.npy", np.full((5, 6), np.nan, dtype=np.float32))
    np.save(w / "inputs_cut.npy", np.zeros((50, 6), dtype=np.float32))
    _truncate(w / "inputs_cut.npy", 150)
    (w / "inputs_garbage.csv").write_bytes(b"\x00\x01\x02,\xff\n\x03")
    np.savez(w / "inputs.npz", x=np.zeros((5, 6), dtype=np.float32))
    # team files
    (w / "team_list.json").write_text("[]")
    (w / "team_garbage.json").write_text("{ nope")
    with zipfile.ZipFile(w / "team.zip", "w") as z:
        z.writestr("x", "y")
    return w


def _snapshot(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every path under root: (mtime, size) of files, None for directories."""
    tree: dict[str, tuple[int, int] | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            tree[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            st = os.stat(os.path.join(dirpath, f))
            tree[os.path.relpath(os.path.join(dirpath, f), root)] = (st.st_mtime_ns, st.st_size)
    return tree


# (id, command line). Paths are relative to the workspace (the current directory); `@` starts
# the text of a config file (up to ` --`), written to case.toml.
IMPORT = "pool import new --labels val=labels/y_val.npy --probs"
EACH = "{member}_{split}.npy"
CASES: list[tuple[str, str]] = [
    # --- demo
    ("demo-epochs-zero", "demo --epochs 0"),
    ("demo-epochs-negative", "demo --epochs -3"),
    ("demo-epochs-absurd", "demo --epochs 1000000000000000000000000000000"),
    ("demo-epochs-text", "demo --epochs many"),
    ("demo-seed-negative", "demo --seed -1"),
    ("demo-seed-absurd", "demo --seed 99999999999999999999999"),
    ("demo-out-file", "demo --out blocker --epochs 1"),
    ("demo-out-under-file", "demo --out blocker/run --epochs 1"),
    ("demo-unknown-option", "demo --fast"),
    # --- run
    ("run-config-missing", "run nothing.toml --out r"),
    ("run-config-garbage", "run garbage.toml --out r"),
    ("run-config-truncated", "run truncated.toml --out r"),
    ("run-config-directory", "run dir.toml --out r"),
    ("run-unknown-table", "run @[trian]\nepochs = 1 --out r"),
    ("run-unknown-ensemble-method", "run @[ensemble]\nmethod = 'best' --out r"),
    ("run-ensemble-size-negative", "run @[ensemble]\nsize = -2 --out r"),
    ("run-ensemble-floor-nan", "run @[ensemble]\nmin_relative_accuracy = nan --out r"),
    ("run-weight-decay-inf", "run @[train]\nweight_decay = inf --out r"),
    ("run-epochs-absurd", "run @[train]\nepochs = 1000000000000 --out r"),
    ("run-scale-nan", "run @[search]\ngrid = 'table1'\nscale = nan --out r"),
    ("run-policy-max-lr-nan", "run @[search]\npolicies = [{name='cosine', max_lr=nan}] --out r"),
    ("run-unknown-policy", "run @[search]\npolicies = [{name='cosin', max_lr=0.1}] --out r"),
    ("run-unknown-model", "run @[model]\nname = 'vgg' --out r"),
    ("run-model-channels-wide", "run @[model]\nname = 'cnn1d'\nchannels = 'wide' --out r"),
    ("run-heartbeat-inf", "run @[study]\nheartbeat_seconds = inf --out r"),
    ("run-data-missing", "run --data missing.npz --out r"),
    ("run-data-garbage", "run --data garbage.npz --out r"),
    ("run-data-pickled", "run --data pickled.npz --out r"),
    ("run-data-no-keys", "run --data nokeys.npz --out r"),
    ("run-data-unknown-kind", "run --data notes.txt --out r"),
    ("run-data-empty-folder", "run --data empty_dir --out r"),
    ("run-data-bad-split", "run --data training=data.npz --out r"),
    ("run-data-no-path", "run --data train= --out r"),
    ("run-data-twice", "run --data train=a.csv --data train=b.csv --out r"),
    ("run-data-ragged-csv", "run --data ragged.csv --out r"),
    ("run-data-zero-d", "run --data zero_d.npz --out r"),
    ("run-data-unknown-model", "run --data data.npz --model vgg --out r"),
    ("run-epochs-negative", "run --epochs -1 --out r"),
    ("run-seed-negative", "run --seed -1 --out r"),
    ("run-out-file", "run sweep.toml --out blocker"),
    ("run-out-under-file", "run sweep.toml --out blocker/r"),
    # --- tune
    ("tune-config-missing", "tune nothing.toml --out t"),
    ("tune-config-garbage", "tune garbage.toml --out t"),
    ("tune-config-truncated", "tune truncated.toml --out t"),
    ("tune-policy-table", "tune @[policy]\nname = 'cosine' --out t"),
    ("tune-trials-zero", "tune sweep.toml --trials 0 --out t"),
    ("tune-epochs-zero", "tune sweep.toml --epochs 0 --out t"),
    ("tune-seed-negative", "tune sweep.toml --seed -5 --out t"),
    ("tune-grace-below-heartbeat", "tune @[study]\nheartbeat_seconds = 50 --out t"),
    ("tune-study-seed-negative", "tune tpe_seed.toml --out t"),
    ("tune-batch-members-zero", "tune @[study]\nbatch_members = 0 --out t"),
    ("tune-grid-and-policies", "tune @[search]\ngrid = 'table1'\npolicies = [] --out t"),
    ("tune-out-file", "tune sweep.toml --out blocker"),
    ("tune-out-under-file", "tune sweep.toml --out blocker/t"),
    # --- train
    ("train-config-missing", "train nothing.toml"),
    ("train-config-garbage", "train garbage.toml"),
    ("train-config-truncated", "train truncated.toml"),
    ("train-config-directory", "train dir.toml"),
    ("train-unknown-key", "train @[train]\nlearning_rate = 0.1"),
    ("train-epochs-text", "train @[train]\nepochs = 'ten'"),
    ("train-epochs-absurd", "train @[train]\nepochs = 1000000000000000000000000000000"),
    ("train-epochs-float-nan", "train @[train]\nepochs = nan"),
    ("train-weight-decay-inf", "train @[train]\nweight_decay = inf"),
    ("train-grad-clip-inf", "train @[train]\ngrad_clip = inf"),
    ("train-momentum-nan", "train @[train]\nmomentum = nan"),
    ("train-label-smoothing-negative", "train @[train]\nlabel_smoothing = -0.1"),
    ("train-batch-size-zero", "train @[train]\nbatch_size = 0"),
    ("train-seed-absurd", "train @[train]\nseed = 99999999999999999999"),
    ("train-model-channels-wide", "train @[model]\nname = 'cnn1d'\nchannels = 'wide'"),
    ("train-model-hidden-number", "train @[model]\nname = 'mlp'\nhidden = 64"),
    ("train-model-absurd", "train @[model]\nname = 'cnn1d'\nchannels = 100000"),
    ("train-model-not-a-table", "train @model = 'cnn1d'"),
    ("train-unknown-model", "train @[model]\nname = 'vgg'"),
    ("train-unknown-policy", "train @[policy]\nname = 'onecycel'\nmax_lr = 0.1"),
    ("train-policy-max-lr-inf", "train @[policy]\nname = 'onecycle'\nmax_lr = inf"),
    ("train-policy-min-above-max", "train @[policy]\nname = 'cosine'\nmax_lr = 0.1\nmin_lr = 1.0"),
    ("train-unknown-data", "train @[data]\nname = 'imagenet'"),
    ("train-data-missing-file", "train @[data]\nname = 'npz'\npath = 'missing.npz' --out m"),
    ("train-seed-negative", "train train.toml --seed -1"),
    ("train-epochs-negative", "train train.toml --epochs -2"),
    ("train-out-file", "train train.toml --out blocker"),
    ("train-out-under-file", "train train.toml --out blocker/m"),
    # --- report
    ("report-pool-missing", "report nothing"),
    ("report-pool-file", "report blocker"),
    ("report-not-a-pool", "report notpool"),
    ("report-pool-json-list", "report pool_list"),
    ("report-pool-json-string", "report pool_string"),
    ("report-pool-json-truncated", "report pool_truncated"),
    ("report-pool-classes-string", "report pool_classes"),
    ("report-labels-truncated", "report pool_npy"),
    ("report-member-truncated", "report pool_member"),
    ("report-member-json-list", "report pool_record"),
    ("report-out-file", "report pool --out blocker"),
    ("report-out-under-file", "report pool --out blocker/report"),
    ("report-unknown-method", "report pool --method best"),
    ("report-size-zero", "report pool --size 0"),
    ("report-min-accuracy-nan", "report pool --min-accuracy nan"),
    ("report-min-relative-above-one", "report pool --min-relative-accuracy 2"),
    ("report-max-candidates-one", "report pool --max-candidates 1"),
    ("report-unknown-metric", "report pool --method focal --metric XX"),
    # --- select
    ("select-pool-missing", "select nothing"),
    ("select-not-a-pool", "select notpool"),
    ("select-pool-json-list", "select pool_list"),
    ("select-member-truncated", "select pool_member"),
    ("select-unknown-split", "select pool --split train"),
    ("select-unknown-objective", "select pool --objective loss"),
    ("select-min-accuracy-above-best", "select pool --min-accuracy 1"),
    ("select-min-accuracy-inf", "select pool --min-accuracy inf"),
    ("select-random-seed-negative", "select pool --method random --size 2 --seed -1"),
    ("select-parity-not-focal", "select pool --parity"),
    # --- evaluate
    ("evaluate-pool-missing", "evaluate nothing"),
    ("evaluate-members-empty", "evaluate pool --members ''"),
    ("evaluate-members-duplicate", "evaluate pool --members m0,m0"),
    ("evaluate-members-unknown", "evaluate pool --members m0,zz"),
    ("evaluate-weights-count", "evaluate pool --members m0,m1 --weights 1"),
    ("evaluate-weights-nan", "evaluate pool --members m0,m1 --weights nan,1"),
    ("evaluate-weights-negative", "evaluate pool --members m0,m1 --weights -1,1"),
    ("evaluate-weights-text", "evaluate pool --weights a,b,c"),
    ("evaluate-weights-inf", "evaluate pool --members m0,m1 --weights inf,1"),
    ("evaluate-weights-zero", "evaluate pool --members m0,m1 --weights 0,0"),
    ("evaluate-temperature-zero", "evaluate pool --temperature 0"),
    ("evaluate-temperature-nan", "evaluate pool --temperature nan"),
    ("evaluate-unknown-voting", "evaluate pool --voting hard"),
    ("evaluate-member-truncated", "evaluate pool_member"),
    # --- export
    ("export-pool-missing", "export nothing --out e"),
    ("export-not-a-pool", "export notpool --out e"),
    ("export-pool-json-list", "export pool_list --out e"),
    ("export-out-file", "export pool --out blocker"),
    ("export-out-under-file", "export pool --out blocker/e"),
    ("export-out-not-an-export", "export pool --out preds"),
    ("export-members-empty", "export pool --members '' --out e"),
    ("export-members-duplicate", "export pool --members m0,m0 --out e"),
    ("export-members-unknown", "export pool --members zz --out e"),
    ("export-weights-without-members", "export pool --weights 1 --out e"),
    ("export-weights-negative", "export pool --members m0,m1 --weights 1,-1 --out e"),
    ("export-team-missing", "export pool --team nothing.json --out e"),
    ("export-team-garbage", "export pool --team team_garbage.json --out e"),
    ("export-team-list", "export pool --team team_list.json --out e"),
    ("export-team-zip", "export pool --team team.zip --out e"),
    ("export-config-missing", "export pool --config nothing.toml --out e"),
    ("export-size-zero", "export pool --size 0 --out e"),
    ("export-unknown-method", "export pool --method best --out e"),
    # --- predict
    ("predict-ensemble-missing", "predict nothing inputs.npy --out p.npy"),
    ("predict-ensemble-file", "predict blocker inputs.npy --out p.npy"),
    ("predict-ensemble-not-export", "predict pool inputs.npy --out p.npy"),
    ("predict-ensemble-garbage", "predict export_garbage inputs.npy --out p.npy"),
    ("predict-ensemble-list", "predict export_list inputs.npy --out p.npy"),
    ("predict-inputs-missing", "predict export nothing.npy --out p.npy"),
    ("predict-inputs-directory", "predict export empty_dir --out p.npy"),
    ("predict-inputs-truncated", "predict export inputs_cut.npy --out p.npy"),
    ("predict-inputs-shape", "predict export inputs_shape.npy --out p.npy"),
    ("predict-inputs-nan", "predict export inputs_nan.npy --out p.npy"),
    ("predict-inputs-zero-d", "predict export zero_d.npy --out p.npy"),
    ("predict-inputs-garbage-csv", "predict export inputs_garbage.csv --out p.npy"),
    ("predict-inputs-pickled", "predict export pickled.npz --out p.npy"),
    ("predict-npz-unknown-key", "predict export inputs.npz --key z --out p.npy"),
    ("predict-key-not-npz", "predict export inputs.npy --key x --out p.npy"),
    ("predict-out-directory", "predict export inputs.npy --out out_dir"),
    ("predict-out-not-npy", "predict export inputs.npy --out p.txt"),
    ("predict-out-under-file", "predict export inputs.npy --out blocker/p.npy"),
    ("predict-batch-size-zero", "predict export inputs.npy --out p.npy --batch-size 0"),
    # --- pool import
    ("import-no-placeholders", f"{IMPORT} preds/a_val.npy"),
    ("import-labels-no-split", "pool import new --labels labels/y_val.npy --probs preds/" + EACH),
    ("import-labels-missing", "pool import new --labels val=nothing.npy --probs preds/" + EACH),
    (
        "import-labels-float",
        "pool import new --labels val=labels/y_float.npy --probs preds/" + EACH,
    ),
    (
        "import-labels-negative",
        "pool import new --labels val=labels/y_neg.npy --probs preds/" + EACH,
    ),
    (
        "import-labels-truncated",
        "pool import new --labels val=inputs_cut.npy --probs preds/" + EACH,
    ),
    (
        "import-bad-split-name",
        "pool import new --labels ../x=labels/y_val.npy --probs preds/" + EACH,
    ),
    ("import-no-files", f"{IMPORT} nothing/" + EACH),
    ("import-probs-nan", f"{IMPORT} bad_preds/" + EACH),
    ("import-probs-negative", f"{IMPORT} neg_preds/" + EACH),
    ("import-probs-short", f"{IMPORT} short_preds/" + EACH),
    ("import-probs-truncated", f"{IMPORT} cut_preds/" + EACH),
    ("import-probs-zero-d", f"{IMPORT} zero_preds/" + EACH),
    ("import-labels-zero-d", "pool import new --labels val=zero_d.npy --probs preds/" + EACH),
    ("import-pool-is-file", f"{IMPORT.replace(' new ', ' blocker ')} preds/" + EACH),
    ("import-pool-under-file", f"{IMPORT.replace(' new ', ' blocker/p ')} preds/" + EACH),
    ("import-into-other-pool", f"{IMPORT.replace(' new ', ' pool ')} preds/" + EACH),
    # --- pool show
    ("show-pool-missing", "pool show nothing"),
    ("show-not-a-pool", "pool show notpool"),
    ("show-pool-json-list", "pool show pool_list"),
    ("show-pool-classes-string", "pool show pool_classes"),
    ("show-member-json-list", "pool show pool_record"),
    ("show-unknown-sort", "pool show pool --sort val_f1"),
    # --- policies, models, data
    ("policies-list-extra", "policies list extra"),
    ("policies-grid-unknown", "policies grid table9"),
    ("policies-grid-scale-nan", "policies grid --scale nan"),
    ("policies-grid-scale-zero", "policies grid --scale 0"),
    ("policies-plot-epochs-nan", "policies plot --epochs nan -o p.png"),
    ("policies-plot-epochs-inf", "policies plot --epochs inf -o p.png"),
    ("policies-plot-epochs-absurd", "policies plot --epochs 1e12 -o p.png"),
    ("policies-plot-epochs-negative", "policies plot --epochs -5 -o p.png"),
    ("policies-plot-out-txt", "policies plot -o p.txt"),
    ("policies-plot-out-directory", "policies plot -o out_dir"),
    ("policies-plot-out-under-file", "policies plot -o blocker/p.png"),
    ("policies-plot-config-missing", "policies plot --config nothing.toml -o p.png"),
    ("policies-plot-config-garbage", "policies plot --config garbage.toml -o p.png"),
    ("policies-plot-not-a-pool", "policies plot --pool notpool -o p.png"),
    ("policies-plot-pool-list", "policies plot --pool pool_list -o p.png"),
    ("policies-plot-two-sources", "policies plot --grid table1 --pool pool -o p.png"),
    ("policies-top-no-storage", "policies top --dataset toy --model mlp"),
    ("policies-top-no-study", "policies top --dataset toy --model mlp --out notpool"),
    ("policies-top-n-zero", "policies top --dataset toy --model mlp --storage x.db -n 0"),
    ("models-list-extra", "models list extra"),
    ("data-list-extra", "data list extra"),
    ("data-prepare-unknown", "data prepare imagenet"),
    ("data-prepare-root-missing", "data prepare cifar10 --root nothing"),
    ("data-prepare-missing", "data prepare --data missing.npz"),
    ("data-prepare-garbage", "data prepare --data garbage.npz"),
    ("data-prepare-pickled", "data prepare --data pickled.npz"),
    ("data-prepare-no-path", "data prepare --data train="),
    ("data-prepare-ragged-csv", "data prepare --data ragged.csv"),
    ("data-prepare-zero-d", "data prepare --data zero_d.npz"),
    ("data-prepare-empty-folder", "data prepare --data empty_dir"),
    # --- the command line itself
    ("unknown-command", "frobnicate"),
    ("unknown-option", "train --fast"),
]

# Cases that fail today, with the module that needs the fix.
XFAIL: dict[str, str] = {}


def _argv(line: str, workspace: Path) -> list[str]:
    """The arguments of a case; `@TOML ...` writes TOML (up to the first ` --`) to case.toml,
    whose path takes its place."""
    if "@" in line:
        head, _, rest = line.partition("@")
        toml, sep, options = rest.partition(" --")
        (workspace / "case.toml").write_text(toml.replace("\\n", "\n") + "\n")
        return [*shlex.split(head), "case.toml", *shlex.split(sep.strip() + options)]
    return shlex.split(line)


def _run(argv: list[str], capsys) -> tuple[int | str, str, str, list[str]]:
    """(exit status or the uncaught exception, stdout, stderr, warnings shown to a user)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for quiet in (
            DeprecationWarning,
            PendingDeprecationWarning,
            ImportWarning,
            ResourceWarning,
        ):
            warnings.simplefilter("ignore", quiet)
        try:
            main(argv)
            code: int | str = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # a traceback for a user
            code = f"Traceback: {type(exc).__name__}: {exc}"
    captured = capsys.readouterr()
    shown = [f"{w.category.__name__}: {w.message}" for w in caught]
    return code, captured.out, captured.err, shown


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(line, id=case, marks=pytest.mark.xfail(strict=True, reason=XFAIL[case]))
        if case in XFAIL
        else pytest.param(line, id=case)
        for case, line in CASES
    ],
)
def test_bad_input_is_one_sentence_and_changes_nothing(
    line, template, tmp_path, capsys, monkeypatch
):
    workspace = tmp_path / "w"
    shutil.copytree(template, workspace)
    monkeypatch.chdir(workspace)
    argv = _argv(line, workspace)
    before = _snapshot(workspace)
    code, _, err, shown = _run(argv, capsys)
    after = _snapshot(workspace)
    assert code == 2, f"exit {code}; stderr: {err!r}"
    assert "Traceback" not in err and not shown, f"{shown} {err!r}"
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert after == before, f"changed: {sorted(set(after.items()) ^ set(before.items()))}"


def test_the_table_is_large_and_covers_every_command():
    commands = {
        "demo", "run", "report", "tune", "train", "policies list", "policies grid",
        "policies plot", "policies top", "models list", "data list", "data prepare",
        "pool import", "pool show", "select", "evaluate", "export", "predict",
    }  # fmt: skip
    covered = set()
    for _, line in CASES:
        words = line.split()
        grouped = words[0] in ("policies", "models", "data", "pool")
        covered.add(" ".join(words[:2]) if grouped else words[0])
    assert commands <= covered and len(CASES) >= 100
