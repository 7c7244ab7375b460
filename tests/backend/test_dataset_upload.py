"""Uploads: a zip of class folders is accepted; hostile or broken ones are refused by name."""

from __future__ import annotations

import io
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
