"""Public API behaviour that needs no worker: listing, deleting, limits, routing, refusals.

Real database and real brokers; runs stay queued because nothing consumes them.
"""

from __future__ import annotations

import base64
import json

import pytest
import redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from backend.app import create_app
from backend.deps import MAX_ID
from tests.backend.test_dataset_upload import GOOD, make_zip
from tests.conftest import free_port


@pytest.fixture
def client(configure, db_url) -> TestClient:
    configure(database_url=db_url)
    with TestClient(create_app()) as client:
        yield client


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()]


def test_run_list_pages_newest_first_and_filters_by_status(client: TestClient) -> None:
    ids = [client.post("/api/runs", json={"name": f"r{i}"}).json()["id"] for i in range(5)]
    for run_id in (ids[1], ids[3]):
        assert client.post(f"/api/runs/{run_id}/cancel").json()["status"] == "cancelled"
    newest_first = ids[::-1]
    assert _ids(client.get("/api/runs")) == newest_first
    assert _ids(client.get("/api/runs", params={"limit": 2})) == newest_first[:2]
    assert _ids(client.get("/api/runs", params={"limit": 2, "offset": 2})) == newest_first[2:4]
    assert _ids(client.get("/api/runs", params={"offset": 4})) == newest_first[4:]
    assert _ids(client.get("/api/runs", params={"offset": 5})) == []
    assert _ids(client.get("/api/runs", params={"status": "cancelled"})) == [ids[3], ids[1]]
    assert _ids(client.get("/api/runs", params={"status": "queued", "limit": 2, "offset": 1})) == [
        ids[2], ids[0]]
    assert _ids(client.get("/api/runs", params={"status": "succeeded"})) == []
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}):
        answer = client.get("/api/runs", params=bad)
        assert answer.status_code == 422, bad
        assert answer.json()["detail"][0]["field"] == next(iter(bad))


def test_delete_uploaded_dataset(client: TestClient) -> None:
    uploaded = client.post("/api/datasets", files={"file": ("pets.zip", make_zip(GOOD))}).json()
    other = client.post("/api/datasets", files={"file": ("more.zip", make_zip(GOOD))}).json()

    def listed() -> list[str]:
        return [d["name"] for d in client.get("/api/datasets").json() if d.get("uploaded")]

    assert set(listed()) == {uploaded["name"], other["name"]}
    assert client.delete(f"/api/datasets/{uploaded['id']}").status_code == 204
    assert listed() == [other["name"]]  # only that one went
    again = client.delete(f"/api/datasets/{uploaded['id']}")
    assert again.status_code == 404 and uploaded["id"] in again.json()["detail"]
    assert client.delete("/api/datasets/nope").status_code == 404


def test_delete_study_removes_its_queued_runs_and_nothing_else(client: TestClient) -> None:
    alone = client.post("/api/runs", json={"name": "not in the study"}).json()
    study = client.post("/api/studies", json={"seeds": 3, "pack": False}).json()
    kept = client.post("/api/studies", json={"seeds": 2}).json()
    assert client.delete(f"/api/studies/{study['id']}").status_code == 204
    assert client.get(f"/api/studies/{study['id']}").status_code == 404
    for run in study["runs"]:
        assert client.get(f"/api/runs/{run['id']}").status_code == 404
    remaining = _ids(client.get("/api/runs"))
    assert sorted(remaining) == sorted([alone["id"], *(r["id"] for r in kept["runs"])])
    assert [s["id"] for s in client.get("/api/studies").json()] == [kept["id"]]
    assert client.delete(f"/api/studies/{study['id']}").status_code == 404


def test_lr_on_a_queued_run_is_accepted_and_kept_for_the_worker(client: TestClient) -> None:
    run = client.post("/api/runs", json={"optim": {"lr": 0.1}}).json()
    answer = client.post(f"/api/runs/{run['id']}/lr", json={"lr": 0.025})
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
    assert client.post(f"/api/runs/{run['id']}/lr", json={"lr": 0}).status_code == 422
    assert client.post("/api/runs/424242/lr", json={"lr": 0.1}).status_code == 404
    from backend.db import new_session
    from backend.runs.models import Run

    with new_session() as session:
        assert session.get(Run, run["id"]).requested_lr == pytest.approx(0.025)


@pytest.mark.parametrize(
    ("setting", "value", "spec", "field"),
    [
        ("EPOQUE_MAX_DEPTH", 3, {"model": {"hidden": [8, 8, 8, 8]}}, "model.hidden"),
        ("EPOQUE_MAX_MEMBERS", 4, {"ensemble": {"members": 5}}, "ensemble.members"),
        ("EPOQUE_MAX_N_SAMPLES", 500, {"data": {"dataset": "moons", "n_samples": 501}},
         "data.n_samples"),
    ],
)
def test_spec_limit_is_422_naming_field_and_limit(
    configure, monkeypatch, setting: str, value: int, spec: dict, field: str
) -> None:
    monkeypatch.setenv(setting, str(value))
    configure()
    name = setting.removeprefix("EPOQUE_").lower()
    with TestClient(create_app()) as client:
        refused = client.post("/api/runs", json=spec)
        assert refused.status_code == 422
        [detail] = refused.json()["detail"]
        assert detail["field"] == field and f"{name} = {value}" in detail["msg"]
        study = client.post("/api/studies", json={"base": spec, "seeds": 2})
        assert study.status_code == 422 and study.json()["detail"][0]["field"] == f"base.{field}"
        assert client.get("/api/runs").json() == [] and client.get("/api/studies").json() == []
        # At the limit itself the spec is accepted.
        at_limit = json.loads(json.dumps(spec).replace(str(value + 1), str(value)))
        if setting == "EPOQUE_MAX_DEPTH":
            at_limit = {"model": {"hidden": [8] * value}}
        assert client.post("/api/runs", json=at_limit).status_code == 201


def test_a_broker_that_refuses_work_is_503_and_nothing_is_kept(configure, db_url) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    configure(database_url=db_url, broker_url=closed)
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json={})
        assert run.status_code == 503 and "broker" in run.json()["detail"]
        assert "Traceback" not in run.text and "127.0.0.1" not in run.text
        study = client.post("/api/studies", json={"seeds": 2})
        assert study.status_code == 503 and "broker" in study.json()["detail"]
        assert client.get("/api/runs").json() == [] and client.get("/api/studies").json() == []


def _queued_run_ids(broker: redis.Redis, queue: str) -> list[int]:
    """The run ids of the task messages waiting in a kombu Redis queue (a list of JSON)."""
    ids = []
    for raw in broker.lrange(queue, 0, -1):
        message = json.loads(raw)
        assert message["headers"]["task"] == "epoque.run_training"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return ids


@pytest.mark.redis
def test_cuda_runs_wait_on_the_gpu_queue(configure, pg_url, redis_url) -> None:
    configure(database_url=pg_url, broker_url=redis_url)  # no worker consumes either queue
    broker = redis.Redis.from_url(redis_url)
    with TestClient(create_app()) as client:
        gpu = [client.post("/api/runs", json={"device": device}).json()["id"]
               for device in ("cuda", "cuda:1")]
        cpu = [client.post("/api/runs", json={"device": device}).json()["id"]
               for device in ("cpu", "auto")]
    assert sorted(_queued_run_ids(broker, "gpu")) == sorted(gpu)
    assert sorted(_queued_run_ids(broker, "cpu")) == sorted(cpu)


def test_stream_refuses_ids_and_cursors_out_of_range(client: TestClient) -> None:
    run = client.post("/api/runs", json={}).json()
    for path in ("/api/runs/0/stream", f"/api/runs/{MAX_ID + 1}/stream",
                 f"/api/runs/{run['id']}/stream?after=-1",
                 f"/api/runs/{run['id']}/stream?after={2**62 + 1}"):
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(path) as ws:
            ws.receive_json()
        assert closed.value.code == 4422, path
        assert "out of range" in closed.value.reason
