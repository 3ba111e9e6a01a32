"""`image_folder`: an image classification dataset from a folder tree, read with Pillow.

Layout: `root/train/<class>/<image>`, `root/test/<class>/<image>` and optionally `root/val/...`;
class names are the sorted subfolders of `train/`. Inputs become float32 (N, C, H, W), scaled
by 1/255 and normalized with statistics of the training split.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from lrensemble.data.base import Dataset
from lrensemble.data.files import Split, assemble, check_options
from lrensemble.data.registry import register_dataset
from lrensemble.errors import DataError, ParameterError

GRAY_MODES = frozenset({"1", "L", "LA", "La"})  # Pillow modes stored as one intensity channel
VAL_FOLDERS = ("val", "valid", "validation")


@functools.cache
def image_suffixes() -> frozenset[str]:
    """File suffixes Pillow can open (.png, .jpg, .bmp, .gif, ...); other files are skipped."""
    from PIL import Image

    Image.init()
    return frozenset(
        ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN
    )


def _visible(path: Path, base: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(base).parts)


def _class_folders(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def _image_files(folder: Path) -> list[Path]:
    suffixes = image_suffixes()
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in suffixes and p.is_file() and _visible(p, folder)
    )


def _listing(folder: Path, classes: list[str] | None) -> tuple[list[Path], list[int], list[str]]:
    """(image files, their class indices, class names) of one split folder. `classes` None:
    this is the training folder and its subfolders define the classes."""
    if not folder.is_dir():
        raise DataError(f"{folder} does not exist or is not a folder.")
    subfolders = _class_folders(folder)
    if classes is None:
        if not subfolders:
            raise DataError(f"{folder} has no class folders; put each class's images in one.")
        classes = [p.name for p in subfolders]
    files: list[Path] = []
    labels: list[int] = []
    for sub in subfolders:
        if sub.name not in classes:
            raise DataError(f"{sub} is a class that the training folder lacks.")
        found = _image_files(sub)
        files += found
        labels += [classes.index(sub.name)] * len(found)
    return files, labels, classes


def _read_image(path: Path, mode: str, size: tuple[int, int] | None) -> tuple[np.ndarray, bool]:
    """Pixels (H, W) or (H, W, 3) as uint8, and whether the file is stored as grayscale."""
    from PIL import Image

    deep = None
    try:
        with Image.open(path) as im:
            native = im.mode
            if native in ("I", "F") or native.startswith("I;16"):
                deep = native
            else:
                gray = native in GRAY_MODES
                target = mode if mode != "auto" else ("L" if gray else "RGB")
                if native == "P" and target == "RGB":
                    im = im.convert("RGBA")  # palette transparency, without Pillow's warning
                out = im.convert(target)
                if size is not None and out.size != (size[1], size[0]):
                    out = out.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                pixels = np.asarray(out, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path} is not a readable image ({exc}).") from None
    if deep is not None:
        raise DataError(f"{path} has {deep} pixels (16-bit or float); only 8-bit images are read.")
    return pixels, gray


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool):
        size = [size, size]
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in size)
    ):
        raise ParameterError(f"size must be a positive integer or [height, width], got {size!r}.")
    return int(size[0]), int(size[1])


def _check_mode(mode: Any) -> str:
    choices = {"auto": "auto", "rgb": "RGB", "l": "L"}
    if not isinstance(mode, str) or mode.lower() not in choices:
        raise ParameterError(f"mode must be 'auto', 'RGB' or 'L', got {mode!r}.")
    return choices[mode.lower()]


def _split_folders(
    root: str | None, train: str | None, test: str | None, val: str | None
) -> tuple[dict[str, Path], dict[str, str]]:
    """The folder of each split that is present, and the source record."""
    if root is not None and (train, test, val) != (None, None, None):
        raise ParameterError("image_folder takes either root or train (with test, val).")
    if root is None:
        if train is None:
            raise ParameterError("image_folder needs root = a folder holding train/ and test/.")
        given = {k: v for k, v in (("train", train), ("test", test), ("val", val)) if v}
        folders = {}
        for k, v in given.items():
            if not isinstance(v, str | Path):
                raise ParameterError(f"{k} must be a folder path, got {v!r}.")
            folders[k] = Path(v).expanduser()
            if not folders[k].is_dir():
                raise DataError(f"{k} = {v} is not an existing folder.")
        return folders, {k: str(v) for k, v in given.items()}
    if not isinstance(root, str | Path):
        raise ParameterError(f"root must be a folder path, got {root!r}.")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"root = {root} is not an existing folder.")
    folders = {}
    if (base / "train").is_dir():
        folders["train"] = base / "train"
    elif (base / "test").is_dir():
        raise DataError(f"{base} has a test/ folder but no train/ folder.")
    else:
        folders["train"] = base  # root's subfolders are the classes; test is carved
    if (base / "test").is_dir():
        folders["test"] = base / "test"
    for name in VAL_FOLDERS:
        if (base / name).is_dir() and folders["train"] != base:
            folders["val"] = base / name
            break
    return folders, {"root": str(root)}


@register_dataset("image_folder")
def load_image_folder(
    *,
    root: str | None = None,
    train: str | None = None,
    test: str | None = None,
    val: str | None = None,
    mode: str = "auto",
    size: int | list[int] | None = None,
    normalize: str = "channel",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """Images from `root`/{train,test,val}/<class>/ (or from `train`, `test`, `val` folders).

    Class names are the sorted subfolders of train; `mode` "auto" reads RGB unless every image
    is grayscale (one channel), or force "RGB" / "L". `size` (an int or [h, w]) resizes
    bilinearly; without it every image must have the same size. Without a test folder a
    seeded `test_fraction` of train is the test split; without val/, `val_fraction`.
    """
    check_options(normalize, val_fraction, test_fraction, seed)
    mode = _check_mode(mode)
    target = _check_size(size)
    folders, source = _split_folders(root, train, test, val)
    listed: dict[str, tuple[list[Path], list[int]]] = {}
    files, labels, classes = _listing(folders["train"], None)
    present = set(labels)
    for i, cls in enumerate(classes):
        if i not in present:
            raise DataError(f"{folders['train'] / cls} holds no images.")
    listed["train"] = (files, labels)
    for split in ("test", "val"):
        if split in folders:
            files, labels, _ = _listing(folders[split], classes)
            if not files:
                raise DataError(f"{folders[split]} holds no images.")
            listed[split] = (files, labels)
    pixels: dict[str, list[np.ndarray]] = {}
    all_gray = True
    first: tuple[tuple[int, ...], Path] | None = None  # the first image's size and path
    for split, (files, _) in listed.items():
        pixels[split] = []
        for path in files:
            arr, gray = _read_image(path, mode, target)
            all_gray &= gray
            if first is None:
                first = (arr.shape[:2], path)
            elif arr.shape[:2] != first[0]:
                (h0, w0), seen = first
                h, w = arr.shape[:2]
                raise DataError(
                    f"Images differ in size: {seen} is {h0}×{w0} and {path} is {h}×{w} "
                    "(height×width); set size = [height, width] to resize them all."
                )
            pixels[split].append(arr)
    channels = 1 if mode == "L" or (mode == "auto" and all_gray) else 3

    def stack(arrays: list[np.ndarray]) -> np.ndarray:
        if channels == 1:
            return np.stack(arrays)[:, None]
        rgb = [a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
        return np.stack(rgb).transpose(0, 3, 1, 2)

    splits = {
        split: Split(
            stack(pixels[split]),
            np.asarray(labels, dtype=np.int64),
            f"the images of {folders[split]}",
            f"the classes of {folders[split]}",
        )
        for split, (_, labels) in listed.items()
    }
    ds = assemble(
        "image_folder",
        splits["train"],
        splits.get("test"),
        splits.get("val"),
        source=source,
        normalize=normalize,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        scale=1 / 255,
        classes=classes,
        image=True,
    )
    ds.info["mode"] = "L" if channels == 1 else "RGB"
    return ds


__all__ = ["image_suffixes", "load_image_folder"]
