"""The `lrens` command: listings, plots, training from configs, and one-sentence errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lrensemble.cli.main import main


def run(capsys, *args):
    """Run `lrens ARGS` in-process; return (exit status, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_and_version(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "train" in out and "policies" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("lrens ")


def test_python_dash_m_is_the_same_command():
    proc = subprocess.run(
        [sys.executable, "-m", "lrensemble", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("lrens ")


def test_policy_model_and_data_listings(capsys):
    code, out, _ = run(capsys, "policies", "list")
    assert code == 0 and "composite" in out and "warmup_cosine" in out
    code, out, _ = run(capsys, "policies", "grid", "table1", "--scale", "0.01", "--json")
    specs = json.loads(out)
    assert len(specs) == 16 and specs[0]["max_lr"] == pytest.approx(0.002)
    code, out, _ = run(capsys, "models", "list")
    assert code == 0 and "lenet_m" in out and "wrn" in out
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "cifar100" in out and "mnist1d" in out


def test_policies_plot_writes_a_png(capsys, tmp_path):
    target = tmp_path / "fig6.png"
    code, _, _ = run(capsys, "policies", "plot", "--out", str(target), "--epochs", "100")
    assert code == 0 and target.read_bytes()[:4] == b"\x89PNG"


def test_train_from_config_writes_a_member_and_reuses_it(capsys, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        '[model]\nname = "cnn1d"\nchannels = 16\n'
        '[policy]\nname = "multistep"\nmax_lr = 0.05\n'
        "[train]\nepochs = 2\n"
    )
    code, out, _ = run(
        capsys, "train", str(config), "--out", str(tmp_path / "m"), "--json", "--no-progress"
    )
    assert code == 0
    record = json.loads(out)
    assert record["status"] == "complete" and record["epochs_completed"] == 2
    assert record["model"] == {"name": "cnn1d", "channels": 16}
    assert (tmp_path / "m" / "model.safetensors").exists()
    code, out2, _ = run(capsys, "train", str(config), "--out", str(tmp_path / "m"), "--json")
    assert code == 0 and json.loads(out2)["metrics"] == record["metrics"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x = ", "not valid TOML"),
        ("[trian]\nepochs = 1\n", "trian: unknown key"),
        ('[train]\nepochs = "ten"\n', "train.epochs: Input should be a valid integer"),
        ("[train]\nepochs = -1\n", "train.epochs: Input should be greater than 0"),
        ('[train]\noptimizer = "adam"\n', "train.optimizer"),
        ('[policy]\nname = "onecycel"\nmax_lr = 0.1\n', "Did you mean 'onecycle'"),
        ('[policy]\nname = "onecycle"\nmax_lr = -0.1\n', "max_lr must be > 0"),
        (
            '[policy]\nname = "multistep"\nmax_lr = 0.1\nmilestones = [0.8, 0.3]\n',
            "strictly increasing",
        ),
        ('[model]\nname = "cnn1d"\nwidth = 3\n', "no parameter 'width'"),
        ('[model]\nname = "vgg"\n', "Unknown model 'vgg'"),
        ('[data]\nname = "cifar10"\nroot = "/nonexistent"\n', "CIFAR-10 was not found"),
        ("[data]\nval_fraction = 0.2\n", "needs a string 'name'"),
    ],
)
def test_bad_configs_fail_with_one_sentence_and_status_2(capsys, tmp_path, text, fragment):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code, _, err = run(capsys, "train", str(config), "--out", str(tmp_path / "o"))
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_missing_config_file(capsys, tmp_path):
    code, _, err = run(capsys, "train", str(tmp_path / "nope.toml"))
    assert code == 2 and "does not exist" in err


def test_diverged_run_exits_1_and_says_so(capsys, tmp_path):
    config = tmp_path / "hot.toml"
    config.write_text('[policy]\nname = "constant"\nmax_lr = 10000.0\n[train]\nepochs = 1\n')
    code, out, _ = run(capsys, "train", str(config), "--no-progress")
    assert code == 1 and "diverged" in out


def test_errors_from_a_real_process_have_no_traceback(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[policy]\nname = "cosine"\nmax_lr = 0.1\nmin_lr = 0.5\n')
    proc = subprocess.run(
        [sys.executable, "-m", "lrensemble", "train", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "min_lr (0.5) must not exceed max_lr (0.1)" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["train", "--epochs", "abc"], "Invalid value for '--epochs'"),
        (["train", "--bogus"], "No such option: --bogus"),
        (["report"], "Missing argument 'pool'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["policies", "list", "extra"], "unexpected extra argument"),
    ],
)
def test_usage_errors_are_one_line(capsys, args, fragment):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and fragment in err and err.count("\n") == 1
    assert err.rstrip().endswith("--help'.")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[model]\nname = "cnn1d"\nchannels = "wide"\n', "channels must be an integer, got 'wide'"),
        ('[model]\nname = "mlp"\nhidden = 64\n', "hidden must be a list of integers"),
        ("[train]\nweight_decay = inf\n", "train.weight_decay: Input should be a finite number"),
        ("[train]\ngrad_clip = inf\n", "train.grad_clip: Input should be a finite number"),
        ("[train]\nepochs = 1000000000000000000000000000000\n", "less than or equal to 1000000"),
        ("[train]\nseed = -1\n", "train.seed: Input should be greater than or equal to 0"),
    ],
)
def test_bad_values_in_a_config_are_one_sentence(capsys, tmp_path, text, fragment):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code, _, err = run(capsys, "train", str(config), "--out", str(tmp_path / "o"))
    assert code == 2 and fragment in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_seed_and_epochs_options_are_named(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--seed", "-1", "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("error: --seed: ")
    code, _, err = run(capsys, "train", "--epochs", "2000000", "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("error: --epochs: ")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_train_out_that_cannot_hold_a_member(capsys, tmp_path, where):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    target = blocker if where == "file" else blocker / "sub" / "m"
    code, _, err = run(capsys, "train", "--epochs", "1", "--out", str(target), "--no-progress")
    assert code == 2 and err.startswith("error: --out ") and "is a file" in err
    assert err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["taken"] and blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_train_out_not_writable(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, _, err = run(capsys, "train", "--epochs", "1", "--out", str(locked / "m"))
    assert code == 2 and "is not writable" in err and not (locked / "m").exists()


def test_ctrl_c_during_training_says_how_to_resume(mnist1d, tmp_path):
    """SIGINT while `lrens train` trains: the resume line on stderr, status 130, and the
    checkpoint kept for the rerun."""
    config = tmp_path / "long.toml"
    config.write_text('[model]\nname = "mlp"\nhidden = [8]\n[train]\nepochs = 100000\n')
    out = tmp_path / "m"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lrensemble", "train", str(config), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.safetensors").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (out / "checkpoint.safetensors").exists(), "training did not start"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err == "interrupted; rerun the same command to resume.\n"
    assert (out / "checkpoint.safetensors").exists() and not (out / "member.json").exists()


def test_weights_near_the_float_limit_overflow_nothing(capsys, tmp_path):
    """`--weights 1e308,1e308` are equal weights: no overflow RuntimeWarning, then no error."""
    import warnings

    import numpy as np

    from lrensemble.pool import Pool

    rng = np.random.default_rng(0)
    pool = Pool.create(tmp_path / "pool", {"val": rng.integers(0, 3, 20)}, 3)
    for m in ("a", "b"):
        pool.add_member(m, {"val": rng.dirichlet(np.ones(3), size=20)}, {"method": "test"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err = run(
            capsys, "evaluate", str(tmp_path / "pool"), "--members", "a,b", "--weights",
            "1e308,1e308", "--json",
        )  # fmt: skip
    assert code == 0 and err == "" and json.loads(out)["weights"] == [0.5, 0.5]
