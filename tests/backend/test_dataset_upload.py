"""Uploads: a zip of class folders is accepted; hostile or broken ones are refused by name."""

from __future__ import annotations

import base64
import io
import unicodedata
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from backend.app import create_app
from backend.config import get_settings


def png(size: tuple[int, int] = (12, 12), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


GOOD = {f"{label}/{i}.png": png(colour=c) for label, c in (("cats", (200, 0, 0)), ("dogs", (0, 0, 200)))
        for i in range(3)}


@pytest.fixture
def client(configure, monkeypatch) -> TestClient:
    monkeypatch.setenv("EPOQUE_MAX_UPLOAD_UNCOMPRESSED_BYTES", str(2**20))
    monkeypatch.setenv("EPOQUE_MAX_IMAGE_PIXELS", str(256 * 256))
    monkeypatch.setenv("EPOQUE_MAX_UPLOAD_BYTES", str(4 * 2**20))
    configure()
    with TestClient(create_app()) as client:
        yield client


def _upload(client: TestClient, data: bytes, name: str = "set.zip"):
    return client.post("/api/datasets", files={"file": (name, data, "application/zip")})


def _uploaded(client: TestClient) -> list[dict]:
    return [d for d in client.get("/api/datasets").json() if d.get("uploaded")]


def _files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_zip_of_class_folders_is_accepted(client: TestClient) -> None:
    response = _upload(client, make_zip({f"pets/{k}": v for k, v in GOOD.items()}))  # top folder ok
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["classes"] == ["cats", "dogs"] and body["n_images"] == 6
    assert body["name"] == f"folder:{body['id']}"
    assert [d["id"] for d in _uploaded(client)] == [body["id"]]


@pytest.mark.parametrize(
    ("entries", "status", "reason"),
    [
        ({"../evil.png": png(), **GOOD}, 422, "outside the archive"),
        ({"/etc/evil.png": png(), **GOOD}, 422, "absolute path"),
        ({"cats/notes.txt": b"hello", **GOOD}, 422, "cats/notes.txt"),
        ({"cats/broken.png": png()[:40], **GOOD}, 422, "cats/broken.png is not a readable image"),
        ({"cats/huge.png": png((300, 300)), **GOOD}, 413, "max_image_pixels"),
        ({"cats/bomb.png": b"\0" * (3 * 2**20), **GOOD}, 413, "max_upload_uncompressed_bytes"),
        ({"cats/a.png": png()}, 422, "at least 2"),
        ({"loose.png": png(), **GOOD}, 422, "one folder per class"),
    ],
)
def test_hostile_or_broken_uploads_are_refused_and_nothing_is_kept(
    client: TestClient, entries: dict[str, bytes], status: int, reason: str
) -> None:
    data_dir = get_settings().data_dir
    before = _files_under(data_dir / "datasets")
    response = _upload(client, make_zip(entries))
    assert response.status_code == status, response.text
    assert reason in response.json()["detail"]
    assert _uploaded(client) == []
    assert _files_under(data_dir / "datasets") == before
    assert _files_under(data_dir / "tmp") == set()  # the received zip is removed
    assert not (data_dir.parent / "evil.png").exists()


def test_not_a_zip_and_too_big(client: TestClient) -> None:
    response = _upload(client, b"this is not a zip")
    assert response.status_code == 422 and "not a readable zip" in response.json()["detail"]
    response = _upload(client, b"\0" * (4 * 2**20 + 10))
    assert response.status_code == 413 and "max_upload_bytes" in response.json()["detail"]
    assert _uploaded(client) == []


def image(fmt: str, colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (12, 12),
          **save: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt, **save)
    return out.getvalue()


def test_names_are_kept_as_unicode_nfc(client: TestClient) -> None:
    """Before: 猫 and 犬 both became `_` (training failed), été and ôté one class `_t_`, and
    é/è/ê.png one file. Now every name is kept as written (NFC)."""
    nfd = unicodedata.normalize("NFD", "été")
    entries = {f"猫/{i}.png": png() for i in range(2)} | {f"犬/{i}.png": png() for i in range(2)}
    entries |= {f"{nfd}/{c}.png": png() for c in "éèê"} | {"ôté/a.png": png()}
    response = _upload(client, make_zip(entries))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["classes"] == sorted(["猫", "犬", "été", "ôté"])  # NFD été stored as NFC
    assert body["counts"] == {"猫": 2, "犬": 2, "été": 3, "ôté": 1}
    assert body["n_images"] == 8


@pytest.mark.parametrize(
    ("entries", "first", "second"),
    [
        # Two class folders, one name once normalised: "é" as one code point and as e + accent.
        ({"\u00e9t\u00e9/a.png": png(), "e\u0301te\u0301/b.png": png(), "x/c.png": png()},
         "\u00e9t\u00e9", "e\u0301te\u0301"),
        # Two files of one class, one name once normalised.
        ({"cats/\u00e9.png": png(), "cats/e\u0301.png": png(), "dogs/a.png": png()},
         "cats/\u00e9.png", "cats/e\u0301.png"),
    ],
)
def test_names_that_collide_once_normalised_are_refused_naming_both(
    client: TestClient, entries: dict[str, bytes], first: str, second: str
) -> None:
    response = _upload(client, make_zip(entries))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "same" in detail and "NFC" in detail
    # Both named, and told apart by their code points.
    assert ascii(first) in detail and ascii(second) in detail
    assert _uploaded(client) == []


def test_pillow_formats_are_accepted_and_a_gif_gives_its_first_frame(client: TestClient) -> None:
    """Before: a class of .gif files was accepted and then could not be read."""
    frames = [Image.new("RGB", (12, 12), c) for c in ((250, 0, 0), (0, 0, 250))]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    entries = {"gifs/anim.gif": gif.getvalue(), "gifs/still.gif": image("GIF"),
               "mixed/a.jpg": image("JPEG"), "mixed/b.bmp": image("BMP"),
               "mixed/c.webp": image("WEBP"), "mixed/d.png": image("PNG", (0, 200, 0))}
    response = _upload(client, make_zip(entries))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["counts"] == {"gifs": 2, "mixed": 4} and body["input_shape"] == [3, 32, 32]
    samples = client.get(f"/api/datasets/{body['id']}/samples").json()
    [first, _] = samples["classes"][0]["samples"]  # gifs: anim.gif, then still.gif
    pixel = Image.open(io.BytesIO(base64.b64decode(first))).convert("RGB").getpixel((5, 5))
    assert pixel[0] > 200 and pixel[2] < 50  # the first frame (red), not the second (blue)


@pytest.mark.parametrize(
    ("entries", "named"),
    [
        ({"cats/scan.tif": image("TIFF"), **GOOD}, "cats/scan.tif"),
        ({"cats/photo.png": image("TIFF"), **GOOD}, "cats/photo.png"),  # a TIFF named .png
        ({"cats/icon.ico": image("ICO"), **GOOD}, "cats/icon.ico"),
    ],
)
def test_other_formats_are_refused_naming_the_file(
    client: TestClient, entries: dict[str, bytes], named: str
) -> None:
    response = _upload(client, make_zip(entries))
    assert response.status_code == 422, response.text
    assert named in response.json()["detail"] and "PNG, JPEG, BMP, GIF or WebP" in response.json()["detail"]
    assert _uploaded(client) == []


def test_long_names_are_handled(client: TestClient) -> None:
    """Before: a 300-character file name was accepted and failed at unpacking."""
    long_file, long_class = "f" * 296 + ".png", "c" * 300
    response = _upload(client, make_zip({f"cats/{long_file}": png(), f"{long_class}/a.png": png(),
                                         **GOOD}))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["counts"] == {"cats": 4, long_class: 1, "dogs": 3}
    samples = client.get(f"/api/datasets/{body['id']}/samples").json()
    assert [len(c["samples"]) for c in samples["classes"]] == [4, 1, 3]
