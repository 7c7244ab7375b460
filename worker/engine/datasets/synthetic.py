"""Datasets that need no files: generated from the seed (moons, circles, spirals, xor, shapes),
generated once offline (MNIST-1D) or bundled with scikit-learn (digits).

Each ``load_<name>(data, seed, root)`` is the loader the catalog names for that dataset; it
returns every example as a RawData, before any split. No torch here.
"""

from __future__ import annotations

import os
import random
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .catalog import CATALOG, SHAPE_CLASSES, RawData

if TYPE_CHECKING:
    from ..spec import DataSpec


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    # Cached: describe_datasets() and every run would otherwise re-read sklearn's CSV.
    from sklearn import datasets as skd

    d = skd.load_digits()
    # Pixels are 0..16; scale to [0, 1] and keep the image layout for CNNs (the MLP flattens).
    X = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return X, d.target.astype(np.int64)


def load_digits(data: DataSpec, seed: int, root: Path | None) -> RawData:
    X, y = _digits_arrays()
    return RawData(X=X, y=y)


def _noise(data: DataSpec, default: float) -> float:
    return default if data.noise is None else data.noise


def load_moons(data: DataSpec, seed: int, root: Path | None) -> RawData:
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=data.n_samples or 1000, noise=_noise(data, 0.2), random_state=seed)
    return RawData(X=X.astype(np.float32), y=y.astype(np.int64))


def load_circles(data: DataSpec, seed: int, root: Path | None) -> RawData:
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


def load_spirals(data: DataSpec, seed: int, root: Path | None) -> RawData:
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


def load_xor(data: DataSpec, seed: int, root: Path | None) -> RawData:
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


def load_mnist1d(data: DataSpec, seed: int, root: Path | None) -> RawData:
    a = _mnist1d_arrays(root)
    # (N, 40) -> (N, 1, 40): one channel, so a 1-D CNN sees the layout of a signal.
    return RawData(
        X=a["x"][:, None, :], y=a["y"], X_test=a["x_test"][:, None, :], y_test=a["y_test"]
    )


# --- shapes ---------------------------------------------------------------------------------

SHAPES_SIZE = CATALOG["shapes"].input_shape[-1]
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


def load_shapes(data: DataSpec, seed: int, root: Path | None) -> RawData:
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

