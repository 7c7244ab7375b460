"""Datasets read from files under the data root: torchvision's MNIST, Fashion-MNIST and
CIFAR-10 formats, and uploaded folders of class subfolders (``folder:<id>``).

``data_root`` is the folder under which torchvision's files (``MNIST/raw/…``,
``FashionMNIST/raw/…``, ``cifar-10-batches-py/…``), uploads (``uploads/<id>/``) and the
generated MNIST-1D cache (``mnist1d/``) live. Without one, only the built-in sets load.
torchvision (and numpy) are imported by the loaders only, so that describing what is on disk
(``describe.py``, in the API process) needs neither.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import socket
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import (
    FASHION_CLASSES,
    FOLDER_ID,
    FOLDER_IMAGE_SHAPE,
    FOLDER_PREFIX,
    DatasetUnavailable,
    RawData,
)

if TYPE_CHECKING:
    import numpy as np

    from ..spec import DataSpec

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

def _to_unit(a: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1], as torchvision's to_dtype(scale=True) does."""
    import numpy as np

    return a.astype(np.float32) / np.float32(255)


def tv_folder(name: str, root: Path) -> Path:
    if name == "mnist":
        return root / "MNIST" / "raw"
    if name == "fashion_mnist":
        return root / "FashionMNIST" / "raw"
    return root / "cifar-10-batches-py"


def tv_missing(name: str, root: Path) -> list[str]:
    """Files still missing (an MNIST file may be present gzipped)."""
    folder = tv_folder(name, root)
    if name == "cifar10":
        return [f for f in _CIFAR_FILES if not (folder / f).is_file()]
    return [
        f for f in _MNIST_FILES
        if not (folder / f).is_file() and not (folder / f"{f}.gz").is_file()
    ]


def tv_where(name: str, root: Path | None) -> str:
    base = Path("<data_root>") if root is None else root
    folder = tv_folder(name, base)
    if name == "cifar10":
        return (f"{', '.join(_CIFAR_FILES)} (the python version of CIFAR-10, "
                f"cifar-10-python.tar.gz, extracted) in {folder}/")
    return f"{', '.join(_MNIST_FILES)} (or the same names + .gz) in {folder}/"


def tv_signature(name: str, root: Path) -> tuple:
    """Changes when the dataset's files change (for the caches)."""
    folder = tv_folder(name, root)
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
        f"dataset {name!r} not found: put {tv_where(name, root)}{why}"
    )


def _gunzip_missing(name: str, root: Path) -> None:
    """torchvision's MNIST reader wants the uncompressed idx files; unpack any .gz ones."""
    folder = tv_folder(name, root)
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
    from . import ALLOW_DOWNLOAD  # the package's switch, read when a download would start

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
    import numpy as np
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
        classes = tuple(str(i) for i in range(10)) if name == "mnist" else FASHION_CLASSES
    y, yt = (np.asarray(d.targets, dtype=np.int64) for d in (tr, te))
    return X, y, Xt, yt, classes


def _tv_loader(name: str) -> Callable[[DataSpec, int, Path | None], RawData]:
    def load(data: DataSpec, seed: int, root: Path | None) -> RawData:
        if root is None:
            raise _unavailable(name, None)
        if tv_missing(name, root):
            _try_download(name, root)
            if missing := tv_missing(name, root):
                raise _unavailable(name, root, f" (missing: {', '.join(missing)})")
        try:
            X, y, Xt, yt, classes = _tv_arrays(name, str(root), tv_signature(name, root))
        except (OSError, RuntimeError, ValueError, TypeError, AssertionError,
                pickle.UnpicklingError, KeyError, EOFError) as e:
            raise DatasetUnavailable(
                f"dataset {name!r}: the files in {tv_folder(name, root)} could not be read ({e})"
            ) from e
        return RawData(X=_to_unit(X), y=y, X_test=_to_unit(Xt), y_test=yt, classes=classes)

    return load


load_mnist = _tv_loader("mnist")
load_fashion_mnist = _tv_loader("fashion_mnist")
load_cifar10 = _tv_loader("cifar10")


# --- uploaded folders -----------------------------------------------------------------------


def folder_path(dataset: str, root: Path | None) -> Path:
    """``<data_root>/uploads/<id>`` for ``folder:<id>``."""
    ident = dataset.removeprefix(FOLDER_PREFIX)
    if not FOLDER_ID.match(ident):
        raise ValueError(f"invalid folder dataset id {ident!r}")
    if root is None:
        raise DatasetUnavailable(
            f"dataset {dataset!r} is an uploaded folder, and no data folder (data_root) is "
            "configured for this worker"
        )
    return root / "uploads" / ident


def folder_signature(path: Path) -> tuple:
    try:
        subdirs = sorted(p for p in path.iterdir() if p.is_dir())
        return (path.stat().st_mtime_ns,) + tuple((p.name, p.stat().st_mtime_ns) for p in subdirs)
    except OSError:
        return ()


def folder_samples(path: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(file, class index)]) exactly as ImageFolder finds them."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    classes, class_to_idx = find_classes(str(path))
    samples = make_dataset(str(path), class_to_idx, extensions=IMG_EXTENSIONS)
    return classes, samples


@lru_cache(maxsize=2)
def _folder_arrays(path_str: str, signature: tuple) -> tuple[np.ndarray, np.ndarray, tuple]:
    import numpy as np
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


@lru_cache(maxsize=2)
def _processed_arrays(path_str: str, signature: tuple) -> tuple[np.ndarray, np.ndarray, tuple]:
    """An upload's images as processed at ingestion (uint8, FOLDER_IMAGE_SHAPE) and classes."""
    import json

    import numpy as np

    path = Path(path_str)
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        with np.load(path / "data.npz") as data:
            X, y = data["X"], data["y"].astype(np.int64)
    except (OSError, ValueError, KeyError) as e:
        raise DatasetUnavailable(f"the processed images of {path.name} cannot be read ({e})") from e
    if X.shape[1:] != FOLDER_IMAGE_SHAPE or len(X) != len(y):
        raise DatasetUnavailable(f"the processed images of {path.name} have shape {X.shape}")
    return X, y, tuple(meta["classes"])


def load_folder(data: DataSpec, seed: int, root: Path | None) -> RawData:
    path = folder_path(data.dataset, root)
    if not path.is_dir():
        raise DatasetUnavailable(f"dataset {data.dataset!r} is not unpacked here (no folder "
                                 f"{path})")
    if (path / "meta.json").is_file():
        stat = (path / "data.npz").stat()
        X, y, classes = _processed_arrays(str(path), (stat.st_size, stat.st_mtime_ns))
        return RawData(X=_to_unit(X), y=y, classes=classes)
    X, y, classes = _folder_arrays(str(path), folder_signature(path))
    return RawData(X=_to_unit(X), y=y, classes=classes)
