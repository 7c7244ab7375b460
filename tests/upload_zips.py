"""Zips of class folders for upload tests: patterns a small network tells apart easily."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

# One class per pattern; the third's name is not ASCII (kept as written, NFC).
CLASSES = ("horizontal", "vertical", "damier été")


# Each class also has its colour: a small network learns the set from 50-odd images.
_COLOURS = ((220, 60, 40), (40, 200, 60), (50, 80, 230))


def pattern(kind: int, size: int, rng: np.random.Generator) -> Image.Image:
    """Stripes across (reddish), stripes down (greenish) or a checkerboard (bluish), with a
    random phase, shade and noise."""
    period = size // 4
    phase = int(rng.integers(0, period))
    i, j = np.mgrid[0:size, 0:size]
    if kind == 0:
        mask = ((i + phase) // (period // 2)) % 2
    elif kind == 1:
        mask = ((j + phase) // (period // 2)) % 2
    else:
        mask = (((i + phase) // period) + ((j + phase) // period)) % 2
    fg = np.array(_COLOURS[kind]) + rng.integers(-30, 31, 3)
    bg = rng.integers(0, 50, 3)
    img = np.where(mask[..., None] == 1, fg, bg) + rng.normal(0, 10, (size, size, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


def pattern_zip(per_class: int = 30, seed: int = 0, top: str | None = None) -> bytes:
    """``per_class`` images of each class of CLASSES, PNG and JPEG alternately, 28 to 44 px."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for kind, label in enumerate(CLASSES):
            for n in range(per_class):
                fmt = "PNG" if n % 2 == 0 else "JPEG"
                img = pattern(kind, int(rng.integers(28, 45)), rng)
                name = f"{label}/{n:03d}.{'png' if fmt == 'PNG' else 'jpg'}"
                z.writestr(f"{top}/{name}" if top else name, encode(img, fmt))
    return out.getvalue()
