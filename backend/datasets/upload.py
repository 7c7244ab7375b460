"""Check an uploaded zip of class folders before anything is written anywhere.

Refused, each with a message that names the entry or the limit: entries with absolute paths
or '..' (zip slip), symlinks, too many files, too large once decompressed (bombs, judged from
the real decompressed bytes, not the header's claims), files that are not images, images that
are truncated or larger than the pixel limit, and folders that do not form classes.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from dataclasses import dataclass, field

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db")


class UploadRejected(ValueError):
    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.message, self.too_large = message, too_large


@dataclass
class Limits:
    max_bytes: int
    max_files: int
    max_uncompressed_bytes: int
    max_image_pixels: int
    max_classes: int = 1000


@dataclass
class CheckedArchive:
    classes: list[str]
    counts: dict[str, int]
    # (class name, file name, bytes) of every image, ready to be written by whoever stores it.
    images: list[tuple[str, str, bytes]] = field(repr=False)


def _safe_parts(name: str) -> list[str]:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UploadRejected(f"zip entry {name!r} has an absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UploadRejected(f"zip entry {name!r} points outside the archive ('..')")
    return parts


def _read_limited(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """Decompress at most ``budget`` bytes: a bomb's header may lie about its size."""
    with archive.open(info) as f:
        data = f.read(budget + 1)
    if len(data) > budget:
        raise UploadRejected("the archive decompresses to more than the limit of "
                             "max_uncompressed_bytes", too_large=True)
    return data


def check_archive(data: bytes, limits: Limits) -> CheckedArchive:
    if len(data) > limits.max_bytes:
        raise UploadRejected(f"upload is {len(data)} bytes; the limit max_upload_bytes is "
                             f"{limits.max_bytes}", too_large=True)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadRejected(f"not a readable zip archive: {exc}") from None
    entries = []
    for info in infos:
        parts = _safe_parts(info.filename)  # every entry is checked before any is read
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise UploadRejected(f"zip entry {info.filename!r} is a symbolic link")
        if info.is_dir() or not parts or any(info.filename.startswith(i) or parts[-1] == i
                                                for i in IGNORED):
            continue
        if parts[-1].startswith("."):
            continue
        entries.append((info, parts))
    if len(entries) > limits.max_files:
        raise UploadRejected(f"{len(entries)} files; the limit max_upload_files is "
                             f"{limits.max_files}", too_large=True)
    if not entries:
        raise UploadRejected("the archive holds no files; expected one folder per class")

    # One shared top folder (a zipped folder) is stripped: its subfolders are the classes.
    tops = {parts[0] for _, parts in entries}
    strip = 1 if len(tops) == 1 and all(len(p) >= 3 for _, p in entries) else 0
    not_images = [info.filename for info, parts in entries
                  if posixpath.splitext(parts[-1])[1].lower() not in IMAGE_SUFFIXES]
    if not_images:
        shown = ", ".join(not_images[:10]) + (" …" if len(not_images) > 10 else "")
        raise UploadRejected(f"not image files: {shown}")
    misplaced = [info.filename for info, parts in entries if len(parts) - strip != 2]
    if misplaced:
        raise UploadRejected("expected <class>/<image> entries (one folder per class), got: "
                             + ", ".join(misplaced[:10]))

    budget = limits.max_uncompressed_bytes
    images, counts = [], {}
    for info, parts in entries:
        blob = _read_limited(archive, info, budget)
        budget -= len(blob)
        label, filename = parts[strip], parts[-1]
        try:
            with Image.open(io.BytesIO(blob)) as img:
                width, height = img.size
                if width * height > limits.max_image_pixels:
                    raise UploadRejected(
                        f"{info.filename} is {width}×{height} pixels; the limit max_image_pixels "
                        f"is {limits.max_image_pixels}", too_large=True)
                img.load()  # decodes fully: truncated files fail here
        except UploadRejected:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
                Image.DecompressionBombError) as exc:
            raise UploadRejected(f"{info.filename} is not a readable image: {exc}") from None
        images.append((label, filename, blob))
        counts[label] = counts.get(label, 0) + 1
    if len(counts) < 2:
        raise UploadRejected(f"found {len(counts)} class folder(s); a dataset needs at least 2")
    if len(counts) > limits.max_classes:
        raise UploadRejected(f"{len(counts)} classes; the limit is {limits.max_classes}")
    return CheckedArchive(classes=sorted(counts), counts=counts, images=images)
