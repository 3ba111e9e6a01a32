"""The `lrens` command: listings, plots, training from configs, and one-sentence errors."""

from __future__ import annotations

import json
import subprocess
import sys

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
