"""Datasets as whole tensors: load, split by seed, normalise with training statistics.

Every dataset is small enough to live on the device in full, so training indexes tensors
directly instead of going through a DataLoader. A built-in dataset is one entry in
``_REGISTRY``: a loader that returns all examples (and the official test split where there is
one), plus how its inputs are shaped and normalised; the splitting and normalisation are
shared. ``folder:<id>`` (an uploaded folder of class subfolders) is built on the fly.

Shapes: 2-D points ``(2,)``, signals ``(C, L)`` (mnist1d: ``(1, 40)``), images ``(C, H, W)``
float32 in [0, 1].

| name | kind | what | test split |
|---|---|---|---|
| digits | image 1×8×8 | scikit-learn's 1797 handwritten digits | carved (test_fraction) |
| mnist1d | signal 1×40 | MNIST-1D, generated offline with the ``mnist1d`` package's own generator and default arguments (seed 42) | official: 4000 / 1000 |
| moons, circles | 2d | scikit-learn's generators | carved |
| spirals | 2d | three interleaved arms (3 classes), 1.25 turns each | carved |
| xor | 2d | four Gaussian blobs at (±1, ±1), label = sign(x)·sign(y) < 0 | carved |
| shapes | image 3×16×16 | procedural coloured shapes, 6 classes (see ``_load_shapes``) | carved |
| mnist, fashion_mnist, cifar10 | image | torchvision's readers, from files under ``data_root`` | official |
| folder:<id> | image 3×32×32 | ``<data_root>/uploads/<id>/<class>/<image>``, read by ImageFolder | carved |

``data_root`` is the folder under which torchvision's files (``MNIST/raw/…``,
``FashionMNIST/raw/…``, ``cifar-10-batches-py/…``), uploads (``uploads/<id>/``) and the
generated MNIST-1D cache (``mnist1d/``) live. Without one, only the built-in sets load.
"""

from __future__ import annotations

import gzip
import os
import pickle
import random
import re
import shutil
import socket
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from math import ceil
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from .augment_spec import FOLDER_IMAGE_SHAPE, IMAGE_SHAPES
from .spec import AVAILABLE_DATASETS, DataSpec, Spec

Kind = Literal["tabular", "2d", "image", "signal"]
PathLike = str | os.PathLike[str]

FOLDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# torchvision may try to download MNIST/FashionMNIST/CIFAR-10 when their files are absent
# (only then, and only if the host answers within a few seconds). Tests turn this off.
ALLOW_DOWNLOAD = True


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
    # None = the registry's.
    classes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: Kind
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    # (data spec, derived seed, data root) -> raw data
    load: Callable[[DataSpec, int, Path | None], RawData]
    # True: standardise each feature with the training part's mean and std (synthetic 2-D
    # sets); False: the loader already put inputs on a sensible scale (pixels in [0, 1]).
    standardize: bool
    description: str = ""
    # Example counts under the defaults: (all examples, official test examples or None).
    default_counts: tuple[int, int | None] = (0, None)


@dataclass
class Splits:
    """Train / validation / test tensors (CPU) and what the model needs to know about them."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str]
    input_shape: tuple[int, ...]
    kind: Kind

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.input_shape))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 32-bit seed per purpose, so changing how the data is generated never
    shifts the split (and vice versa). crc32 rather than hash(): str hashes vary per process."""
    ss = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())])
    return int(ss.generate_state(1)[0])


def _root(data_root: PathLike | None) -> Path | None:
    return None if data_root is None else Path(data_root).expanduser().resolve()


# --- built-in loaders ---------------------------------------------------------------------


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    # Cached: describe_datasets() and every run would otherwise re-read sklearn's CSV.
    from sklearn.datasets import load_digits

    d = load_digits()
    # Pixels are 0..16; scale to [0, 1] and keep the image layout for CNNs (the MLP flattens).
    X = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return X, d.target.astype(np.int64)


def _load_digits(data: DataSpec, seed: int, root: Path | None) -> RawData:
    X, y = _digits_arrays()
    return RawData(X=X, y=y)


def _noise(data: DataSpec, default: float) -> float:
    return default if data.noise is None else data.noise


def _load_moons(data: DataSpec, seed: int, root: Path | None) -> RawData:
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=data.n_samples or 1000, noise=_noise(data, 0.2), random_state=seed)
    return RawData(X=X.astype(np.float32), y=y.astype(np.int64))


def _load_circles(data: DataSpec, seed: int, root: Path | None) -> RawData:
    from sklearn.datasets import make_circles

    X, y = make_circles(
        n_samples=data.n_samples or 1000, noise=_noise(data, 0.1), factor=0.5, random_state=seed
    )
    return RawData(X=X.astype(np.float32), y=y.astype(np.int64))


def _balanced_labels(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    y = np.arange(n) % k
    rng.shuffle(y)
    return y.astype(np.int64)


SPIRAL_ARMS = 3
SPIRAL_TURNS = 1.25


def _load_spirals(data: DataSpec, seed: int, root: Path | None) -> RawData:
    """Three interleaved arms, one per class: radius r = 0.05 + 0.95 t and angle
    2πk/3 + 2π·1.25·t for t uniform in [0, 1], plus Gaussian noise of std ``noise`` (0.05)."""
    n = data.n_samples or 1000
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, SPIRAL_ARMS, rng)
    t = rng.uniform(0.0, 1.0, n)
    r = 0.05 + 0.95 * t
    theta = 2 * np.pi * y / SPIRAL_ARMS + 2 * np.pi * SPIRAL_TURNS * t
    X = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    X += _noise(data, 0.05) * rng.standard_normal((n, 2))
    return RawData(X=X.astype(np.float32), y=y)


def _load_xor(data: DataSpec, seed: int, root: Path | None) -> RawData:
    """Four Gaussian blobs centred at (±1, ±1) (std ``noise``, default 0.35), as many points in
    each; class 1 where the signs of the centre's coordinates differ."""
    n = data.n_samples or 1000
    rng = np.random.default_rng(seed)
    quadrant = _balanced_labels(n, 4, rng)
    sx = np.where(quadrant % 2 == 0, 1.0, -1.0)
    sy = np.where(quadrant < 2, 1.0, -1.0)
    X = np.stack([sx, sy], axis=1) + _noise(data, 0.35) * rng.standard_normal((n, 2))
    y = (sx != sy).astype(np.int64)
    return RawData(X=X.astype(np.float32), y=y)


# MNIST-1D: generated, never downloaded. make_dataset (mnist1d/data.py) builds the set from its
# templates with numpy only; get_dataset() is the function that fetches a pickle from GitHub,
# and it is never called here.
_MNIST1D_LOCK = threading.Lock()
MNIST1D_CACHE_NAME = "mnist1d_default_seed42.npz"


@lru_cache(maxsize=1)
def _mnist1d_generated() -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset seeds numpy's and Python's global RNGs (seed 42); put them back afterwards
    # so generating the data never changes anything else's random stream.
    with _MNIST1D_LOCK:
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            d = make_dataset(get_dataset_args())
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
    return {
        "x": d["x"].astype(np.float32), "y": d["y"].astype(np.int64),
        "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int64),
    }


@lru_cache(maxsize=4)
def _mnist1d_arrays(root: Path | None) -> dict[str, np.ndarray]:
    """Generated once per process (≈1.5 s); with a data root, also kept as an .npz file there,
    so the next process reads it instead of generating again."""
    if root is None:
        return _mnist1d_generated()
    path = root / "mnist1d" / MNIST1D_CACHE_NAME
    if path.is_file():
        try:
            with np.load(path) as f:
                return {k: f[k] for k in ("x", "y", "x_test", "y_test")}
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache is regenerated below
    arrays = _mnist1d_generated()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only data folder only costs the regeneration in the next process
    return arrays


def _load_mnist1d(data: DataSpec, seed: int, root: Path | None) -> RawData:
    a = _mnist1d_arrays(root)
    # (N, 40) -> (N, 1, 40): one channel, so a 1-D CNN sees the layout of a signal.
    return RawData(
        X=a["x"][:, None, :], y=a["y"], X_test=a["x_test"][:, None, :], y_test=a["y_test"]
    )


# --- shapes ---------------------------------------------------------------------------------

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "arrow_left", "arrow_right")
SHAPES_SIZE = 16
SHAPES_MAX_SAMPLES = 200_000
_SUBPIXEL = (-0.25, 0.25)  # 2×2 supersampling, symmetric so that mirror images stay exact


def _shape_mask(cls: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-the-shape test in shape coordinates (u right, v down, radius 1)."""
    au, av = np.abs(u), np.abs(v)
    name = SHAPE_CLASSES[cls]
    if name == "circle":
        return u * u + v * v <= 1.0
    if name == "square":
        return np.maximum(au, av) <= 0.8
    if name == "triangle":  # apex up: vertically asymmetric, horizontally symmetric
        return (v <= 0.8) & (au <= 0.95 * (v + 0.9) / 1.7)
    if name == "cross":
        return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))
    if name in ("arrow_left", "arrow_right"):
        s = u if name == "arrow_right" else -u  # the left arrow is the right one mirrored
        shaft = (s >= -0.95) & (s <= 0.1) & (av <= 0.25)
        head = (s >= 0.0) & (av <= 0.9 * (0.95 - s) / 0.95)
        return shaft | head
    raise ValueError(name)


def render_shapes(
    labels: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray,
    fg: np.ndarray, bg: np.ndarray, size: int = SHAPES_SIZE,
) -> np.ndarray:
    """Noise-free images (N, 3, size, size) in [0, 1]: shape ``labels[i]`` centred at
    (cx, cy) in pixel coordinates (pixel centres at 0 … size−1), colour fg on bg, edges
    anti-aliased by 2×2 supersampling."""
    n = len(labels)
    coverage = np.zeros((n, size, size), dtype=np.float32)
    grid = np.arange(size, dtype=np.float64)
    for c in range(len(SHAPE_CLASSES)):
        idx = np.flatnonzero(labels == c)
        if not len(idx):
            continue
        r = radius[idx, None, None]
        acc = np.zeros((len(idx), size, size), dtype=np.float32)
        for dy in _SUBPIXEL:
            for dx in _SUBPIXEL:
                # (x − cx) with x and cx multiples of 1/4: exact, so mirroring is exact too.
                u = ((grid[None, None, :] + dx) - cx[idx, None, None]) / r
                v = ((grid[None, :, None] + dy) - cy[idx, None, None]) / r
                acc += _shape_mask(c, u, v)
        coverage[idx] = acc / len(_SUBPIXEL) ** 2
    a = coverage[:, None, :, :]
    return (a * fg[:, :, None, None] + (1 - a) * bg[:, :, None, None]).astype(np.float32)


def _load_shapes(data: DataSpec, seed: int, root: Path | None) -> RawData:
    """Procedural 3×16×16 colour images, ``n_samples`` (3000) in 6 balanced classes: circle,
    square, triangle (apex up), cross, arrow_left, arrow_right. Shape, position, size,
    foreground and background colours are random; the class depends on the shape only.
    Four classes are symmetric under a horizontal flip, but a flipped left arrow *is* a right
    arrow: RandomHorizontalFlip is visibly harmful here (and a vertical flip turns triangles
    upside down). Pixel noise of std 0.03, clipped to [0, 1]."""
    n = data.n_samples or 3000
    if n > SHAPES_MAX_SAMPLES:
        raise ValueError(f"shapes: n_samples is at most {SHAPES_MAX_SAMPLES}")
    rng = np.random.default_rng(seed)
    s = SHAPES_SIZE
    y = _balanced_labels(n, len(SHAPE_CLASSES), rng)
    radius = rng.uniform(3.5, 7.0, n)
    # Centres on a quarter-pixel grid, the shape inside the image.
    lo, hi = radius - 0.5, (s - 0.5) - radius
    cx = np.round(rng.uniform(lo, hi) * 4) / 4
    cy = np.round(rng.uniform(lo, hi) * 4) / 4
    bg = rng.uniform(0, 1, (n, 3))
    fg = rng.uniform(0, 1, (n, 3))
    for _ in range(100):  # foreground clearly distinct from background
        close = np.linalg.norm(fg - bg, axis=1) < 0.5
        if not close.any():
            break
        fg[close] = rng.uniform(0, 1, (int(close.sum()), 3))
    X = render_shapes(y, cx, cy, radius, fg, bg, s)
    X += rng.normal(0.0, 0.03, X.shape).astype(np.float32)
    np.clip(X, 0.0, 1.0, out=X)
    return RawData(X=X, y=y)


# --- torchvision sets: MNIST, Fashion-MNIST, CIFAR-10 ---------------------------------------

_MNIST_FILES = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)
_CIFAR_FILES = (
    "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
    "test_batch", "batches.meta",
)
_DOWNLOAD_HOSTS = {
    "mnist": "ossci-datasets.s3.amazonaws.com",
    "fashion_mnist": "fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    "cifar10": "www.cs.toronto.edu",
}
_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _to_unit(a: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1], as torchvision's to_dtype(scale=True) does."""
    return a.astype(np.float32) / np.float32(255)


def _tv_folder(name: str, root: Path) -> Path:
    if name == "mnist":
        return root / "MNIST" / "raw"
    if name == "fashion_mnist":
        return root / "FashionMNIST" / "raw"
    return root / "cifar-10-batches-py"


def _tv_missing(name: str, root: Path) -> list[str]:
    """Files still missing (an MNIST file may be present gzipped)."""
    folder = _tv_folder(name, root)
    if name == "cifar10":
        return [f for f in _CIFAR_FILES if not (folder / f).is_file()]
    return [
        f for f in _MNIST_FILES
        if not (folder / f).is_file() and not (folder / f"{f}.gz").is_file()
    ]


def _tv_where(name: str, root: Path | None) -> str:
    base = Path("<data_root>") if root is None else root
    folder = _tv_folder(name, base)
    if name == "cifar10":
        return (f"{', '.join(_CIFAR_FILES)} (the python version of CIFAR-10, "
                f"cifar-10-python.tar.gz, extracted) in {folder}/")
    return f"{', '.join(_MNIST_FILES)} (or the same names + .gz) in {folder}/"


def _tv_signature(name: str, root: Path) -> tuple:
    """Changes when the dataset's files change (for the caches)."""
    folder = _tv_folder(name, root)
    names = _CIFAR_FILES if name == "cifar10" else [
        n for f in _MNIST_FILES for n in (f, f"{f}.gz")
    ]
    sig = []
    for n in names:
        try:
            st = (folder / n).stat()
            sig.append((n, st.st_size, st.st_mtime_ns))
        except OSError:
            pass
    return tuple(sig)


def _reachable(host: str, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _unavailable(name: str, root: Path | None, why: str = "") -> DatasetUnavailable:
    if root is None:
        return DatasetUnavailable(
            f"dataset {name!r} is read from files under a data folder, and none is configured "
            "for this worker (data_root)"
        )
    return DatasetUnavailable(
        f"dataset {name!r} not found: put {_tv_where(name, root)}{why}"
    )


def _gunzip_missing(name: str, root: Path) -> None:
    """torchvision's MNIST reader wants the uncompressed idx files; unpack any .gz ones."""
    folder = _tv_folder(name, root)
    for f in _MNIST_FILES:
        raw, gz = folder / f, folder / f"{f}.gz"
        if not raw.is_file() and gz.is_file():
            tmp = folder / f".{f}.tmp"
            with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, raw)


def _try_download(name: str, root: Path) -> None:
    """Let torchvision download the files, once, only when they are absent. Any failure
    (offline machine, unreachable mirror, full disk) becomes a clear DatasetUnavailable."""
    if not ALLOW_DOWNLOAD:
        raise _unavailable(name, root)
    host = _DOWNLOAD_HOSTS[name]
    if not _reachable(host):
        raise _unavailable(name, root, f" (downloading them failed: {host} cannot be reached)")
    from torchvision import datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        cls(root=str(root), train=True, download=True)
    except Exception as e:
        raise _unavailable(name, root, f" (downloading them failed: {e})") from e


def _local_cifar10_class():
    from torchvision.datasets import CIFAR10

    class LocalCIFAR10(CIFAR10):
        """torchvision's CIFAR10 reader, minus its md5 check.

        CIFAR10 checks each batch file and batches.meta against the md5 of the official
        archive (``_check_integrity`` and ``_load_meta``). Files that are the official ones
        pass that check anyway; this subclass accepts any files *present* in the same pickle
        format (a smaller subset, the test suite's tiny files), and a damaged file still fails,
        at unpickling. Everything else (reading, reshaping to HWC) is torchvision's.
        """

        def _check_integrity(self) -> bool:
            folder = Path(self.root) / self.base_folder
            return all((folder / f).is_file() for f, _ in self.train_list + self.test_list)

        def _load_meta(self) -> None:
            path = Path(self.root) / self.base_folder / self.meta["filename"]
            if not path.is_file():
                raise RuntimeError(f"{path} not found")
            with open(path, "rb") as f:
                self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return LocalCIFAR10


@lru_cache(maxsize=2)
def _tv_arrays(name: str, root_str: str, signature: tuple) -> tuple:
    """uint8 arrays (train X, train y, test X, test y, classes), cached per file signature.
    uint8 keeps the cache 4× smaller than the float32 tensors built from it."""
    from torchvision import datasets as tvd

    root = Path(root_str)
    if name == "cifar10":
        cls = _local_cifar10_class()
        tr, te = cls(root_str, train=True), cls(root_str, train=False)
        # (N, H, W, C) -> (N, C, H, W)
        X, Xt = (np.ascontiguousarray(d.data.transpose(0, 3, 1, 2)) for d in (tr, te))
        classes = tuple(str(c) for c in tr.classes)
    else:
        _gunzip_missing(name, root)
        cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
        tr, te = cls(root_str, train=True), cls(root_str, train=False)
        X, Xt = (d.data.numpy()[:, None, :, :] for d in (tr, te))
        classes = tuple(str(i) for i in range(10)) if name == "mnist" else _FASHION_CLASSES
    y, yt = (np.asarray(d.targets, dtype=np.int64) for d in (tr, te))
    return X, y, Xt, yt, classes


def _tv_loader(name: str) -> Callable[[DataSpec, int, Path | None], RawData]:
    def load(data: DataSpec, seed: int, root: Path | None) -> RawData:
        if root is None:
            raise _unavailable(name, None)
        if _tv_missing(name, root):
            _try_download(name, root)
            if missing := _tv_missing(name, root):
                raise _unavailable(name, root, f" (missing: {', '.join(missing)})")
        try:
            X, y, Xt, yt, classes = _tv_arrays(name, str(root), _tv_signature(name, root))
        except (OSError, RuntimeError, ValueError, TypeError, AssertionError,
                pickle.UnpicklingError, KeyError, EOFError) as e:
            raise DatasetUnavailable(
                f"dataset {name!r}: the files in {_tv_folder(name, root)} could not be read ({e})"
            ) from e
        return RawData(X=_to_unit(X), y=y, X_test=_to_unit(Xt), y_test=yt, classes=classes)

    return load


# --- uploaded folders -----------------------------------------------------------------------


def folder_path(dataset: str, root: Path | None) -> Path:
    """``<data_root>/uploads/<id>`` for ``folder:<id>``."""
    ident = dataset.removeprefix("folder:")
    if not FOLDER_ID.match(ident):
        raise ValueError(f"invalid folder dataset id {ident!r}")
    if root is None:
        raise DatasetUnavailable(
            f"dataset {dataset!r} is an uploaded folder, and no data folder (data_root) is "
            "configured for this worker"
        )
    return root / "uploads" / ident


def _folder_signature(path: Path) -> tuple:
    try:
        subdirs = sorted(p for p in path.iterdir() if p.is_dir())
        return (path.stat().st_mtime_ns,) + tuple((p.name, p.stat().st_mtime_ns) for p in subdirs)
    except OSError:
        return ()


def _folder_samples(path: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(file, class index)]) exactly as ImageFolder finds them."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    classes, class_to_idx = find_classes(str(path))
    samples = make_dataset(str(path), class_to_idx, extensions=IMG_EXTENSIONS)
    return classes, samples


@lru_cache(maxsize=2)
def _folder_arrays(path_str: str, signature: tuple) -> tuple[np.ndarray, np.ndarray, tuple]:
    from PIL import Image
    from torchvision.datasets import ImageFolder

    c, h, w = FOLDER_IMAGE_SHAPE

    def to_array(img: Image.Image) -> np.ndarray:
        # Squash to h×w (aspect ratio not kept), RGB; PIL's bilinear resize antialiases.
        return np.asarray(img.convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.uint8)

    try:
        ds = ImageFolder(path_str, transform=to_array)
    except (OSError, FileNotFoundError) as e:  # no class folder, or a class without images
        raise DatasetUnavailable(f"{path_str}: {e}") from e
    if len(ds.classes) < 2:
        raise DatasetUnavailable(
            f"{path_str} must hold at least two class folders with images in them"
        )
    X = np.empty((len(ds), h, w, c), dtype=np.uint8)
    y = np.empty(len(ds), dtype=np.int64)
    for i in range(len(ds)):
        try:
            X[i], y[i] = ds[i]
        except Exception as e:
            raise DatasetUnavailable(f"cannot read image {ds.samples[i][0]}: {e}") from e
    return np.ascontiguousarray(X.transpose(0, 3, 1, 2)), y, tuple(ds.classes)


def _load_folder(data: DataSpec, seed: int, root: Path | None) -> RawData:
    path = folder_path(data.dataset, root)
    if not path.is_dir():
        raise DatasetUnavailable(f"dataset {data.dataset!r}: no folder {path}")
    X, y, classes = _folder_arrays(str(path), _folder_signature(path))
    return RawData(X=_to_unit(X), y=y, classes=classes)


def _folder_info(dataset: str, root: Path | None = None) -> DatasetInfo:
    # The classes are the folder's, once it is unpacked under ``root``: a model built from
    # this entry (the thread timing's) needs their number before the data is loaded.
    classes: tuple[str, ...] = ()
    if root is not None and (path := folder_path(dataset, root)).is_dir():
        from torchvision.datasets.folder import find_classes

        try:
            classes = tuple(find_classes(str(path))[0])
        except OSError:  # no class folder: loading says so
            pass
    return DatasetInfo(
        name=dataset, kind="image", input_shape=FOLDER_IMAGE_SHAPE, classes=classes,
        load=_load_folder, standardize=False,
        description="Uploaded images (class folders), resized to 32×32 RGB.",
    )


_REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="digits", kind="image", input_shape=IMAGE_SHAPES["digits"],
            classes=tuple(str(i) for i in range(10)), load=_load_digits, standardize=False,
            description="scikit-learn's 1797 handwritten digits, 8×8 grey levels.",
            default_counts=(1797, None),
        ),
        DatasetInfo(
            name="mnist1d", kind="signal", input_shape=(1, 40),
            classes=tuple(str(i) for i in range(10)), load=_load_mnist1d, standardize=False,
            description="MNIST-1D (Greydanus 2020): 1-D signals of length 40, generated with "
            "the mnist1d package's defaults; official 4000/1000 train/test split.",
            default_counts=(4000, 1000),
        ),
        DatasetInfo(
            name="moons", kind="2d", input_shape=(2,),
            classes=("0", "1"), load=_load_moons, standardize=True,
            description="Two interleaving half circles (scikit-learn); noise 0.2 by default.",
            default_counts=(1000, None),
        ),
        DatasetInfo(
            name="circles", kind="2d", input_shape=(2,),
            classes=("outer", "inner"), load=_load_circles, standardize=True,
            description="A circle inside another (scikit-learn, factor 0.5); noise 0.1.",
            default_counts=(1000, None),
        ),
        DatasetInfo(
            name="spirals", kind="2d", input_shape=(2,),
            classes=("0", "1", "2"), load=_load_spirals, standardize=True,
            description="Three interleaved spiral arms, one class each, 1.25 turns; "
            "noise 0.05.",
            default_counts=(1000, None),
        ),
        DatasetInfo(
            name="xor", kind="2d", input_shape=(2,),
            classes=("0", "1"), load=_load_xor, standardize=True,
            description="Four Gaussian blobs at (±1, ±1), XOR labels; noise (std) 0.35.",
            default_counts=(1000, None),
        ),
        DatasetInfo(
            name="shapes", kind="image", input_shape=IMAGE_SHAPES["shapes"],
            classes=SHAPE_CLASSES, load=_load_shapes, standardize=False,
            description="Procedural 16×16 colour shapes: circle, square, triangle, cross, "
            "left and right arrows (a horizontal flip swaps the arrows).",
            default_counts=(3000, None),
        ),
        DatasetInfo(
            name="mnist", kind="image", input_shape=IMAGE_SHAPES["mnist"],
            classes=tuple(str(i) for i in range(10)), load=_tv_loader("mnist"),
            standardize=False,
            description="MNIST handwritten digits, 28×28 (torchvision); official 60000/10000.",
            default_counts=(60000, 10000),
        ),
        DatasetInfo(
            name="fashion_mnist", kind="image", input_shape=IMAGE_SHAPES["fashion_mnist"],
            classes=_FASHION_CLASSES, load=_tv_loader("fashion_mnist"), standardize=False,
            description="Fashion-MNIST clothing images, 28×28 (torchvision); official "
            "60000/10000.",
            default_counts=(60000, 10000),
        ),
        DatasetInfo(
            name="cifar10", kind="image", input_shape=IMAGE_SHAPES["cifar10"],
            classes=("airplane", "automobile", "bird", "cat", "deer",
                     "dog", "frog", "horse", "ship", "truck"),
            load=_tv_loader("cifar10"), standardize=False,
            description="CIFAR-10 colour images, 32×32 (torchvision); official 50000/10000.",
            default_counts=(50000, 10000),
        ),
    )
}
_TORCHVISION_SETS = ("mnist", "fashion_mnist", "cifar10")


def dataset_info(dataset: str, data_root: PathLike | None = None) -> DatasetInfo:
    """The registry entry (or a built one for ``folder:<id>``, with the classes of its folder
    under ``data_root`` when it is there); ValueError when unknown."""
    if dataset.startswith("folder:"):
        return _folder_info(dataset, _root(data_root))
    info = _REGISTRY.get(dataset)
    if info is None or dataset not in AVAILABLE_DATASETS:
        raise ValueError(f"dataset {dataset!r} is not available")
    return info


# --- splitting -----------------------------------------------------------------------------


def _split(
    X: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_keep, X_out, y_keep, y_out) with ``fraction`` held out, stratified by class where the
    class counts allow it (tiny synthetic sets may not)."""
    try:
        return train_test_split(X, y, test_size=fraction, random_state=seed, stratify=y)
    except ValueError:
        return train_test_split(X, y, test_size=fraction, random_state=seed)


def split_sizes(n: int, n_test: int | None, val_fraction: float, test_fraction: float) -> dict:
    """The sizes ``load_dataset`` produces for n examples (n_test: official test examples),
    without loading anything: scikit-learn holds out ceil(fraction · n)."""
    if n_test is None:
        n_test = ceil(test_fraction * n)
        n -= n_test
    n_val = ceil(val_fraction * n)
    return {"train": n - n_val, "val": n_val, "test": n_test}


def load_raw(dataset: DataSpec | str, seed: int = 0, data_root: PathLike | None = None) -> RawData:
    """All examples of a dataset before splitting (generated from ``seed`` where synthetic)."""
    data = DataSpec(dataset=dataset) if isinstance(dataset, str) else dataset
    info = dataset_info(data.dataset)
    return info.load(data, derive_seed(seed, "data"), _root(data_root))


def load_dataset(spec: Spec, data_root: PathLike | None = None) -> Splits:
    """Load ``spec.data.dataset`` and split it reproducibly from ``spec.seed``.

    The test part is held out first (unless the dataset ships an official one), then
    ``val_fraction`` of what remains becomes S_v; the rest is the training set S.
    ``data_root``: the folder holding torchvision's files, uploads and the MNIST-1D cache.
    """
    data = spec.data
    info = dataset_info(data.dataset)
    raw = load_raw(data, spec.seed, data_root)
    split_seed = derive_seed(spec.seed, "split")
    if raw.X_test is not None and raw.y_test is not None:
        X_rest, y_rest, X_test, y_test = raw.X, raw.y, raw.X_test, raw.y_test
    else:
        X_rest, X_test, y_rest, y_test = _split(raw.X, raw.y, data.test_fraction, split_seed)
    X_train, X_val, y_train, y_val = _split(X_rest, y_rest, data.val_fraction, split_seed + 1)

    if info.standardize:
        # Training statistics only: S_v and the test set must not leak into the inputs.
        mean = X_train.mean(axis=0, keepdims=True)
        std = X_train.std(axis=0, keepdims=True)
        std[std == 0] = 1.0
        X_train, X_val, X_test = ((a - mean) / std for a in (X_train, X_val, X_test))

    def tx(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def ty(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))

    return Splits(
        X_train=tx(X_train), y_train=ty(y_train),
        X_val=tx(X_val), y_val=ty(y_val),
        X_test=tx(X_test), y_test=ty(y_test),
        classes=list(raw.classes or info.classes),
        input_shape=info.input_shape,
        kind=info.kind,
    )


# --- description ----------------------------------------------------------------------------


def _entry(info: DatasetInfo, classes, counts, available: bool, reason: str | None) -> dict:
    defaults = DataSpec()
    out = {
        "name": info.name,
        "kind": info.kind,
        "input_shape": list(info.input_shape),
        "classes": list(classes),
        "sizes": split_sizes(*counts, defaults.val_fraction, defaults.test_fraction)
        if available else None,
        "available": available,
        "description": info.description,
    }
    if reason:
        out["reason"] = reason
    return out


def _idx_count(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        head = f.read(8)
    return int.from_bytes(head[4:8], "big")


@lru_cache(maxsize=32)
def _describe_tv(name: str, root_str: str, signature: tuple) -> dict:
    root = Path(root_str)
    info = _REGISTRY[name]
    missing = _tv_missing(name, root)
    if missing:
        return _entry(info, info.classes, (0, None), False,
                      f"files not found: put {_tv_where(name, root)}")
    try:
        if name == "cifar10":
            folder = _tv_folder(name, root)

            def count(f: str) -> int:
                with open(folder / f, "rb") as fh:
                    return len(pickle.load(fh, encoding="latin1")["labels"])

            n = sum(count(f"data_batch_{i}") for i in range(1, 6))
            n_test = count("test_batch")
            with open(folder / "batches.meta", "rb") as fh:
                classes = tuple(pickle.load(fh, encoding="latin1")["label_names"])
        else:
            folder = _tv_folder(name, root)

            def first(f: str) -> Path:
                return folder / f if (folder / f).is_file() else folder / f"{f}.gz"

            n = _idx_count(first("train-labels-idx1-ubyte"))
            n_test = _idx_count(first("t10k-labels-idx1-ubyte"))
            classes = info.classes
    except (OSError, KeyError, ValueError, pickle.UnpicklingError, EOFError) as e:
        return _entry(info, info.classes, (0, None), False, f"files unreadable: {e}")
    return _entry(info, classes, (n, n_test), True, None)


@lru_cache(maxsize=64)
def _describe_folder(dataset: str, path_str: str, signature: tuple) -> dict:
    info = _folder_info(dataset)
    try:
        classes, samples = _folder_samples(Path(path_str))
    except (OSError, ValueError) as e:  # FileNotFoundError: no class folder or empty class
        return _entry(info, (), (0, None), False, str(e))
    if len(classes) < 2 or not samples:
        return _entry(info, classes, (0, None), False,
                      "needs at least two class folders with images in them")
    return _entry(info, classes, (len(samples), None), True, None)


def describe_datasets(data_root: PathLike | None = None, *, uploads: bool = False) -> list[dict]:
    """Every dataset a spec can name, with its split sizes under the default fractions:
    ``{name, kind, input_shape, classes, sizes, available, description[, reason]}``.

    Nothing is loaded: sizes are computed from example counts (file headers for MNIST, the
    pickles' label lists for CIFAR-10, a directory scan for uploads), cached until the files
    change. Sets whose files are absent are listed with ``available: false`` and a reason.
    With ``uploads=True``, the folders under ``<data_root>/uploads/`` are listed too, as
    ``folder:<id>`` (off by default: the API lists uploads from its own records).
    """
    root = _root(data_root)
    out = []
    for name, info in _REGISTRY.items():
        if name not in AVAILABLE_DATASETS:
            continue
        if name in _TORCHVISION_SETS:
            if root is None:
                out.append(_entry(info, info.classes, (0, None), False,
                                  "no data folder (data_root) is configured"))
            else:
                out.append(_describe_tv(name, str(root), _tv_signature(name, root)))
        else:
            out.append(_entry(info, info.classes, info.default_counts, True, None))
    folder = None if root is None or not uploads else root / "uploads"
    if folder is not None and folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_dir() and FOLDER_ID.match(path.name):
                out.append(_describe_folder(
                    f"folder:{path.name}", str(path), _folder_signature(path)
                ))
    return out
