"""The dataset catalog: the one table of what each dataset is.

Everything that needs a fact about a dataset reads it here: the spec's validators (which names
exist, which are synthetic or 2-D), augmentation (image shapes), the loaders, ``/api/datasets``
(and through it the lab's pages) and the memory estimate. No torch, no numpy: the API process
imports this module, and a loader is named by its dotted path and imported only when a dataset
is loaded.

Shapes: 2-D points ``(2,)``, signals ``(C, L)`` (mnist1d: ``(1, 40)``), images ``(C, H, W)``
float32 in [0, 1].

| name | kind | what | test split |
|---|---|---|---|
| digits | image 1×8×8 | scikit-learn's 1797 handwritten digits | carved (test_fraction) |
| mnist1d | signal 1×40 | MNIST-1D, generated offline with the ``mnist1d`` package's own generator and default arguments (seed 42) | official: 4000 / 1000 |
| moons, circles | 2d | scikit-learn's generators | carved |
| spirals | 2d | three interleaved arms (3 classes), 1.25 turns each | carved |
| xor | 2d | four Gaussian blobs at (±1, ±1), label = sign(x)·sign(y) < 0 | carved |
| shapes | image 3×16×16 | procedural coloured shapes, 6 classes (synthetic.py) | carved |
| mnist, fashion_mnist, cifar10 | image | torchvision's readers, from files under ``data_root`` | official |
| folder:<id> | image 3×32×32 | an upload, processed at ingestion: ``<data_root>/uploads/<id>/data.npz`` and ``meta.json`` | carved |
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

    from ..spec import DataSpec

Kind = Literal["tabular", "2d", "image", "signal"]

FOLDER_PREFIX = "folder:"
FOLDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Uploaded images are resized to this shape, whatever their size.
FOLDER_IMAGE_SHAPE: tuple[int, int, int] = (3, 32, 32)

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "arrow_left", "arrow_right")
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_DIGITS = tuple(str(i) for i in range(10))


class DatasetUnavailable(ValueError):
    """The dataset exists in the spec but cannot be loaded here (missing files, no data folder);
    the message says what to put where."""


@dataclass(frozen=True)
class RawData:
    """Everything a loader produces, before splitting. X is (N, *input_shape) float32."""

    X: np.ndarray
    y: np.ndarray
    # Official test split, for sets that ship one (MNIST, CIFAR-10); None = carve one out.
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    # Class names read from the files (CIFAR-10's batches.meta, an upload's folder names);
    # None = the catalog's.
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """One row of the catalog."""

    name: str
    kind: Kind
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    # "package.module:function", imported on first load: (data spec, derived seed, data root) -> RawData
    loader: str
    # True: standardise each feature with the training part's mean and std (synthetic 2-D
    # sets); False: the loader already put inputs on a sensible scale (pixels in [0, 1]).
    standardize: bool
    description: str = ""
    # Example counts under the defaults: (all examples, official test examples or None).
    default_counts: tuple[int, int | None] = (0, None)
    # Generated from the seed: data.n_samples applies.
    synthetic: bool = False
    # Read from files under the data root (torchvision's formats), so it may be absent.
    from_files: bool = False

    def load(self, data: DataSpec, seed: int, root: Path | None) -> RawData:
        module, _, function = self.loader.partition(":")
        return getattr(importlib.import_module(module), function)(data, seed, root)


def _entry(name: str, kind: Kind, shape: tuple[int, ...], classes: tuple[str, ...],
           loader: str, description: str, counts: tuple[int, int | None], *,
           synthetic: bool = False, from_files: bool = False) -> DatasetInfo:
    return DatasetInfo(
        name=name, kind=kind, input_shape=shape, classes=classes,
        loader=f"{__package__}.{loader}", standardize=kind == "2d",
        description=description, default_counts=counts, synthetic=synthetic,
        from_files=from_files,
    )


CATALOG: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        _entry("digits", "image", (1, 8, 8), _DIGITS, "synthetic:load_digits",
               "scikit-learn's 1797 handwritten digits, 8×8 grey levels.", (1797, None)),
        _entry("mnist1d", "signal", (1, 40), _DIGITS, "synthetic:load_mnist1d",
               "MNIST-1D (Greydanus 2020): 1-D signals of length 40, generated with the mnist1d "
               "package's defaults; official 4000/1000 train/test split.", (4000, 1000)),
        _entry("moons", "2d", (2,), ("0", "1"), "synthetic:load_moons",
               "Two interleaving half circles (scikit-learn); noise 0.2 by default.",
               (1000, None), synthetic=True),
        _entry("circles", "2d", (2,), ("outer", "inner"), "synthetic:load_circles",
               "A circle inside another (scikit-learn, factor 0.5); noise 0.1.",
               (1000, None), synthetic=True),
        _entry("spirals", "2d", (2,), ("0", "1", "2"), "synthetic:load_spirals",
               "Three interleaved spiral arms, one class each, 1.25 turns; noise 0.05.",
               (1000, None), synthetic=True),
        _entry("xor", "2d", (2,), ("0", "1"), "synthetic:load_xor",
               "Four Gaussian blobs at (±1, ±1), XOR labels; noise (std) 0.35.",
               (1000, None), synthetic=True),
        _entry("shapes", "image", (3, 16, 16), SHAPE_CLASSES, "synthetic:load_shapes",
               "Procedural 16×16 colour shapes: circle, square, triangle, cross, left and right "
               "arrows (a horizontal flip swaps the arrows).", (3000, None), synthetic=True),
        _entry("mnist", "image", (1, 28, 28), _DIGITS, "files:load_mnist",
               "MNIST handwritten digits, 28×28 (torchvision); official 60000/10000.",
               (60000, 10000), from_files=True),
        _entry("fashion_mnist", "image", (1, 28, 28), FASHION_CLASSES, "files:load_fashion_mnist",
               "Fashion-MNIST clothing images, 28×28 (torchvision); official 60000/10000.",
               (60000, 10000), from_files=True),
        _entry("cifar10", "image", (3, 32, 32),
               ("airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"), "files:load_cifar10",
               "CIFAR-10 colour images, 32×32 (torchvision); official 50000/10000.",
               (50000, 10000), from_files=True),
    )
}

# What the spec and augmentation read, all derived from the one table.
BUILTIN_DATASETS: tuple[str, ...] = tuple(CATALOG)
SYNTHETIC_DATASETS: frozenset[str] = frozenset(n for n, i in CATALOG.items() if i.synthetic)
TWO_D_DATASETS: frozenset[str] = frozenset(n for n, i in CATALOG.items() if i.kind == "2d")
IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    n: i.input_shape for n, i in CATALOG.items() if i.kind == "image"  # type: ignore[misc]
}


def is_folder(dataset: str) -> bool:
    return dataset.startswith(FOLDER_PREFIX)


def upload_info(dataset: str, classes: tuple[str, ...] | list[str], n_examples: int
                ) -> DatasetInfo:
    """The row of an uploaded dataset ``folder:<id>`` from what was stored at its ingestion:
    its classes and image count (its images were resized to FOLDER_IMAGE_SHAPE then)."""
    return _entry(dataset, "image", FOLDER_IMAGE_SHAPE, tuple(classes), "files:load_folder",
                  f"Uploaded images: {n_examples} in {len(classes)} classes, resized to "
                  f"{FOLDER_IMAGE_SHAPE[1]}×{FOLDER_IMAGE_SHAPE[2]} RGB.", (n_examples, None))


def folder_info(dataset: str, data_root: str | Path | None = None) -> DatasetInfo:
    """The row of an uploaded folder ``folder:<id>``, from ``meta.json`` beside its processed
    images under ``data_root/uploads/<id>`` (written at ingestion; a worker unpacks it before
    training). A folder of class folders put there by hand has its folders' names as classes.
    Without either, the row has no classes: loading it says why."""
    import json

    ident = dataset.removeprefix(FOLDER_PREFIX)
    if data_root is not None and FOLDER_ID.match(ident):
        path = Path(data_root) / "uploads" / ident
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            return upload_info(dataset, meta["classes"], int(meta["n"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:  # sorted folder names, as torchvision's find_classes has them
            classes = tuple(sorted(e.name for e in path.iterdir() if e.is_dir()))
            return upload_info(dataset, classes, 0)
        except OSError:  # not unpacked (yet): loading it says so
            pass
    return upload_info(dataset, (), 0)


def dataset_info(dataset: str, data_root: str | Path | None = None) -> DatasetInfo:
    """The catalog's row (or a built one for ``folder:<id>``, with the classes of its folder
    under ``data_root`` when it is there); ValueError when unknown."""
    if is_folder(dataset):
        return folder_info(dataset, data_root)
    info = CATALOG.get(dataset)
    if info is None:
        raise ValueError(f"dataset {dataset!r} is not available")
    return info


def image_shape(dataset: str) -> tuple[int, int, int] | None:
    """(C, H, W) of ``dataset``'s images, or None when it is not an image dataset."""
    if is_folder(dataset):
        return FOLDER_IMAGE_SHAPE
    return IMAGE_SHAPES.get(dataset)
