"""The runs API on SQLite and on this machine's PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.app import create_app
from backend.db import new_session
from backend.runs.models import MetricPoint, Run


@pytest.fixture
def client(configure, db_url: str) -> Iterator[TestClient]:
    configure(database_url=db_url)
    with TestClient(create_app()) as client:
        yield client


def _count_runs() -> int:
    with new_session() as session:
        return session.scalar(select(func.count()).select_from(Run)) or 0


def test_create_list_get_delete(client: TestClient) -> None:
    created = client.post("/api/runs", json={"name": "first", "training": {"max_epochs": 3}})
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["status"] == "queued"
    assert run["name"] == "first"
    assert run["progress"] == {"epoch": 0, "max_epochs": 3}
    assert run["spec"]["optim"]["lr"] == 0.1  # defaults are filled in and stored
    second = client.post("/api/runs", json={}).json()

    listed = client.get("/api/runs").json()
    assert [r["id"] for r in listed] == [second["id"], run["id"]]  # newest first
    assert [r["id"] for r in client.get("/api/runs", params={"status": "succeeded"}).json()] == []

    fetched = client.get(f"/api/runs/{run['id']}")
    assert fetched.status_code == 200 and fetched.json()["id"] == run["id"]

    assert client.delete(f"/api/runs/{run['id']}").status_code == 204
    assert client.get(f"/api/runs/{run['id']}").status_code == 404
    assert client.delete(f"/api/runs/{run['id']}").status_code == 404
    assert [r["id"] for r in client.get("/api/runs").json()] == [second["id"]]


@pytest.mark.parametrize(
    ("spec", "field", "reason"),
    [
        ({"seed": "abc"}, "seed", "valid integer"),
        ({"colour": "blue"}, "colour", "Extra inputs are not permitted"),
        ({"optim": {"lr": -1}}, "optim.lr", "greater than 0"),
        ({"optim": {"batch_size": 0}}, "optim.batch_size", "at least 1"),
        ({"data": {"dataset": "imagenet"}}, "data.dataset", "unknown dataset"),
        ({"model": {"hidden": [0]}}, "model.hidden.0", "greater than or equal to 1"),
        ({"training": {"max_epochs": 0}}, "training.max_epochs", "greater than or equal to 1"),
    ],
)
def test_invalid_spec_is_422_naming_the_field_and_writes_nothing(
    client: TestClient, spec: dict, field: str, reason: str
) -> None:
    before = _count_runs()
    response = client.post("/api/runs", json=spec)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["field"] == field and reason in d["msg"] for d in detail), detail
    assert _count_runs() == before


def test_body_that_is_not_a_spec_object(client: TestClient) -> None:
    assert client.post("/api/runs", json=[1, 2]).status_code == 422
    assert client.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_metrics_json_cursor_and_csv(client: TestClient) -> None:
    from backend.runs.lifecycle import claim_run, record_epoch

    run = client.post("/api/runs", json={"training": {"max_epochs": 2}}).json()
    with new_session() as session:
        claimed = claim_run(session=session, run_id=run["id"], worker="test")
        assert claimed.attempt == 1
        record_epoch(session=session, run_id=run["id"], token=claimed.token, epoch=1,
                     points=[("train_loss", 1, 0.9), ("val_accuracy", 1, 0.5)])
        record_epoch(session=session, run_id=run["id"], token=claimed.token, epoch=2,
                     points=[("train_loss", 2, float("nan")), ("val_accuracy", 2, 0.75),
                             ("train_loss", 1, 123.0)])  # a replayed point is kept once
    body = client.get(f"/api/runs/{run['id']}/metrics").json()
    assert body["series"] == {"train_loss": [[1, 0.9], [2, None]],
                              "val_accuracy": [[1, 0.5], [2, 0.75]]}
    later = client.get(f"/api/runs/{run['id']}/metrics",
                       params={"after": 0, "keys": "val_accuracy"}).json()
    assert later["series"] == {"val_accuracy": [[1, 0.5], [2, 0.75]]}
    first_two = client.get(f"/api/runs/{run['id']}/metrics").json()["cursor"]
    assert client.get(f"/api/runs/{run['id']}/metrics", params={"after": first_two}).json() == {
        "series": {}, "cursor": first_two}
    assert client.get(f"/api/runs/{run['id']}").json()["progress"]["epoch"] == 2

    csv = client.get(f"/api/runs/{run['id']}/metrics.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines() == [
        "key,x,value", "train_loss,1,0.9", "train_loss,2,", "val_accuracy,1,0.5",
        "val_accuracy,2,0.75"]
    with new_session() as session:
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == 4
    assert client.get("/api/runs/999999/metrics").status_code == 404


def test_metrics_csv_wide_one_row_per_epoch(client: TestClient) -> None:
    from backend.runs.lifecycle import claim_run, record_epoch

    run = client.post("/api/runs", json={"training": {"max_epochs": 2}}).json()
    with new_session() as session:
        claimed = claim_run(session=session, run_id=run["id"], worker="test")
        record_epoch(session=session, run_id=run["id"], token=claimed.token, epoch=1,
                     points=[("train_loss", 1, 0.9), ("step_loss", 10, 2.5),
                             ("val_accuracy", 1, 0.5)])
        # epoch 2 has no val_accuracy and a NaN loss: empty cells; a new key gets its column
        record_epoch(session=session, run_id=run["id"], token=claimed.token, epoch=2,
                     points=[("train_loss", 2, float("nan")), ("step_loss", 20, 1.5),
                             ("lr", 2, 0.05)])
    wide = client.get(f"/api/runs/{run['id']}/metrics.csv", params={"format": "wide"})
    assert wide.status_code == 200 and wide.headers["content-type"].startswith("text/csv")
    # step_loss (x = step, not epoch) is left out of the epoch table
    assert wide.text.splitlines() == ["epoch,train_loss,val_accuracy,lr", "1,0.9,0.5,",
                                      "2,,,0.05"]
    some = client.get(f"/api/runs/{run['id']}/metrics.csv",
                      params={"format": "wide", "keys": "lr"})
    assert some.text.splitlines() == ["epoch,lr", "2,0.05"]
    long = client.get(f"/api/runs/{run['id']}/metrics.csv", params={"format": "long"})
    assert long.text.splitlines()[0] == "key,x,value" and "step_loss,10,2.5" in long.text
    bad = client.get(f"/api/runs/{run['id']}/metrics.csv", params={"format": "tall"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "format"
    assert client.get("/api/runs/999999/metrics.csv", params={"format": "wide"}).status_code == 404


def test_health_and_schema(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health["database"] == "ok" and health["broker"] == "ok"
    assert health["workers"] == []
    schema = client.get("/api/spec/schema").json()
    assert set(schema["properties"]) >= {"seed", "data", "model", "optim", "training"}
    assert all("description" in prop for prop in schema["properties"].values())
    # Every field shows its default, also those built by a factory (lists, nested groups).
    assert schema["$defs"]["ModelSpec"]["properties"]["hidden"]["default"] == [128, 128]
    assert schema["properties"]["augment"]["default"] == []
    assert schema["properties"]["optim"]["default"]["lr"] == 0.1


def test_health_lists_a_worker_until_it_misses_three_heartbeats(client: TestClient) -> None:
    from datetime import timedelta

    from backend.config import get_settings
    from backend.db import utcnow
    from backend.workers.models import Worker
    from backend.workers.service import register_worker

    beat = get_settings().heartbeat_seconds
    with new_session() as session:
        register_worker(session=session, name="w-late", device="cpu", threads=1, queues="cpu")
        register_worker(session=session, name="w-dead", device="cpu", threads=1, queues="cpu")
        session.get(Worker, "w-late").heartbeat_at = utcnow() - timedelta(seconds=2 * beat)
        session.get(Worker, "w-dead").heartbeat_at = utcnow() - timedelta(seconds=3.5 * beat)
        session.commit()
    names = [w["name"] for w in client.get("/api/health").json()["workers"]]
    assert names == ["w-late"]
