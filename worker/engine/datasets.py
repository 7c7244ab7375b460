"""Datasets as whole tensors: load, split by seed, normalise with training statistics.

Every dataset is small enough to live on the device in full, so training indexes tensors
directly instead of going through a DataLoader. A dataset is one entry in ``_REGISTRY``:
a loader that returns all examples (and the official test split where there is one), plus
how its inputs are shaped and normalised. Adding circles, mnist1d or a torchvision set means
writing one loader and registering it; the splitting and normalisation are shared.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from .spec import AVAILABLE_DATASETS, DataSpec, Spec

Kind = Literal["tabular", "2d", "image", "signal"]


@dataclass(frozen=True)
class RawData:
    """Everything a loader produces, before splitting. X is (N, *input_shape) float32."""

    X: np.ndarray
    y: np.ndarray
    # Official test split, for sets that ship one (MNIST, CIFAR-10); None = carve one out.
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: Kind
    input_shape: tuple[int, ...]
    classes: tuple[str, ...]
    load: Callable[[DataSpec, int], RawData]  # (data spec, derived seed) -> raw data
    # True: standardise each feature with the training part's mean and std (synthetic 2-D
    # sets); False: the loader already put inputs on a sensible scale (pixels in [0, 1]).
    standardize: bool


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


# --- loaders -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    # Cached: describe_datasets() and every run would otherwise re-read sklearn's CSV.
    from sklearn.datasets import load_digits

    d = load_digits()
    # Pixels are 0..16; scale to [0, 1] and keep the image layout for CNNs (the MLP flattens).
    X = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return X, d.target.astype(np.int64)


def _load_digits(data: DataSpec, seed: int) -> RawData:
    X, y = _digits_arrays()
    return RawData(X=X, y=y)


def _load_moons(data: DataSpec, seed: int) -> RawData:
    from sklearn.datasets import make_moons

    X, y = make_moons(
        n_samples=data.n_samples or 1000,
        noise=0.2 if data.noise is None else data.noise,
        random_state=seed,
    )
    return RawData(X=X.astype(np.float32), y=y.astype(np.int64))


_REGISTRY: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="digits", kind="image", input_shape=(1, 8, 8),
            classes=tuple(str(i) for i in range(10)), load=_load_digits, standardize=False,
        ),
        DatasetInfo(
            name="moons", kind="2d", input_shape=(2,),
            classes=("0", "1"), load=_load_moons, standardize=True,
        ),
    )
}


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


def load_dataset(spec: Spec) -> Splits:
    """Load ``spec.data.dataset`` and split it reproducibly from ``spec.seed``.

    The test part is held out first (unless the dataset ships an official one), then
    ``val_fraction`` of what remains becomes S_v; the rest is the training set S.
    """
    data = spec.data
    info = _REGISTRY.get(data.dataset)
    if info is None or data.dataset not in AVAILABLE_DATASETS:
        raise ValueError(f"dataset {data.dataset!r} is not available")

    raw = info.load(data, derive_seed(spec.seed, "data"))
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
        classes=list(info.classes),
        input_shape=info.input_shape,
        kind=info.kind,
    )


def describe_datasets() -> list[dict]:
    """The datasets a run can use now, with their split sizes under the default fractions."""
    out = []
    for name, info in _REGISTRY.items():
        if name not in AVAILABLE_DATASETS:
            continue
        splits = load_dataset(Spec(data=DataSpec(dataset=name)))
        out.append({
            "name": name,
            "kind": info.kind,
            "input_shape": list(info.input_shape),
            "classes": list(info.classes),
            "sizes": splits.sizes(),
        })
    return out
