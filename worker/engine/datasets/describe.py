"""What ``/api/datasets`` lists: every dataset a spec can name, whether it can be loaded here,
and its split sizes, without loading anything (file headers, pickles' label lists, a
directory scan). No torch: the API process calls it.
"""

from __future__ import annotations

import gzip
import pickle
from functools import lru_cache
from pathlib import Path

from .catalog import CATALOG, FOLDER_ID, FOLDER_PREFIX, DatasetInfo, folder_info
from .files import (
    folder_samples,
    folder_signature,
    tv_folder,
    tv_missing,
    tv_signature,
    tv_where,
)
from .splits import PathLike, _root, split_sizes


def _entry(info: DatasetInfo, classes, counts, available: bool, reason: str | None) -> dict:
    from ..spec import DataSpec  # the spec imports the catalog: import it when called

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
    info = CATALOG[name]
    missing = tv_missing(name, root)
    if missing:
        return _entry(info, info.classes, (0, None), False,
                      f"files not found: put {tv_where(name, root)}")
    try:
        if name == "cifar10":
            folder = tv_folder(name, root)

            def count(f: str) -> int:
                with open(folder / f, "rb") as fh:
                    return len(pickle.load(fh, encoding="latin1")["labels"])

            n = sum(count(f"data_batch_{i}") for i in range(1, 6))
            n_test = count("test_batch")
            with open(folder / "batches.meta", "rb") as fh:
                classes = tuple(pickle.load(fh, encoding="latin1")["label_names"])
        else:
            folder = tv_folder(name, root)

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
    info = folder_info(dataset, Path(path_str).parent.parent)
    if info.default_counts[0] and (Path(path_str) / "meta.json").is_file():  # processed upload
        return _entry(info, info.classes, info.default_counts, len(info.classes) >= 2, None)
    try:
        classes, samples = folder_samples(Path(path_str))
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
    for name, info in CATALOG.items():
        if info.from_files:
            if root is None:
                out.append(_entry(info, info.classes, (0, None), False,
                                  "no data folder (data_root) is configured"))
            else:
                out.append(_describe_tv(name, str(root), tv_signature(name, root)))
        else:
            out.append(_entry(info, info.classes, info.default_counts, True, None))
    folder = None if root is None or not uploads else root / "uploads"
    if folder is not None and folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_dir() and FOLDER_ID.match(path.name):
                out.append(_describe_folder(
                    f"{FOLDER_PREFIX}{path.name}", str(path), folder_signature(path)
                ))
    return out
