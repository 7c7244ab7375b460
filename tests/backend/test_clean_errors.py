"""Bad input answers 422 naming the field, and no message shows a path, an object repr or
SQL; non-finite numbers are refused; the API never downloads; a multipart content type does
not lift the JSON body limit."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DataError

from backend.app import create_app
from backend.db import new_session
from backend.public_text import public_error
from backend.runs.lifecycle import claim_run, finish_run


@pytest.fixture
def client(configure):
    configure()
    with TestClient(create_app()) as client:
        yield client


def _png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def _field(response) -> str:
    assert response.status_code == 422, response.text
    return response.json()["detail"][0]["field"]


def test_reflect_padding_larger_than_ones_own_image_is_422(client) -> None:
    ops = [{"op": "random_crop", "size": 8, "padding": 200, "padding_mode": "reflect"}]
    answer = client.post("/api/previews/image", files={"file": ("a.png", _png(8), "image/png")},
                         data={"augment": json.dumps(ops)})
    assert _field(answer) == "augment.0.padding"
    fine = client.post("/api/previews/image", files={"file": ("a.png", _png(8), "image/png")},
                       data={"augment": json.dumps([{**ops[0], "padding": 2}]), "n": "2"})
    assert fine.status_code == 200


def test_unreadable_image_says_so_without_an_object_repr(client) -> None:
    answer = client.post("/api/previews/image", files={"file": ("a.png", b"not an image")})
    assert _field(answer) == "file"
    assert "object at 0x" not in answer.text and "readable image" in answer.text


def test_a_torchvision_preview_without_files_says_so_without_downloading(client) -> None:
    answer = client.post("/api/previews/augment", json={"dataset": "cifar10"})
    assert _field(answer) == "dataset"
    msg = answer.json()["detail"][0]["msg"]
    assert "not found" in msg and "<data dir>/datasets/cifar-10-batches-py/" in msg
    assert "download" not in msg  # no attempt was made (it said "downloading them failed")
    assert "/tmp" not in msg


@pytest.mark.parametrize(("body", "field"), [
    (b'{"model": {"init": {"scheme": "constant", "value": NaN}}}', "model.init.value"),
    (b'{"optim": {"weight_decay": Infinity}}', "optim.weight_decay"),
    (b'{"data": {"dataset": "moons", "noise": -Infinity}}', "data.noise"),
])
def test_non_finite_numbers_in_a_spec_are_422(client, body: bytes, field: str) -> None:
    answer = client.post("/api/runs", content=body, headers={"content-type": "application/json"})
    assert _field(answer) == field
    study = client.post("/api/studies", content=b'{"grid": {"optim.weight_decay": [0, NaN]}}',
                        headers={"content-type": "application/json"})
    assert _field(study) == "grid.optim.weight_decay"
    ops = client.post("/api/previews/augment", content=b'{"dataset": "shapes", "augment": '
                      b'[{"op": "random_rotation", "degrees": NaN}]}',
                      headers={"content-type": "application/json"})
    assert _field(ops) == "augment.0.degrees"
    assert client.get("/api/runs").json() == []


def test_multipart_content_type_does_not_lift_the_json_body_limit(client) -> None:
    big = b'{"name": "' + b"x" * (3 * 2**20) + b'"}'
    answer = client.post("/api/runs", content=big,
                         headers={"content-type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 413 and "max_body_bytes" in answer.json()["detail"]
    # The upload routes keep their own, larger limit.
    upload = client.post("/api/previews/image",
                         files={"file": ("a.png", b"\0" * (3 * 2**20), "image/png")})
    assert _field(upload) == "file"


def test_a_runs_stored_error_shows_no_path(client, configure) -> None:
    run_id = client.post("/api/runs", json={}).json()["id"]
    with new_session() as session:
        token = claim_run(session=session, run_id=run_id, worker="test").token
        finish_run(session=session, run_id=run_id, token=token, status="failed",
                   error="FileNotFoundError: [Errno 2] No such file: '/home/alice/lab/x.pt'")
    error = client.get(f"/api/runs/{run_id}").json()["error"]
    assert error == "FileNotFoundError: [Errno 2] No such file: '…/x.pt'"


def test_a_database_error_is_stored_without_its_sql(tmp_path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'tiny.sqlite'}")
    event.listen(engine, "connect", lambda conn, _: conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 500))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (b BLOB)"))
        with pytest.raises(DataError) as caught:
            conn.execute(text("INSERT INTO t (b) VALUES (:b)"), {"b": b"\0" * 1000})
    assert "INSERT" in str(caught.value)
    message = public_error(caught.value)
    assert "too big" in message and "INSERT" not in message and "SQL" not in message
    engine.dispose()
