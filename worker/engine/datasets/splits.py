"""Split a dataset reproducibly from the seed, normalise it with training statistics, and
hand it over as whole tensors.

Every dataset is small enough to live on the device in full, so training indexes tensors
directly instead of going through a DataLoader. The loaders (the catalog names one per
dataset) return all examples, and the official test split where there is one; splitting and
normalisation are shared, here. numpy, torch and scikit-learn are imported by the functions
that use them, so that this module (and the package) can be imported by the API.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from math import ceil
from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import Kind, RawData, dataset_info

if TYPE_CHECKING:
    import numpy as np
    import torch

    from ..spec import DataSpec, Spec

PathLike = str | os.PathLike[str]


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
        return math.prod(self.input_shape)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 32-bit seed per purpose, so changing how the data is generated never
    shifts the split (and vice versa). crc32 rather than hash(): str hashes vary per process."""
    import numpy as np

    ss = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())])
    return int(ss.generate_state(1)[0])


def _root(data_root: PathLike | None) -> Path | None:
    return None if data_root is None else Path(data_root).expanduser().resolve()


# --- splitting -----------------------------------------------------------------------------


def _split(
    X: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_keep, X_out, y_keep, y_out) with ``fraction`` held out, stratified by class where the
    class counts allow it (tiny synthetic sets may not)."""
    from sklearn.model_selection import train_test_split

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
    from ..spec import DataSpec  # the spec imports the catalog: import it when called

    data = DataSpec(dataset=dataset) if isinstance(dataset, str) else dataset
    info = dataset_info(data.dataset)
    return info.load(data, derive_seed(seed, "data"), _root(data_root))


def load_dataset(spec: Spec, data_root: PathLike | None = None) -> Splits:
    """Load ``spec.data.dataset`` and split it reproducibly from ``spec.seed``.

    The test part is held out first (unless the dataset ships an official one), then
    ``val_fraction`` of what remains becomes S_v; the rest is the training set S.
    ``data_root``: the folder holding torchvision's files, uploads and the MNIST-1D cache.
    """
    import numpy as np
    import torch

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

