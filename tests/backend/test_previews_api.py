"""Augmentation previews through the API: seeded, distinct, PNGs that decode."""

from __future__ import annotations

import base64
import io

from fastapi.testclient import TestClient
from PIL import Image

from backend.app import create_app


def _image(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_augment_preview_is_seeded_and_gives_n_distinct_images(configure) -> None:
    configure()
    body = {"dataset": "shapes", "index": 6, "n": 6, "seed": 3,
            "augment": [{"op": "random_rotation", "degrees": 45}]}
    with TestClient(create_app()) as client:
        first = client.post("/api/previews/augment", json=body)
        assert first.status_code == 200, first.text
        again = client.post("/api/previews/augment", json=body).json()
        first = first.json()
        other = client.post("/api/previews/augment", json={**body, "seed": 4}).json()
    assert [s["seed"] for s in first["samples"]] == [3, 4, 5, 6, 7, 8]
    pngs = [s["png"] for s in first["samples"]]
    assert len(set(pngs)) == 6  # six different rotations
    assert pngs == [s["png"] for s in again["samples"]]  # same seed, same images
    assert pngs[1:] == [s["png"] for s in other["samples"]][:-1]  # sample k is seed + k
    assert _image(first["original"]).size[0] >= 64  # upscaled so small images are visible
    # The label every augmented copy keeps: the example's class, as the dataset has it.
    from worker.engine.datasets import dataset_info, load_raw
    from worker.engine.spec import DataSpec

    raw = load_raw(DataSpec(dataset="shapes"), 0, None)
    assert first["label"] == dataset_info("shapes").classes[int(raw.y[6])]


def test_jitter_preview_shows_each_component_with_trials(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        body = client.post("/api/previews/jitter", json={"dataset": "shapes", "index": 1}).json()
    assert [c["name"] for c in body["components"]] == ["brightness", "contrast", "saturation", "hue"]
    for component in body["components"]:
        assert [t["trial"] for t in component["trials"]] == [0, 1, 2, 3]
        _image(component["trials"][0]["png"]).verify()


def test_bad_preview_requests_name_the_problem(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        bad_op = client.post("/api/previews/augment",
                             json={"augment": [{"op": "random_rotation", "degrees": "lots"}]})
        assert bad_op.status_code == 422 and bad_op.json()["detail"][0]["field"].startswith("augment.0")
        far = client.post("/api/previews/augment", json={"index": 10**6})
        assert far.status_code == 422 and far.json()["detail"][0]["field"] == "index"
        flat = client.post("/api/previews/augment", json={"dataset": "moons"})
        assert flat.status_code == 422


def test_own_image_preview(configure) -> None:
    configure()
    img = Image.new("RGB", (40, 30), (10, 200, 30))
    for x in range(10):
        img.putpixel((x, 5), (255, 0, 0))  # something a flip moves
    raw = io.BytesIO()
    img.save(raw, format="PNG")
    ops = '[{"op": "random_horizontal_flip", "p": 1.0}]'
    with TestClient(create_app()) as client:
        answer = client.post("/api/previews/image", files={"file": ("me.png", raw.getvalue())},
                             data={"augment": ops, "n": "2", "seed": "1"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["samples"]) == 2
        flipped = _image(body["samples"][0]["png"]).convert("RGB")
        original = _image(body["original"]).convert("RGB")
        assert flipped.transpose(Image.Transpose.FLIP_LEFT_RIGHT).tobytes() == original.tobytes()
        bad = client.post("/api/previews/image", files={"file": ("x.png", b"nope")})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "file"
        bad = client.post("/api/previews/image", files={"file": ("me.png", raw.getvalue())},
                          data={"augment": '[{"op": "random_rotation", "degrees": "x"}]'})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"].startswith("augment.0")
