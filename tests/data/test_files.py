"""A user's own data files: .npz/.npy arrays, CSV tables and image folders (small files written in
each test), the `--data` table, and one clear DataError per kind of bad file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lrensemble.data import Normalization, data_table, list_datasets, load_dataset
from lrensemble.data import files as files_module
from lrensemble.errors import DataError, ParameterError

RNG = np.random.default_rng(0)


def table(n: int, features: int = 4, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 3.0, size=(n, features))
    x[:, 0] = np.arange(n)  # a row id, to follow samples through the carving
    return x, np.arange(n) % classes


def write_csv(path, rows, header=None):
    lines = [",".join(map(str, header))] if header else []
    lines += [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def write_png(path, size=(6, 5), mode="RGB", value=0):
    """A tiny image of (height, width) `size`, filled with a pattern offset by `value`."""
    h, w = size
    base = (np.arange(h * w).reshape(h, w) * 7 + value) % 256
    arr = np.stack([base, 255 - base, base // 2], axis=2) if mode == "RGB" else base
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8), mode).save(path)
    return path


def image_tree(
    root, splits=("train", "test"), classes=("cat", "dog"), n=3, mode="RGB", size=(6, 5)
):
    for split in splits:
        for c, name in enumerate(classes):
            for i in range(n):
                write_png(root / split / name / f"{i}.png", size, mode, value=10 * c + i)
    return root


def files_under(path):
    return sorted(p.relative_to(path) for p in path.rglob("*"))


def one_sentence(exc: DataError) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.endswith(".")
    return msg


# --- npz ----------------------------------------------------------------------------------------


def test_npz_with_train_and_test_arrays_carves_validation(tmp_path):
    x, y = table(50)
    xt, yt = table(12, seed=1)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    ds = load_dataset("npz", path=str(tmp_path / "d.npz"), val_fraction=0.2, seed=3)
    assert ds.sizes() == {"train": 40, "val": 10, "test": 12}
    assert ds.input_shape == (4,) and ds.num_classes == 3 and not ds.image
    assert ds.y_test.tolist() == yt.tolist()
    assert ds.info["source"] == {"path": str(tmp_path / "d.npz")}
    assert ds.info["val_fraction"] == 0.2 and ds.info["test_fraction"] is None
    assert ds.info["split_seed"] == 3
    assert "classes" not in ds.info and len(ds.info["sha256"]) == 16
    # the carved rows (identified by the row id in feature 0) partition the training file
    norm = Normalization.from_dict(ds.info["normalization"])
    ids = [np.round(z[:, 0].numpy() * norm.std[0] + norm.mean[0]) for z in (ds.x_train, ds.x_val)]
    assert sorted(np.concatenate(ids).tolist()) == list(range(50))
    json.dumps(ds.describe())  # everything recorded is JSON-able


def test_npz_validation_arrays_are_taken_when_given(tmp_path):
    x, y = table(30)
    np.savez(
        tmp_path / "d.npz",
        x_train=x,
        y_train=y,
        x_test=x[:5],
        y_test=y[:5],
        x_val=x[:7],
        y_val=y[:7],
    )
    ds = load_dataset("npz", path=str(tmp_path / "d.npz"))
    assert ds.sizes() == {"train": 30, "val": 7, "test": 5}
    assert ds.info["val_fraction"] is None


def test_npz_with_x_and_y_only_carves_test_then_validation(tmp_path):
    x, y = table(100)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset("npz", path=str(tmp_path / "d.npz"))
    assert ds.sizes() == {"train": 72, "val": 8, "test": 20}
    assert ds.info["test_fraction"] == 0.2
    again = load_dataset("npz", path=str(tmp_path / "d.npz"))
    assert torch.equal(again.x_test, ds.x_test)  # seeded
    other = load_dataset("npz", path=str(tmp_path / "d.npz"), seed=1, test_fraction=0.5)
    assert other.sizes()["test"] == 50


def test_npz_per_split_files_and_npy_pairs(tmp_path):
    x, y = table(40)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    np.save(tmp_path / "xt.npy", x[:6])
    np.save(tmp_path / "yt.npy", y[:6])
    np.savez(tmp_path / "val.npz", x=x[:4], y=y[:4])
    ds = load_dataset(
        "npz",
        train=str(tmp_path / "train.npz"),
        test=[str(tmp_path / "xt.npy"), str(tmp_path / "yt.npy")],
        val=str(tmp_path / "val.npz"),
    )
    assert ds.sizes() == {"train": 40, "val": 4, "test": 6}
    assert ds.info["source"]["test"] == [str(tmp_path / "xt.npy"), str(tmp_path / "yt.npy")]
    assert ds.y_val.tolist() == y[:4].tolist()


def test_npz_string_labels_and_float_integer_labels(tmp_path):
    x, y = table(20)
    names = np.array(["zebra", "ant", "bee"])[y]
    np.savez(tmp_path / "s.npz", x_train=x, y_train=names, x_test=x[:3], y_test=names[:3])
    ds = load_dataset("npz", path=str(tmp_path / "s.npz"), val_fraction=0.0)
    assert ds.info["classes"] == ["ant", "bee", "zebra"]
    assert ds.y_test.tolist() == [2, 0, 1] and ds.num_classes == 3
    np.savez(tmp_path / "f.npz", x=x, y=y.astype(float))
    assert load_dataset("npz", path=str(tmp_path / "f.npz")).num_classes == 3


def test_shape_reshapes_every_sample(tmp_path):
    x, y = table(30, features=64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset("npz", path=str(tmp_path / "d.npz"), shape=[1, 8, 8])
    assert ds.input_shape == (1, 8, 8) and ds.image
    assert ds.info["normalization"]["per"] == "channel"
    ds = load_dataset("npz", path=str(tmp_path / "d.npz"), shape=[1, 64])
    assert ds.input_shape == (1, 64) and not ds.image
    with pytest.raises(DataError, match=r"shape \[1, 63\] holds 63 values per sample but .* 64"):
        load_dataset("npz", path=str(tmp_path / "d.npz"), shape=[1, 63])
    with pytest.raises(ParameterError, match="shape must be a list of positive integers"):
        load_dataset("npz", path=str(tmp_path / "d.npz"), shape=[0, 64])


# --- normalization ------------------------------------------------------------------------------


@pytest.mark.parametrize("per", ["channel", "feature"])
def test_normalization_is_fitted_on_the_final_training_split(tmp_path, per):
    x, y = table(60)
    x[:, 1] += np.arange(60) / 3  # a trend, so train+val statistics differ from train's
    x_test = x[:10] + 100.0  # far off: fitting on it would show
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x_test, y_test=y[:10])
    ds = load_dataset("npz", path=str(tmp_path / "d.npz"), normalize=per, val_fraction=0.25)
    z = ds.x_train.double()
    assert z.mean(0).abs().max() < 1e-5 and (z.std(0, unbiased=False) - 1).abs().max() < 1e-5
    rec = ds.info["normalization"]
    assert rec["per"] == "feature"  # "channel" on a table means per feature
    norm = Normalization.from_dict(rec)
    raw_train = ds.x_train.double().numpy() * norm.std + norm.mean
    np.testing.assert_allclose(rec["mean"], raw_train.mean(0), atol=1e-4)
    np.testing.assert_allclose(rec["std"], raw_train.std(0), rtol=1e-4)
    # test inputs are mapped with the training statistics
    np.testing.assert_allclose(ds.x_test.numpy(), norm.apply(x_test), rtol=1e-6)
    assert float(ds.x_test[:, 1].mean()) > 10


def test_normalize_none_keeps_values_and_bad_choice_is_refused(tmp_path):
    x, y = table(20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset("npz", path=str(tmp_path / "d.npz"), normalize="none")
    assert ds.info["normalization"] == {
        "per": "none",
        "scale": 1.0,
        "mean": [],
        "std": [],
        "sample_shape": [4],
    }
    assert set(ds.x_test[:, 0].tolist()) <= set(range(20))
    with pytest.raises(ParameterError, match="normalize must be 'channel', 'feature' or 'none'"):
        load_dataset("npz", path=str(tmp_path / "d.npz"), normalize="minmax")


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_with_header_detected_and_label_column_named_target(tmp_path):
    x, y = table(30)
    rows = [[y[i], *x[i]] for i in range(30)]
    path = write_csv(tmp_path / "t.csv", rows, ["target", "a", "b", "c", "d"])
    ds = load_dataset("csv", train=path, val_fraction=0.0)
    assert ds.sizes() == {"train": 24, "val": 0, "test": 6}
    assert ds.input_shape == (4,) and ds.num_classes == 3
    norm = ds.info["normalization"]
    ids = np.round(ds.x_train[:, 0].numpy() * norm["std"][0] + norm["mean"][0]).astype(int)
    assert ds.y_train.tolist() == y[ids].tolist()


def test_csv_without_header_uses_the_last_column(tmp_path):
    x, y = table(20)
    train = write_csv(tmp_path / "a.csv", [[*x[i], y[i]] for i in range(20)])
    test = write_csv(tmp_path / "b.csv", [[*x[i], y[i]] for i in range(5)])
    ds = load_dataset("csv", train=train, test=test)
    assert ds.sizes() == {"train": 18, "val": 2, "test": 5}
    assert ds.y_test.tolist() == y[:5].tolist()
    assert ds.info["source"] == {"train": train, "test": test}


def test_csv_label_by_name_by_index_and_explicit_header(tmp_path):
    x, y = table(20)
    rows = [[*x[i, :2], y[i], *x[i, 2:]] for i in range(20)]
    path = write_csv(tmp_path / "t.csv", rows, ["f1", "f2", "kind", "f3", "f4"])
    by_name = load_dataset("csv", train=path, label="kind", seed=1)
    by_index = load_dataset("csv", train=path, label=2, seed=1)
    assert torch.equal(by_name.y_test, by_index.y_test) and by_name.input_shape == (4,)
    assert torch.equal(by_name.x_test, by_index.x_test)
    headless = write_csv(tmp_path / "h.csv", rows)
    ds = load_dataset("csv", train=headless, label=-3, header=False)
    assert ds.sizes()["train"] + ds.sizes()["val"] + ds.sizes()["test"] == 20
    numeric_header = write_csv(
        tmp_path / "n.csv", [[*x[i], y[i]] for i in range(20)], [1, 2, 3, 4, 5]
    )
    assert sum(load_dataset("csv", train=numeric_header).sizes().values()) == 21  # read as data
    assert sum(load_dataset("csv", train=numeric_header, header=True).sizes().values()) == 20


def test_csv_string_labels_are_sorted_class_names(tmp_path):
    animals = ["cat", "ant", "dog", "cat"]
    train = write_csv(
        tmp_path / "a.csv", [[i, i * 2, animals[i % 4]] for i in range(16)], ["u", "v", "species"]
    )
    test = write_csv(tmp_path / "b.csv", [[1, 2, "dog"], [3, 4, "ant"]], ["u", "v", "species"])
    val = write_csv(tmp_path / "c.csv", [[1, 2, "cat"]], ["u", "v", "species"])
    ds = load_dataset("csv", train=train, test=test, val=val)
    assert ds.info["classes"] == ["ant", "cat", "dog"]
    assert ds.y_test.tolist() == [2, 0] and ds.y_val.tolist() == [1]
    assert ds.sizes() == {"train": 16, "val": 1, "test": 2} and ds.num_classes == 3


def test_csv_test_columns_are_matched_by_header_name(tmp_path):
    train = write_csv(tmp_path / "a.csv", [[i, -i, i % 2] for i in range(10)], ["p", "q", "y"])
    test = write_csv(tmp_path / "b.csv", [[0, -3, 3], [1, -5, 5]], ["y", "q", "p"])
    ds = load_dataset("csv", train=train, test=test, normalize="none")
    assert ds.x_test.tolist() == [[3.0, -3.0], [5.0, -5.0]] and ds.y_test.tolist() == [0, 1]


def test_csv_shape_and_tab_delimiter(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text(
        "\n".join("\t".join(str(v) for v in [*range(i, i + 6), i % 2]) for i in range(12))
    )
    ds = load_dataset("csv", train=str(path), delimiter="\t", shape=[1, 2, 3])
    assert ds.input_shape == (1, 2, 3) and ds.image


# --- image folders ------------------------------------------------------------------------------


def test_image_folder_rgb_with_test_and_val_folders(tmp_path):
    root = image_tree(tmp_path / "imgs", splits=("train", "test", "val"), n=2)
    (root / "train" / "cat" / "notes.txt").write_text("not an image")  # skipped
    ds = load_dataset("image_folder", root=str(root), normalize="none")
    assert ds.sizes() == {"train": 4, "val": 4, "test": 4}
    assert ds.input_shape == (3, 6, 5) and ds.image and ds.num_classes == 2
    assert ds.info["classes"] == ["cat", "dog"] and ds.info["mode"] == "RGB"
    assert ds.y_train.tolist() == [0, 0, 1, 1]
    first = np.asarray(Image.open(root / "train" / "cat" / "0.png")).transpose(2, 0, 1) / 255
    np.testing.assert_allclose(ds.x_train[0].numpy(), first, rtol=1e-6)
    assert ds.info["normalization"]["scale"] == pytest.approx(1 / 255)


def test_image_folder_grayscale_auto_mode_and_forced_modes(tmp_path):
    root = image_tree(tmp_path / "g", mode="L")
    ds = load_dataset("image_folder", root=str(root))
    assert ds.input_shape == (1, 6, 5) and ds.info["mode"] == "L"
    z = ds.x_train.double()
    assert abs(float(z.mean())) < 1e-5 and abs(float(z.std(unbiased=False)) - 1) < 1e-4
    assert ds.info["normalization"]["per"] == "channel"
    assert len(ds.info["normalization"]["mean"]) == 1
    assert load_dataset("image_folder", root=str(root), mode="RGB").input_shape == (3, 6, 5)
    write_png(root / "train" / "dog" / "color.png", mode="RGB")  # one colour image: all RGB
    mixed = load_dataset("image_folder", root=str(root))
    assert mixed.input_shape == (3, 6, 5)
    assert load_dataset("image_folder", root=str(root), mode="L").input_shape == (1, 6, 5)


def test_image_folder_without_test_carves_it_and_root_of_class_folders(tmp_path):
    root = image_tree(tmp_path / "i", splits=("train",), n=5)
    ds = load_dataset("image_folder", root=str(root))
    assert ds.sizes() == {"train": 7, "val": 1, "test": 2}
    flat = tmp_path / "flat"
    for c in ("a", "b"):
        for i in range(5):
            write_png(flat / c / f"{i}.bmp".replace("bmp", "png"))
    ds = load_dataset("image_folder", root=str(flat))
    assert ds.sizes()["test"] == 2 and ds.info["classes"] == ["a", "b"]


def test_image_folder_sizes_must_agree_unless_resized(tmp_path):
    root = image_tree(tmp_path / "i")
    write_png(root / "test" / "dog" / "big.png", size=(9, 7))
    with pytest.raises(DataError, match=r"6×5 and .*big.png is 9×7 .*size = \[height, width\]"):
        load_dataset("image_folder", root=str(root))
    ds = load_dataset("image_folder", root=str(root), size=[4, 3])
    assert ds.input_shape == (3, 4, 3) and ds.sizes()["test"] == 7
    assert load_dataset("image_folder", root=str(root), size=8).input_shape == (3, 8, 8)


def test_image_folder_split_folders_given_one_by_one(tmp_path):
    root = image_tree(tmp_path / "i", n=2)
    ds = load_dataset(
        "image_folder", train=str(root / "train"), test=str(root / "test"), val_fraction=0.25
    )
    assert ds.sizes()["test"] == 4 and ds.info["source"]["train"] == str(root / "train")


# --- registry and --data ------------------------------------------------------------------------


@pytest.fixture
def one_of_each(tmp_path):
    x, y = table(20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    write_csv(tmp_path / "d.csv", [[*x[i], y[i]] for i in range(20)])
    image_tree(tmp_path / "imgs", n=5)
    return {
        "npz": [str(tmp_path / "d.npz")],
        "csv": [str(tmp_path / "d.csv")],
        "image_folder": [str(tmp_path / "imgs")],
    }


@pytest.mark.parametrize("name", ["npz", "csv", "image_folder"])
def test_each_file_format_loads_through_the_registry(one_of_each, tmp_path, name):
    assert name in list_datasets()
    before = files_under(tmp_path)
    table_ = data_table(one_of_each[name])
    assert table_["name"] == name
    ds = load_dataset(table_.pop("name"), **table_)
    assert ds.name == name and sum(ds.sizes().values()) == 20
    assert files_under(tmp_path) == before  # loading writes nothing


def test_data_table_single_paths_and_split_items(one_of_each, tmp_path):
    assert data_table(one_of_each["npz"]) == {"name": "npz", "path": one_of_each["npz"][0]}
    assert data_table(one_of_each["csv"]) == {"name": "csv", "train": one_of_each["csv"][0]}
    csv = one_of_each["csv"][0]
    assert data_table([f"test={csv}", f"train={csv}"]) == {"name": "csv", "train": csv, "test": csv}
    imgs = tmp_path / "imgs"
    got = data_table([f"train={imgs / 'train'}", f"val={imgs / 'test'}"])
    assert got == {"name": "image_folder", "train": str(imgs / "train"), "val": str(imgs / "test")}
    (tmp_path / "odd=name.csv").write_text("1,2\n")
    assert data_table([str(tmp_path / "odd=name.csv")])["name"] == "csv"


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ([], "--data needs a path"),
        (["nowhere.csv"], "nowhere.csv does not exist"),
        (["{tmp}/x.txt"], "unknown kind of file .txt"),
        (["{tmp}/x.npy"], 'needs a config: [data] name = "npz", train = ["x.npy", "y.npy"]'),
        (["valid={tmp}/d.csv"], "'valid' is not a split"),
        (["test={tmp}/d.csv"], "no train=PATH"),
        (["train={tmp}/d.csv", "test={tmp}/d.npz"], "mixes kinds of files"),
        (["train={tmp}/d.csv", "train={tmp}/d.csv"], "train= twice"),
        (["{tmp}/d.csv", "test={tmp}/d.csv"], "mixes a plain path"),
        (["{tmp}/d.csv", "{tmp}/d.npz"], "takes one path"),
    ],
)
def test_data_table_errors(one_of_each, tmp_path, items, fragment):
    (tmp_path / "x.txt").write_text("")
    np.save(tmp_path / "x.npy", np.zeros(3))
    with pytest.raises(DataError) as info:
        data_table([i.format(tmp=tmp_path) for i in items])
    assert fragment in one_sentence(info.value)


# --- bad files: one DataError sentence each -----------------------------------------------------


def bad_npz(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return {"path": str(path)}


def test_missing_files(tmp_path):
    for name, params in [
        ("npz", {"path": str(tmp_path / "no.npz")}),
        ("npz", {"train": [str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]}),
        ("csv", {"train": str(tmp_path / "no.csv")}),
        ("image_folder", {"root": str(tmp_path / "none")}),
    ]:
        with pytest.raises(DataError, match=r"does not exist|not an existing folder") as info:
            load_dataset(name, **params)
        one_sentence(info.value)


def test_truncated_npz(tmp_path):
    x, y = table(200)
    np.savez_compressed(tmp_path / "d.npz", x=x, y=y)
    blob = (tmp_path / "d.npz").read_bytes()
    (tmp_path / "d.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"d.npz is not a readable .npy/.npz file") as info:
        load_dataset("npz", path=str(tmp_path / "d.npz"))
    one_sentence(info.value)


def test_npz_wrong_keys_name_found_and_expected(tmp_path):
    x, y = table(10)
    with pytest.raises(DataError, match=r"holds inputs, labels; expected x_train, y_train") as e:
        load_dataset("npz", **bad_npz(tmp_path, inputs=x, labels=y))
    one_sentence(e.value)
    with pytest.raises(DataError, match=r"holds x_test, x_train, y_train; expected"):
        load_dataset("npz", **bad_npz(tmp_path, x_train=x, y_train=y, x_test=x))
    np.savez(tmp_path / "s.npz", inputs=x, y=y)
    with pytest.raises(DataError, match=r"s.npz holds inputs, y; expected x and y"):
        load_dataset("npz", train=str(tmp_path / "s.npz"))
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match="single array"):
        load_dataset("npz", path=str(tmp_path / "x.npy"))


def test_files_that_are_not_npz_or_npy_say_so_by_their_magic_bytes(tmp_path):
    (tmp_path / "x.npz").write_text("x,y\n1,2\n")  # text, not a zip
    (tmp_path / "x.npy").write_text("1 2 3\n")
    with pytest.raises(DataError) as info:
        load_dataset("npz", path=str(tmp_path / "x.npz"))
    assert one_sentence(info.value) == f"{tmp_path / 'x.npz'} is not a .npz (zip) file."
    with pytest.raises(DataError) as info:
        load_dataset("npz", train=[str(tmp_path / "x.npy"), str(tmp_path / "x.npy")])
    assert one_sentence(info.value) == f"{tmp_path / 'x.npy'} is not a .npy file."
    objects = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "o.npy", objects, allow_pickle=True)
    np.savez(tmp_path / "o.npz", x=objects, y=np.zeros(2))
    for params in ({"path": str(tmp_path / "o.npz")}, {"train": [str(tmp_path / "o.npy")] * 2}):
        with pytest.raises(DataError, match="pickled arrays are refused") as info:
            load_dataset("npz", **params)
        assert "allow_pickle" not in one_sentence(info.value)


def test_semicolon_csv_hints_at_the_delimiter(tmp_path):
    path = write_csv(tmp_path / "s.csv", [[f"{i};{i % 3};{i % 2}"] for i in range(10)])
    with pytest.raises(DataError, match=r"single column.*set delimiter \(e.g. delimiter = \";\"\)"):
        load_dataset("csv", train=path)
    assert load_dataset("csv", train=path, delimiter=";").info["label_column"] == 2


def test_binary_file_given_as_csv(tmp_path):
    write_png(tmp_path / "pic.png")
    (tmp_path / "pic.csv").write_bytes((tmp_path / "pic.png").read_bytes())
    with pytest.raises(DataError, match=r"pic.csv is a binary file, not a CSV") as info:
        load_dataset("csv", train=str(tmp_path / "pic.csv"))
    one_sentence(info.value)
    (tmp_path / "latin.csv").write_bytes(b"1,2,\xe9t\xe9\n")
    with pytest.raises(DataError, match="not UTF-8 text"):
        load_dataset("csv", train=str(tmp_path / "latin.csv"))


def test_csv_non_numeric_cell_names_file_line_and_column(tmp_path, monkeypatch):
    monkeypatch.setattr(files_module, "_CSV_BLOCK", 2)  # the bad cell is in the second block
    rows = [[1, 2, 0], [1, 2, 1], [3, "oops", 1], [5, 6, 0]]
    path = write_csv(tmp_path / "t.csv", rows, ["a", "b", "y"])
    with pytest.raises(DataError, match=r"t.csv line 4, column 2 \(b\) holds 'oops'") as info:
        load_dataset("csv", train=path)
    one_sentence(info.value)
    path = write_csv(tmp_path / "e.csv", [[1, 2, 0], [3, "", 1]])
    with pytest.raises(DataError, match=r"e.csv line 2, column 2 is empty"):
        load_dataset("csv", train=path)


def test_csv_ragged_rows(tmp_path):
    path = write_csv(tmp_path / "t.csv", [[1, 2, 0], [3, 4], [5, 6, 1]])
    with pytest.raises(DataError, match=r"t.csv line 2 has 2 cells but line 1 has 3") as info:
        load_dataset("csv", train=path)
    one_sentence(info.value)


def test_different_sample_shapes_across_splits(tmp_path):
    x, y = table(10)
    with pytest.raises(DataError, match=r"x_test in .* has samples shaped \(3,\) but") as info:
        load_dataset("npz", **bad_npz(tmp_path, x_train=x, y_train=y, x_test=x[:, :3], y_test=y))
    one_sentence(info.value)
    a = write_csv(tmp_path / "a.csv", [[1, 2, 0], [3, 4, 1]])
    b = write_csv(tmp_path / "b.csv", [[1, 0], [3, 1]])
    with pytest.raises(DataError, match=r"b.csv has samples shaped \(1,\) but .*a.csv has \(2,\)"):
        load_dataset("csv", train=a, test=b)


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ([0, 1, 0.5, 1], r"holds fractions such as 0.5 \(line 3\)"),
        ([0, -1, 0, 1], r"holds the negative label -1 \(line 2\)"),
        ([0, 1, "", 1], r"line 3 has no label"),
        ([0, 1, "nan", 1], r"has a missing label \(NaN\) \(line 3\)"),
    ],
)
def test_bad_csv_labels(tmp_path, labels, fragment):
    path = write_csv(tmp_path / "t.csv", [[i, i, lab] for i, lab in enumerate(labels)])
    with pytest.raises(DataError, match=fragment) as info:
        load_dataset("csv", train=path)
    one_sentence(info.value)


@pytest.mark.parametrize(
    ("y", "fragment"),
    [
        (np.array([0, 1, 0.25, 1]), r"y in .* holds fractions such as 0.25 \(index 2\)"),
        (np.array([0, 1, -2, 1]), r"holds the negative label -2 \(index 2\)"),
        (np.array([0, np.nan, 0, 1]), r"missing label \(NaN\) \(index 1\)"),
        (np.array([0, 1, 1]), r"y in .* has 3 labels but x in .* has 4 samples"),
        (np.ones((4, 2)), r"one label per sample, got shape \(4, 2\)"),
    ],
)
def test_bad_npz_labels(tmp_path, y, fragment):
    with pytest.raises(DataError, match=fragment) as info:
        load_dataset("npz", **bad_npz(tmp_path, x=np.zeros((4, 2)), y=y))
    one_sentence(info.value)


def test_test_labels_unseen_in_train(tmp_path):
    a = write_csv(tmp_path / "a.csv", [[1, 2, "cat"], [3, 4, "dog"]])
    b = write_csv(tmp_path / "b.csv", [[1, 2, "cat"], [3, 4, "emu"], [5, 6, "yak"]])
    with pytest.raises(DataError) as info:
        load_dataset("csv", train=a, test=b)
    assert one_sentence(info.value) == (
        f"{b} has labels that the training data lacks: emu, yak (first at line 2)."
    )
    x, y = table(6)
    with pytest.raises(
        DataError, match=r"y_test in .* that the training data lacks: 7 \(first at index 1\)\.$"
    ):
        load_dataset(
            "npz", **bad_npz(tmp_path, x_train=x, y_train=y, x_test=x[:2], y_test=np.array([0, 7]))
        )
    root = image_tree(tmp_path / "imgs", n=1)
    write_png(root / "test" / "emu" / "0.png")
    with pytest.raises(DataError, match=r"test/emu is a class that the training folder lacks"):
        load_dataset("image_folder", root=str(root))


def test_empty_splits(tmp_path):
    a = write_csv(tmp_path / "a.csv", [[1, 2, 0], [3, 4, 1]], ["u", "v", "y"])
    b = write_csv(tmp_path / "b.csv", [], ["u", "v", "y"])
    with pytest.raises(DataError, match=r"b.csv holds a header but no data rows") as info:
        load_dataset("csv", train=a, test=b)
    one_sentence(info.value)
    (tmp_path / "c.csv").write_text("\n\n")
    with pytest.raises(DataError, match=r"c.csv holds no rows"):
        load_dataset("csv", train=str(tmp_path / "c.csv"))
    with pytest.raises(DataError, match=r"x in .* holds no samples"):
        load_dataset("npz", **bad_npz(tmp_path, x=np.zeros((0, 3)), y=np.zeros(0)))
    with pytest.raises(DataError, match=r"leaves no test samples"):
        load_dataset("csv", train=a)
    root = image_tree(tmp_path / "imgs", n=1)
    for p in (root / "test").rglob("*.png"):
        p.unlink()
    with pytest.raises(DataError, match=r"test holds no images"):
        load_dataset("image_folder", root=str(root))
    (root / "train" / "emu").mkdir()
    with pytest.raises(DataError, match=r"train/emu holds no images"):
        load_dataset("image_folder", root=str(root))


def test_nan_and_inf_inputs(tmp_path):
    x, y = table(6)
    x[4, 2] = np.inf
    with pytest.raises(DataError, match=r"x in .* contains NaN or infinite values \(index 4\)"):
        load_dataset("npz", **bad_npz(tmp_path, x=x, y=y))
    path = write_csv(tmp_path / "t.csv", [[1, 2, 0], [np.nan, 4, 1]])
    with pytest.raises(DataError, match=r"t.csv contains NaN or infinite values \(line 2\)") as e:
        load_dataset("csv", train=path)
    one_sentence(e.value)


def test_unreadable_image_is_named(tmp_path):
    root = image_tree(tmp_path / "imgs", n=1)
    (root / "train" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"broken.png is not a readable image") as info:
        load_dataset("image_folder", root=str(root))
    one_sentence(info.value)
    good = (root / "train" / "dog" / "0.png").read_bytes()
    (root / "train" / "cat" / "broken.png").write_bytes(good[: len(good) - 30])  # truncated
    with pytest.raises(DataError, match=r"broken.png is not a readable image"):
        load_dataset("image_folder", root=str(root))


def test_parameter_mistakes(tmp_path):
    x, y = table(10)
    p = bad_npz(tmp_path, x=x, y=y)
    with pytest.raises(ParameterError, match="either path or train"):
        load_dataset("npz", path=p["path"], train=p["path"])
    with pytest.raises(ParameterError, match="npz needs path"):
        load_dataset("npz")
    with pytest.raises(ParameterError, match="test_fraction must be a number in"):
        load_dataset("npz", path=p["path"], test_fraction=1.0)
    csv = write_csv(tmp_path / "t.csv", [[1, 2, 0]])
    with pytest.raises(ParameterError, match="needs a header row"):
        load_dataset("csv", train=csv, label="y", header=False)
    with pytest.raises(DataError, match="has no column named 'kind'"):
        load_dataset("csv", train=csv, label="kind")
    with pytest.raises(DataError, match="label = 5 is not a column"):
        load_dataset("csv", train=csv, label=5)
    with pytest.raises(ParameterError, match="mode must be"):
        load_dataset("image_folder", root=str(tmp_path), mode="CMYK")
    with pytest.raises(ParameterError, match="size must be"):
        load_dataset("image_folder", root=str(tmp_path), size=[1, 2, 3])


# --- CSV columns, for exported ensembles ---------------------------------------------------------


def test_csv_records_feature_columns_and_label_column(tmp_path):
    x, y = table(20)
    rows = [[*x[i, :2], y[i], *x[i, 2:]] for i in range(20)]
    named = write_csv(tmp_path / "t.csv", rows, ["f1", "f2", "class", "f3", "f4"])
    ds = load_dataset("csv", train=named)
    assert ds.info["columns"] == ["f1", "f2", "f3", "f4"] and ds.info["label_column"] == "class"
    assert ds.describe()["columns"] == ds.info["columns"]
    assert load_dataset("csv", train=named, label=2).info["label_column"] == "class"
    headless = load_dataset("csv", train=write_csv(tmp_path / "h.csv", rows), label=2)
    assert "columns" not in headless.info and headless.info["label_column"] == 2
    last = load_dataset(
        "csv", train=write_csv(tmp_path / "l.csv", [[*x[i], y[i]] for i in range(20)])
    )
    assert last.info["label_column"] == 4


def test_read_csv_table_takes_the_columns_a_layout_chooses(tmp_path):
    path = write_csv(tmp_path / "t.csv", [[1, 2, "ant"], [3, 4, "bee"]], ["a", "b", "kind"])
    table_ = files_module.read_csv_table(path, layout=lambda first: (True, [1, 0], 2))
    assert table_.header == ["a", "b", "kind"] and table_.x.tolist() == [[2.0, 1.0], [4.0, 3.0]]
    assert table_.labels == ["ant", "bee"] and table_.lines.tolist() == [2, 3]
    plain = files_module.read_csv_table(write_csv(tmp_path / "p.tsv", [[1, 2], [3, 4]]))
    assert plain.header is None and plain.x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert plain.columns == [0, 1] and plain.label is None
    with pytest.raises(DataError, match=r"t.csv line 2, column 3 \(kind\) holds 'ant'") as info:
        files_module.read_csv_table(path)  # by default every column is a feature
    one_sentence(info.value)


def test_corrupted_compressed_npz_is_one_sentence(tmp_path):
    x, y = table(200)
    np.savez_compressed(tmp_path / "d.npz", x=x, y=y)
    blob = bytearray((tmp_path / "d.npz").read_bytes())
    blob[100:400] = bytes(300)  # inside the first member's deflate stream
    (tmp_path / "d.npz").write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"d.npz is not a readable .npy/.npz file") as info:
        files_module.read_npz(tmp_path / "d.npz")
    one_sentence(info.value)
