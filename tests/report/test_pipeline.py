"""`lrens run`, `lrens report` and `lrens demo` end to end on tiny settings: the report's
files exist, its figures are PNGs, and its numbers are those of results.json."""

from __future__ import annotations

import json
import re
import shutil

import matplotlib.image
import numpy as np
import pytest

from lrensemble.report.markdown import pct
from tests.cli.test_cli import run

CONFIG = """
[data]
name = "mnist1d"

[model]
name = "cnn1d"
channels = 8

[train]
epochs = 2
seed = 0

[search]
method = "grid"
policies = [
  { name = "onecycle", max_lr = 0.2 },
  { name = "multistep", max_lr = 0.1 },
  { name = "warmup_cosine", max_lr = 0.1 },
  { name = "cosine", max_lr = 0.05 },
  { name = "linear", max_lr = 0.1 },
  { name = "constant", max_lr = 100.0 },  # diverges: listed as a trial without a member
]

[study]
batch_members = 6

[ensemble]
method = "greedy"
min_accuracy = 0.0
min_relative_accuracy = 0.0
"""

FIGURES = (
    "fig6_lr_policies.png",
    "fig4_team_accuracy.png",
    "fig7b_diversity_vs_accuracy.png",
    "fig7a_parameter_similarity.png",
)


def table(markdown: str, heading: str, which: int = 0) -> list[list[str]]:
    """Rows (cells) of the `which`-th Markdown table under a heading starting with
    `heading` (a table is a run of lines starting with "|")."""
    part = markdown.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    blocks, current = [], []
    for line in [*part.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in blocks[which][2:]]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from lrensemble.cli.main import main

    tmp = tmp_path_factory.mktemp("run")
    (tmp / "run.toml").write_text(CONFIG)
    try:
        main(["run", str(tmp / "run.toml"), "--out", str(tmp / "out"), "--no-progress"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return tmp / "out"


def test_report_files_and_figures(finished_run):
    report = finished_run / "report"
    assert (report / "report.md").exists() and (report / "results.json").exists()
    for name in FIGURES:
        image = matplotlib.image.imread(report / name)
        assert image.shape[0] > 200 and image.shape[1] > 200, name


def test_report_numbers_are_those_of_results_json(finished_run):
    results = json.loads((finished_run / "report" / "results.json").read_text())
    md = (finished_run / "report" / "report.md").read_text()
    t1 = table(md, "Table 1")
    assert [r[0] for r in t1] == [m["id"] for m in results["members"]]
    for row, member in zip(t1, results["members"], strict=True):
        assert row[2] == pct(member["val"]["accuracy"])
        assert row[3] == pct(member["test"]["accuracy"])
    by_method = table(md, "Table 1", which=1)
    row, expected = results["by_method"]["lr_tuning"], by_method[0]
    assert len(by_method) == 1 and expected == [
        "lr_tuning",
        str(len(results["members"])),
        str(results["table3"]["chosen"]["size"]),
        pct(max(m["val"]["accuracy"] for m in results["members"])),
        pct(row["mean_test_accuracy"]),
        f"{row['diversity']:.1f}",
        pct(results["table3"]["entire"]["test"]["accuracy"]),  # the method's members: the pool
        f"{row['ensemble_test']['nll']:.4f}",
        f"{row['ensemble_test']['ece']:.4f}",
    ]
    t2 = table(md, "Table 2")
    assert len(t2) == len(results["table2"]["rows"]) + 2  # then the best single and the pool
    for row, expected in zip(t2[:-2], results["table2"]["rows"], strict=True):
        assert row[0] == str(expected["size"])
        assert row[1] == f"{pct(expected['random_mean'])} ± {pct(expected['random_std'])}"
        assert row[2:5] == [pct(expected[k]) for k in ("brute_force", "greedy", "focal")]
    assert t2[-2][1] == pct(results["table2"]["best_single"]["test"])
    assert t2[-1][1] == pct(results["table2"]["entire"]["test"])
    t3 = table(md, "Table 3")
    for row, key in zip(t3, ("best_single", "chosen", "entire"), strict=True):
        entry = results["table3"][key]
        assert row[1] == str(entry["size"])
        assert row[2] == pct(entry["test"]["accuracy"])
        assert row[3] == f"{entry['test']['nll']:.4f}"
    assert results["table3"]["chosen"]["method"] == "greedy"
    headline = re.search(r"chosen ensemble \(greedy, (\d+) members?\): \*\*([\d.]+)\*\*", md)
    assert headline and headline[2] == pct(results["table3"]["chosen"]["test"]["accuracy"])
    assert len(results["members"]) == 5 and results["excluded"] == []
    # Table 2's brute-force team is the best on validation among its size
    for row in results["table2"]["rows"]:
        assert row["brute_force_val"] >= row["greedy_val"] - 1e-12


def test_report_regenerates_from_the_pool_without_training(finished_run, capsys):
    events = (finished_run / "events.jsonl").read_text()
    code, out, err = run(
        capsys,
        "report",
        str(finished_run / "pool"),
        "--out",
        str(finished_run / "again"),
        "--method",
        "brute_force",
        "--size",
        "2",
        "--min-accuracy",
        "0",
        "--min-relative-accuracy",
        "0",
    )
    assert code == 0, err
    assert "chosen ensemble" in out and "brute_force, 2 members" in out
    assert (finished_run / "events.jsonl").read_text() == events
    again = json.loads((finished_run / "again" / "results.json").read_text())
    first = json.loads((finished_run / "report" / "results.json").read_text())
    assert again["table2"]["rows"] == first["table2"]["rows"]
    assert again["table3"]["chosen"]["size"] == 2


def test_run_again_reuses_the_sweep(finished_run, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(CONFIG)
    events = (finished_run / "events.jsonl").read_text()
    code, out, err = run(capsys, "run", str(config), "--out", str(finished_run), "--no-progress")
    assert code == 0, err
    assert (finished_run / "events.jsonl").read_text() == events
    assert "best single" in out


@pytest.mark.slow
def test_demo_runs_with_no_arguments_but_a_short_schedule(tmp_path, capsys):
    code, out, err = run(
        capsys, "demo", "--out", str(tmp_path / "demo"), "--epochs", "1", "--no-progress"
    )
    assert code == 0, err
    assert "[16/16]" in out and "entire pool" in out and "report.md" in out
    results = json.loads((tmp_path / "demo" / "report" / "results.json").read_text())
    assert len(results["members"]) == 16


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ('[ensemble]\nmethod = "best"\n', "ensemble.method"),
        ("[ensemble]\nsize = 0\n", "ensemble.size"),
        ("[ensemble]\nbogus = 1\n", "ensemble.bogus: unknown key"),
    ],
)
def test_bad_ensemble_tables(tmp_path, capsys, extra, fragment):
    text = CONFIG.split("[ensemble]")[0] + extra
    (tmp_path / "bad.toml").write_text(text)
    code, _, err = run(capsys, "run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "o"))
    assert code == 2 and fragment in err
    assert not (tmp_path / "o").exists()


def test_report_needs_three_members_and_both_splits(tmp_path, capsys):
    import numpy as np

    from lrensemble.pool import Pool

    pool = Pool.create(tmp_path / "p", {"val": np.arange(6) % 2, "test": np.arange(4) % 2}, 2)
    for i in range(2):
        pool.add_member(f"m{i}", {"val": np.full((6, 2), 0.5), "test": np.full((4, 2), 0.5)}, {})
    code, _, err = run(capsys, "report", str(tmp_path / "p"))
    assert code == 2 and "at least 3 complete members" in err
    Pool.create(tmp_path / "q", {"val": np.arange(6) % 2}, 2)
    code, _, err = run(capsys, "report", str(tmp_path / "q"))
    assert code == 2 and "needs a test split" in err


def test_large_pools_keep_the_best_members_as_candidates(tmp_path):
    import numpy as np

    from lrensemble.pool import Pool
    from lrensemble.report import EnsembleConfig, build_report

    rng = np.random.default_rng(0)
    yv, yt = rng.integers(0, 4, 80), rng.integers(0, 4, 60)
    pool = Pool.create(tmp_path / "pool", {"val": yv, "test": yt}, 4)
    for i in range(8):
        probs = {}
        for split, y in (("val", yv), ("test", yt)):
            z = rng.normal(size=(len(y), 4))
            z[np.arange(len(y)), y] += 0.5 + i / 3  # later members are better
            probs[split] = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        pool.add_member(f"m{i}", probs, {})
    results = build_report(
        tmp_path / "pool",
        tmp_path / "report",
        EnsembleConfig(max_candidates=5, min_accuracy=0.375, min_relative_accuracy=0.0),
    )
    assert len(results["candidates"]) == 5
    dropped = [e["id"] for e in results["excluded"] if "5 best" in e["reason"]]
    assert len(dropped) == 2 and "m7" not in dropped  # m0 is below the minimum accuracy
    assert "not among the 5 best on validation" in (tmp_path / "report" / "report.md").read_text()


def test_report_names_the_chosen_members_and_lists_them_in_sweep_order(finished_run):
    results = json.loads((finished_run / "report" / "results.json").read_text())
    md = (finished_run / "report" / "report.md").read_text()
    chosen = results["table3"]["chosen"]
    section = md.split("## The chosen ensemble", 1)[1].split("\n## ", 1)[0]
    assert all(f"| {m} |" in section for m in chosen["members"])
    assert f"temperature {chosen['temperature']:.3f}" in section
    saved = json.loads((finished_run / "report" / "chosen_ensemble.json").read_text())
    assert saved["members"] == chosen["members"] and saved["temperature"] == chosen["temperature"]
    policies = [m["policy"]["name"] for m in results["members"]]
    assert policies == ["onecycle", "multistep", "warmup_cosine", "cosine", "linear"]
    assert "chosen on validation" in md
    for key in ("best_single", "chosen", "entire"):
        entry = results["table3"][key]
        assert entry["calibrated"]["test"]["accuracy"] == entry["test"]["accuracy"]
        assert entry["calibrated"]["val"]["nll"] <= entry["val"]["nll"] + 1e-9


def test_a_report_on_imported_predictions_says_which_figures_it_omits(tmp_path):
    import numpy as np

    from lrensemble.pool import Pool
    from lrensemble.report import EnsembleConfig, build_report

    rng = np.random.default_rng(1)
    yv, yt = rng.integers(0, 3, 90), rng.integers(0, 3, 60)
    pool = Pool.create(tmp_path / "pool", {"val": yv, "test": yt}, 3)
    for i in range(4):
        probs = {}
        for split, y in (("val", yv), ("test", yt)):
            z = rng.normal(size=(len(y), 3))
            z[np.arange(len(y)), y] += 1.5
            probs[split] = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        pool.add_member(f"m{i}", probs, {"method": "import"})
    results = build_report(
        tmp_path / "pool", tmp_path / "r", EnsembleConfig(min_relative_accuracy=0.0)
    )
    md = (tmp_path / "r" / "report.md").read_text()
    assert set(results["omitted"]) == {"lr_policies", "parameter_similarity"}
    assert "Figure 6: the LR policies is omitted: the members record no LR policy" in md
    assert "Figure 7a: parameter cosine similarity of the candidates is omitted" in md
    assert "the members have no weights in the pool" in md
    assert results["diverged"] == [] and "Trials that produced no member" not in md


def test_run_on_a_csv_file_then_export_and_predict(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 6)) * 3

    def write_csv(path, n):
        y = rng.integers(0, 3, n)
        x = centers[y] + rng.normal(size=(n, 6)) + 10  # raw, unnormalized features
        rows = ["f0,f1,f2,f3,f4,f5,label"]
        rows += [",".join(f"{v:.5f}" for v in xi) + f",{yi}" for xi, yi in zip(x, y, strict=True)]
        path.write_text("\n".join(rows) + "\n")
        return x, y

    write_csv(tmp_path / "train.csv", 300)
    x_test, _ = write_csv(tmp_path / "test.csv", 80)
    out = tmp_path / "run"
    code, stdout, err = run(
        capsys,
        "run",
        "--data",
        f"train={tmp_path / 'train.csv'}",
        "--data",
        f"test={tmp_path / 'test.csv'}",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--no-progress",
    )
    assert code == 0, err
    assert "model: mlp" in stdout and "chosen ensemble (greedy" in stdout
    assert (out / "report" / "report.md").exists()
    code, _, err = run(capsys, "export", str(out / "pool"), "--out", str(tmp_path / "ens"))
    assert code == 0, err
    code, _, err = run(
        capsys,
        "predict",
        str(tmp_path / "ens"),
        str(tmp_path / "test.csv"),
        "--label-column",
        "label",
        "--out",
        str(tmp_path / "p.npy"),
    )
    assert code == 0, err
    from lrensemble.ensemble import choose_ensemble
    from lrensemble.pool import Pool

    pool = Pool.open(out / "pool")
    ids = pool.ordered_member_ids()
    team = choose_ensemble(pool.probs("val", ids), pool.labels("val"), ids, max_candidates=20)
    expected = team.combine(pool.probs("test", team.members))
    predicted = np.load(tmp_path / "p.npy")
    assert predicted.shape == (len(x_test), 3)
    assert np.allclose(predicted, expected, atol=1e-5)


def test_report_select_and_export_choose_the_same_team(finished_run, tmp_path, capsys):
    """With the default options every command reads members in sweep order (which is not
    alphabetical here) and chooses through `choose_ensemble`: one team, one temperature."""
    report = json.loads((finished_run / "report" / "chosen_ensemble.json").read_text())
    code, stdout, err = run(
        capsys,
        "select",
        str(finished_run / "pool"),
        "--min-accuracy",
        "0",
        "--min-relative-accuracy",
        "0",
        "--json",
    )
    assert code == 0, err
    selected = json.loads(stdout)
    code, _, err = run(
        capsys,
        "export",
        str(finished_run / "pool"),
        "--config",
        str(finished_run.parent / "run.toml"),
        "--out",
        str(tmp_path / "ens"),
    )
    assert code == 0, err
    manifest = json.loads((tmp_path / "ens" / "ensemble.json").read_text())
    assert selected["members"] == report["members"]
    assert [m["id"] for m in manifest["members"]] == report["members"]
    assert selected["temperature"] == pytest.approx(report["temperature"])
    assert manifest["temperature"] == pytest.approx(report["temperature"])


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("a,b,label\n1,2,0\n3,x,1\n", "not a number"),
        ("a,b,label\n1,2,0\n3,4\n", "row"),
        (None, "does not exist"),
    ],
)
def test_run_on_a_bad_file_writes_nothing(tmp_path, capsys, content, fragment):
    path = tmp_path / "train.csv"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "out"
    code, _, err = run(capsys, "run", "--data", str(path), "--out", str(out), "--no-progress")
    assert code == 2 and fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_run_with_a_model_that_cannot_take_the_images_writes_nothing(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.random((60, 1, 8, 8)).astype("float32"), rng.integers(0, 3, 60)
    np.savez(tmp_path / "d.npz", x_train=x[:50], y_train=y[:50], x_test=x[50:], y_test=y[50:])
    out = tmp_path / "out"
    code, _, err = run(
        capsys, "run", "--data", str(tmp_path / "d.npz"), "--model", "lenet_s", "--out", str(out)
    )
    assert code == 2 and "16×16" in err and not out.exists()


def test_bad_report_and_figure_paths_are_one_sentence(finished_run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    pool = str(finished_run / "pool")
    cases = [
        (["report", pool, "--out", str(blocker)], "is a file"),
        (["policies", "plot", "--pool", pool, "--out", str(blocker / "x.png")], "is a file"),
        (["policies", "plot", "--out", str(tmp_path / "p.txt")], ".png, .pdf, .svg"),
    ]
    for args, fragment in cases:
        code, _, err = run(capsys, *args)
        assert code == 2 and fragment in err and err.count("\n") == 1, (args, err)
    assert blocker.read_text() == "x" and not (tmp_path / "p.txt").exists()


def test_an_overridden_option_is_named_in_its_error(tmp_path, capsys):
    (tmp_path / "t.csv").write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(30)))
    code, _, err = run(
        capsys, "run", "--data", str(tmp_path / "t.csv"), "--epochs", "0", "--out", str(tmp_path)
    )
    assert code == 2 and err.startswith("error: --epochs: Input should be greater than 0")


def test_diverged_trials_are_listed_with_their_policy_and_epoch(finished_run):
    results = json.loads((finished_run / "report" / "results.json").read_text())
    [trial] = results["diverged"]
    assert trial["member"].startswith("constant-100") and trial["status"] == "diverged"
    assert trial["policy"] == {"name": "constant", "max_lr": 100.0}
    assert trial["epoch"] == trial["diverged_at"]["epoch"] + 1 >= 1
    assert trial["member"] not in [m["id"] for m in results["members"]]
    md = (finished_run / "report" / "report.md").read_text()
    [row] = table(md, "Trials that produced no member")
    assert row == [trial["member"], "constant(max_lr=100.0)", "diverged", str(trial["epoch"])]


def copy_run(finished_run, tmp_path):
    """The run directory's pool, tune.json and events.jsonl, copied."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run / "pool", run_dir / "pool")
    for name in ("tune.json", "events.jsonl"):
        shutil.copy(finished_run / name, run_dir / name)
    return run_dir


def test_without_the_study_the_diverged_trials_come_from_the_events(finished_run, tmp_path):
    from lrensemble.pipeline import report_pool

    run_dir = copy_run(finished_run, tmp_path)
    tune = json.loads((run_dir / "tune.json").read_text())
    tune["storage"] = f"sqlite:///{tmp_path / 'gone' / 'study.db'}"
    (run_dir / "tune.json").write_text(json.dumps(tune))
    results = report_pool(run_dir / "pool", run_dir / "report", timing=False)
    [trial] = results["diverged"]
    assert trial["member"].startswith("constant-100") and trial["policy"] is None
    assert trial["epoch"] == 1
    assert any("from events.jsonl" in w for w in results["warnings"])
    assert not (tmp_path / "gone").exists()  # the missing study is not created
    (run_dir / "tune.json").write_text("[]")  # no study at all: still the events
    assert report_pool(run_dir / "pool", run_dir / "r2", timing=False)["diverged"]


def damage(path):
    """Ways a weights file can be broken: truncated, not safetensors, empty, a directory."""
    data = path.read_bytes()
    return {
        "truncated": lambda: path.write_bytes(data[: len(data) // 2]),
        "not safetensors": lambda: path.write_text("these are not weights"),
        "empty": lambda: path.write_bytes(b""),
        "a directory": lambda: (path.unlink(), path.mkdir()),
    }


@pytest.mark.parametrize("kind", ["truncated", "not safetensors", "empty", "a directory"])
def test_broken_weights_name_the_member_and_the_report_is_still_written(
    finished_run, tmp_path, capsys, kind
):
    run_dir = copy_run(finished_run, tmp_path)
    results = json.loads((finished_run / "report" / "results.json").read_text())
    member = results["table3"]["chosen"]["members"][0]
    weights = run_dir / "pool" / "members" / member / "model.safetensors"
    damage(weights)[kind]()
    code, _, err = run(capsys, "report", str(run_dir / "pool"), "--min-relative-accuracy", "0")
    assert code == 0, err
    again = json.loads((run_dir / "report" / "results.json").read_text())
    assert list(again["unreadable_weights"]) == [member]
    assert str(weights) in again["omitted"]["parameter_similarity"]
    md = (run_dir / "report" / "report.md").read_text()
    warning = next(line for line in md.splitlines() if "Warning" in line and member in line)
    assert str(weights) in warning and "unreadable or truncated" in warning
    assert member in again["candidates"]
    assert again["table3"]["entire"]["parameters"] is None
    assert again["table3"]["entire"]["inference_seconds"] is None
    assert "Figure 7a: parameter cosine similarity of the candidates is omitted" in md


def test_weights_that_do_not_fit_the_model_leave_the_inference_time_out(finished_run, tmp_path):
    from safetensors.numpy import save_file

    from lrensemble.pipeline import report_pool

    run_dir = copy_run(finished_run, tmp_path)
    member = json.loads((finished_run / "report" / "results.json").read_text())["members"][0]
    save_file(
        {"other.weight": np.ones((2, 2), np.float32)},
        run_dir / "pool" / "members" / member["id"] / "model.safetensors",
    )
    results = report_pool(run_dir / "pool", run_dir / "report")
    assert results["table3"]["entire"]["inference_seconds"] is None
    assert any(
        f"member {member['id']}'s model cannot be rebuilt" in w and "does not fit" in w
        for w in results["warnings"]
    )
    assert results["table3"]["entire"]["parameters"] is not None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"policy": {"name": "no_such_policy", "max_lr": 0.1}}, "cannot be rebuilt"),
        ({"policy": {"name": "cosine", "max_lr": -1.0}}, "cannot be rebuilt"),
        ({"epochs": 10**9}, "more than 100,000 to draw"),
    ],
)
def test_a_policy_figure_6_cannot_draw_is_omitted_with_the_reason(
    finished_run, tmp_path, change, reason
):
    from lrensemble.report import build_report

    run_dir = copy_run(finished_run, tmp_path)
    for member in (run_dir / "pool" / "members").iterdir():
        record = json.loads((member / "member.json").read_text())
        (member / "member.json").write_text(json.dumps({**record, **change}))
    results = build_report(run_dir / "pool", run_dir / "report")
    assert reason in results["omitted"]["lr_policies"]
    md = (run_dir / "report" / "report.md").read_text()
    assert "Figure 6: the LR policies is omitted" in md


def test_two_reports_into_one_directory_at_once_both_finish(finished_run, tmp_path):
    import subprocess
    import sys

    target = tmp_path / "shared_report"
    argv = [sys.executable, "-m", "lrensemble", "report", str(finished_run / "pool")]
    procs = [
        subprocess.Popen([*argv, "--out", str(target)], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    assert json.loads((target / "results.json").read_text())["members"]
    assert not [p for p in target.iterdir() if p.name.startswith(".")]  # no temporary left
