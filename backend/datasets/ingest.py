"""Decode a batch of a zip's images into the training shape; runs in a pool process.

Only Pillow, numpy and the standard library: the pool's processes are spawned fresh and import
this module alone (not the API). Each image is judged by its header before it is decoded: its
pixel count against the limit, its format against the accepted ones. A JPEG is decoded at the
smallest scale that still covers the target (``draft``: 1/2 to 1/8 of the work and memory);
other formats are reduced by whole factors first (``reducing_gap``), then resized.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
FORMATS_TEXT = "PNG, JPEG, BMP, GIF or WebP"


@dataclass
class Batch:
    """Decoded images ``(n, C, H, W)`` uint8, or the first refusal (``error``)."""

    pixels: bytes = b""
    used_bytes: int = 0  # decompressed bytes read
    error: str | None = None
    too_large: bool = False


def _read(archive: zipfile.ZipFile, name: str, budget: int) -> bytes | None:
    """At most ``budget`` bytes of the entry; None when it holds more (a bomb's header lies)."""
    with archive.open(name) as f:
        data = f.read(budget + 1)
    return None if len(data) > budget else data


def _decode(blob: bytes, name: str, shape: tuple[int, int, int], max_pixels: int) -> np.ndarray:
    c, h, w = shape
    with Image.open(io.BytesIO(blob), formats=FORMATS) as img:
        width, height = img.size
        if width * height > max_pixels:
            raise _Refused(f"{name} is {width}×{height} pixels; the limit max_image_pixels is "
                           f"{max_pixels}", too_large=True)
        if img.format == "JPEG":
            img.draft("RGB", (w, h))  # decodes at 1/2..1/8 scale, never below (w, h)
        img.seek(0)  # a GIF's (or animated WebP's) first frame
        frame = img
        if frame.mode.startswith("I"):  # 16-bit grey levels: the top 8 bits, not clipped
            frame = Image.fromarray(
                (np.asarray(frame, dtype=np.float32) / 256).clip(0, 255).astype(np.uint8), "L")
        elif frame.mode not in ("RGB", "RGBA", "L", "LA"):
            frame = frame.convert("RGBA" if "transparency" in frame.info else "RGB")
        # Squashed to h×w (aspect ratio not kept), as the training images are.
        small = frame.resize((w, h), Image.BILINEAR, reducing_gap=2.0)
        if small.mode in ("RGBA", "LA"):  # transparent parts on white, as a viewer shows them
            small = Image.alpha_composite(Image.new("RGBA", small.size, (255, 255, 255, 255)),
                                          small.convert("RGBA"))
        rgb = small.convert("RGB" if c == 3 else "L")
        out = np.asarray(rgb, dtype=np.uint8)
    return out.reshape(h, w, c).transpose(2, 0, 1)


class _Refused(Exception):
    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.message, self.too_large = message, too_large


def decode_batch(zip_path: str, names: list[str], shape: tuple[int, int, int],
                 max_pixels: int, budget: int) -> Batch:
    """The images ``names`` of the zip, resized to ``shape``; ``budget``: decompressed bytes
    the upload may still read."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    Image.MAX_IMAGE_PIXELS = max(max_pixels, 1)  # Pillow's own bomb check, at our limit
    out = np.empty((len(names), *shape), dtype=np.uint8)
    used = 0
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for i, name in enumerate(names):
                blob = _read(archive, name, budget - used)
                if blob is None:
                    return Batch(error="the archive decompresses to more than the limit "
                                 "max_upload_uncompressed_bytes", too_large=True)
                used += len(blob)
                try:
                    out[i] = _decode(blob, name, shape, max_pixels)
                except _Refused:
                    raise
                except UnidentifiedImageError:
                    raise _Refused(f"{name} is not a readable image: not a {FORMATS_TEXT} "
                                   "file that Pillow can read (convert it or leave it out)"
                                   ) from None
                except Image.DecompressionBombError:
                    raise _Refused(f"{name} has more pixels than the limit max_image_pixels "
                                   f"({max_pixels})", too_large=True) from None
                except (OSError, SyntaxError, ValueError, EOFError) as exc:
                    raise _Refused(f"{name} is not a readable image ({exc})") from None
    except _Refused as exc:
        return Batch(error=exc.message, too_large=exc.too_large)
    except (zipfile.BadZipFile, OSError) as exc:
        return Batch(error=f"the archive could not be read: {exc}")
    return Batch(pixels=out.tobytes(), used_bytes=used)


def thumbnail_png(pixels: np.ndarray, scale: int = 2) -> bytes:
    """A (C, H, W) uint8 image as a PNG, enlarged ``scale`` times without smoothing."""
    c, h, w = pixels.shape
    img = Image.fromarray(pixels.transpose(1, 2, 0).reshape(h, w, c).squeeze(),
                          "RGB" if c == 3 else "L")
    out = io.BytesIO()
    img.resize((w * scale, h * scale), Image.NEAREST).save(out, format="PNG")
    return out.getvalue()
