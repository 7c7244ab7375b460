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
from backend.db import engine_for as get_engine_for
from backend.db import get_engine
from tests.conftest import wait_for


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


def _many(n: int, per_class: int = 3) -> bytes:
    return make_zip({f"{label}/{i}.png": png(colour=c) for label, c in
                     (("a", (200, 0, 0)), ("b", (0, 0, 200))) for i in range(per_class)}
                    | {f"pad/{i}.png": png() for i in range(n)})


def test_quotas_on_datasets_and_their_bytes(client: TestClient, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_MAX_DATASETS", "2")
    # Three processed images of 3×32×32 bytes fit twice, not three times over.
    monkeypatch.setenv("EPOQUE_MAX_DATASET_BYTES", str(20 * 3 * 32 * 32))
    get_settings.cache_clear()
    first = _upload(client, _many(0, per_class=4))  # 8 images
    assert first.status_code == 201, first.text
    too_big = _upload(client, _many(10))  # 16 more: over the bytes budget
    assert too_big.status_code == 413 and "max_dataset_bytes" in too_big.json()["detail"]
    assert _upload(client, _many(0)).status_code == 201  # 6 more: fits
    third = _upload(client, _many(0, per_class=1))
    assert third.status_code == 409 and "max_datasets is 2" in third.json()["detail"]
    # Deleting one makes room again.
    assert client.delete(f"/api/datasets/{first.json()['id']}").status_code == 204
    assert _upload(client, _many(0, per_class=1)).status_code == 201


def test_upload_without_waiting_reports_its_progress(client: TestClient) -> None:
    response = client.post("/api/datasets", params={"wait": "false"},
                           files={"file": ("set.zip", _many(200), "application/zip")})
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] == "processing" and started["available"] is False
    assert started["progress"] == {"done": 0, "total": 206}
    seen = []

    def ready() -> bool:
        body = client.get(f"/api/datasets/{started['id']}").json()
        seen.append(body["progress"]["done"])
        return body["status"] == "ready"

    wait_for(ready, 60, "the upload to be processed", every=0.01)
    assert seen == sorted(seen) and seen[-1] == 206
    body = client.get(f"/api/datasets/{started['id']}").json()
    assert body["available"] is True and body["input_shape"] == [3, 32, 32]


def test_a_failed_upload_without_waiting_says_why(client: TestClient) -> None:
    response = client.post("/api/datasets", params={"wait": "false"},
                           files={"file": ("set.zip", make_zip({"cats/bad.png": png()[:40],
                                                                **GOOD}), "application/zip")})
    assert response.status_code == 202, response.text
    ident = response.json()["id"]
    failed = wait_for(lambda: (b := client.get(f"/api/datasets/{ident}").json())["status"]
                      == "failed" and b, 60, "the upload to fail")
    assert failed["available"] is False and "cats/bad.png" in failed["reason"]
    assert client.post("/api/runs", json={"data": {"dataset": f"folder:{ident}"}}).status_code == 422
    assert client.delete(f"/api/datasets/{ident}").status_code == 204


def test_deleting_a_dataset_shrinks_the_sqlite_file(client: TestClient) -> None:
    """Before: deleting datasets left a 2.0 GB file (and 2.5 GB of WAL)."""
    def pages() -> tuple[int, int]:
        with get_engine().connect() as conn:
            return (conn.exec_driver_sql("PRAGMA page_count").scalar(),
                    conn.exec_driver_sql("PRAGMA freelist_count").scalar())

    before, _ = pages()
    body = _upload(client, _many(600)).json()  # 606 images: about 1.9 MB processed
    with_it, _ = pages()
    assert (with_it - before) * 4096 > 1.5 * 2**20
    assert client.delete(f"/api/datasets/{body['id']}").status_code == 204
    after, free = pages()
    assert free == 0 and after - before < 20  # the pages went back to the file system
    assert not (get_settings().data_dir / "datasets" / "uploads" / body["id"]).exists()


def test_previews_of_an_upload_in_the_augmentation_lab(client: TestClient) -> None:
    """Your own dataset's flips and ColorJitter, from its processed images."""
    body = _upload(client, make_zip(GOOD)).json()
    flipped = client.post("/api/previews/augment", json={
        "dataset": body["name"], "index": 0, "n": 2, "seed": 0,
        "augment": [{"op": "random_horizontal_flip", "p": 1.0}]})
    assert flipped.status_code == 200, flipped.text
    out = flipped.json()
    assert out["label"] in ("cats", "dogs") and len(out["samples"]) == 2
    original = Image.open(io.BytesIO(base64.b64decode(out["original"])))
    assert original.size[0] >= 32  # the 32×32 training image (maybe enlarged for display)
    jitter = client.post("/api/previews/jitter", json={"dataset": body["name"], "index": 1,
                                                       "trials": 2})
    assert jitter.status_code == 200, jitter.text


def test_a_worker_elsewhere_unpacks_an_upload_from_the_database(
    configure, db_url: str, tmp_path: Path
) -> None:
    """A worker on another machine has no copy under its data root: it writes one from the
    chunk rows, identical to the API's; once the dataset is deleted, the rows are gone too."""
    from backend.datasets.service import chunk_count, materialize
    from backend.db import new_session
    from worker.engine.datasets import dataset_info, load_raw

    configure(database_url=db_url)
    with TestClient(create_app()) as client:
        body = _upload(client, make_zip(GOOD)).json()
        elsewhere = tmp_path / "other-machine"
        with new_session() as session:
            path = materialize(session=session, dataset_id=body["id"], data_root=elsewhere)
        local = get_settings().data_dir / "datasets" / "uploads" / body["id"]
        assert (path / "data.npz").read_bytes() == (local / "data.npz").read_bytes()
        info = dataset_info(body["name"], elsewhere)
        assert info.classes == ("cats", "dogs") and info.input_shape == (3, 32, 32)
        assert info.default_counts == (6, None)
        raw = load_raw(body["name"], data_root=elsewhere)
        assert raw.X.shape == (6, 3, 32, 32) and sorted(raw.y.tolist()) == [0, 0, 0, 1, 1, 1]
        # cats are red, dogs blue: the first channel tells them apart
        assert all((x[0].mean() > x[2].mean()) == (y == 0) for x, y in zip(raw.X, raw.y, strict=True))
        assert client.delete(f"/api/datasets/{body['id']}").status_code == 204
        with new_session() as session:
            assert chunk_count(session=session, dataset_id=body["id"]) == 0
        # The next dataset that worker unpacks sweeps the deleted one's copy away.
        assert path.is_dir()
        other = _upload(client, make_zip(GOOD)).json()
        with new_session() as session:
            materialize(session=session, dataset_id=other["id"], data_root=elsewhere)
        assert not path.exists() and (elsewhere / "uploads" / other["id"]).is_dir()


def test_uploads_of_version_1_are_marked_failed_by_the_migration(configure, db_url: str) -> None:
    """They kept only their zip (never processed, they could not train): the migration frees
    it and says why; downgrading works."""
    from alembic import command

    from backend.migrate import alembic_config

    command.upgrade(alembic_config(db_url), "0010")
    with get_engine_for(db_url).begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO datasets (id, name, classes, counts, n_images, size_bytes, created_at, "
            "archive) VALUES ('old1', 'pets', '[\"a\", \"b\"]', '{\"a\": 1, \"b\": 1}', 2, 100, "
            "'2026-01-01', NULL)")
    configure(database_url=db_url)  # upgrades to head
    with TestClient(create_app()) as client:
        [old] = _uploaded(client)
        assert old["status"] == "failed" and old["available"] is False
        assert "upload it again" in old["reason"]
        response = client.post("/api/runs", json={"data": {"dataset": "folder:old1"}})
        assert response.status_code == 422 and "upload it again" in response.json()["detail"][0]["msg"]
    command.downgrade(alembic_config(db_url), "0010")
    command.upgrade(alembic_config(db_url), "head")
    get_engine_for(db_url).dispose()


def _decoded(tmp_path: Path, img: Image.Image, fmt: str, **save: object) -> list[int]:
    """The centre pixel of ``img`` as ingestion stores it (3×32×32 RGB)."""
    import numpy as np

    from backend.datasets.ingest import decode_batch

    blob = io.BytesIO()
    img.save(blob, format=fmt, **save)
    path = tmp_path / "one.zip"
    path.write_bytes(make_zip({"a/x": blob.getvalue()}))
    batch = decode_batch(str(path), ["a/x"], (3, 32, 32), 10**8, 10**9)
    assert batch.error is None, batch.error
    return np.frombuffer(batch.pixels, dtype=np.uint8).reshape(3, 32, 32)[:, 16, 16].tolist()


def test_image_modes_are_converted_to_rgb(tmp_path: Path) -> None:
    import numpy as np

    # 16-bit grey levels keep their top 8 bits (40000 / 256 = 156.25), not clipped to 255.
    grey16 = Image.fromarray(np.full((40, 40), 40000, dtype=np.uint16))
    assert _decoded(tmp_path, grey16, "PNG") == [156] * 3
    # Transparency goes on white: 128 at alpha 200/255 over 255 is 128·200/255 + 255·55/255.
    assert _decoded(tmp_path, Image.new("LA", (40, 40), (128, 200)), "PNG") == [155] * 3
    clear = Image.new("P", (40, 40), 0)
    clear.putpalette([255, 0, 0] * 256)
    assert _decoded(tmp_path, clear, "GIF", transparency=0) == [255, 255, 255]
    # A palette image and a CMYK JPEG become their RGB colours.
    palette = Image.new("P", (40, 40), 5)
    palette.putpalette([0, 0, 0] * 5 + [10, 200, 10] + [0, 0, 0] * 250)
    assert _decoded(tmp_path, palette, "PNG") == [10, 200, 10]
    red = _decoded(tmp_path, Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG", quality=95)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15
