"""Check an uploaded zip's directory before any image in it is decoded.

Refused, each with a message that names the entry or the limit: entries with absolute paths
or '..' (zip slip), symlinks, too many files, files that are not of an accepted image format,
folders that do not form classes, and names that coincide once normalised (Unicode NFC: "é"
written as one code point or as e + combining accent is one name). Decompressed sizes (bombs),
pixel counts and readability are judged while the images are decoded (ingest.py), from the
real bytes, not the headers' claims.
"""

from __future__ import annotations

import posixpath
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# What Pillow reads and we accept (a GIF's first frame); named by suffix here and checked
# again by the decoder's own format detection.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
FORMATS_TEXT = "PNG, JPEG, BMP, GIF or WebP"
IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")


class UploadRejected(ValueError):
    def __init__(self, message: str, too_large: bool = False) -> None:
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
class Listing:
    """The images of a checked zip, in a stable order (class, then file name)."""

    classes: list[str]
    counts: dict[str, int]
    # (zip entry name, class index) per image.
    entries: list[tuple[str, int]] = field(repr=False)


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _safe_parts(name: str) -> list[str]:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UploadRejected(f"zip entry {name!r} has an absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UploadRejected(f"zip entry {name!r} points outside the archive ('..')")
    return parts


def _shown(names: list[str]) -> str:
    return ", ".join(names[:10]) + (" …" if len(names) > 10 else "")


def check_directory(path: Path, limits: Limits) -> Listing:
    """The zip at ``path`` (already on disk, at most max_upload_bytes) as classes and images."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
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
        raise UploadRejected(f"not images of an accepted format ({FORMATS_TEXT}): "
                             f"{_shown(not_images)}")
    misplaced = [info.filename for info, parts in entries if len(parts) - strip != 2]
    if misplaced:
        raise UploadRejected("expected <class>/<image> entries (one folder per class), got: "
                             + _shown(misplaced))

    # Names as Unicode NFC: two entries that are one name once normalised are refused by name
    # (one would silently replace the other).
    class_of: dict[str, str] = {}  # NFC class -> the folder name as written
    seen: dict[tuple[str, str], str] = {}  # (NFC class, NFC file) -> entry name
    images: list[tuple[str, str, str]] = []
    for info, parts in entries:
        label, filename = nfc(parts[strip]), nfc(parts[-1])
        written = class_of.setdefault(label, parts[strip])
        if written != parts[strip]:
            raise UploadRejected(f"class folders {written!r} and {parts[strip]!r} (written "
                                 f"{written!a} and {parts[strip]!a}) are the same "
                                 "name once Unicode-normalised (NFC); rename one")
        if (label, filename) in seen:
            first = seen[label, filename]
            raise UploadRejected(f"zip entries {first!r} and {info.filename!r} (written "
                                 f"{first!a} and {info.filename!a}) are the same file "
                                 "once Unicode-normalised (NFC); rename one")
        seen[label, filename] = info.filename
        images.append((label, filename, info.filename))
    classes = sorted(class_of)
    if len(classes) < 2:
        raise UploadRejected(f"found {len(classes)} class folder(s); a dataset needs at least 2")
    if len(classes) > limits.max_classes:
        raise UploadRejected(f"{len(classes)} classes; the limit is {limits.max_classes}")
    index = {c: i for i, c in enumerate(classes)}
    images.sort()
    counts = {c: 0 for c in classes}
    for label, _, _ in images:
        counts[label] += 1
    return Listing(classes=classes, counts=counts,
                   entries=[(entry, index[label]) for label, _, entry in images])
