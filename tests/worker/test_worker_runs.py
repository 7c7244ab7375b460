"""A real Celery worker process takes a run from a real broker to the end."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from tests.conftest import wait_for

EPOCH_KEYS = {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
              "epoch_seconds", "examples_per_second"}
SPEC = {"name": "worker test", "model": {"hidden": [32]}, "training": {"max_epochs": 4}}


def _run_to_completion(client: TestClient) -> None:
    run = client.post("/api/runs", json=SPEC).json()
    seen: list[str] = []

    def status() -> bool:
        current = client.get(f"/api/runs/{run['id']}").json()["status"]
        if not seen or seen[-1] != current:
            seen.append(current)
        return current not in ("queued", "running")

    wait_for(status, timeout=120, what="the run to finish", every=0.05)
    final = client.get(f"/api/runs/{run['id']}").json()
    assert final["status"] == "succeeded", final["error"]
    assert seen[0] in ("queued", "running") and "running" in seen  # it went through running
    assert final["progress"] == {"epoch": 4, "max_epochs": 4}
    assert final["result"]["epochs_run"] == 4 and 0 <= final["result"]["test_accuracy"] <= 1
    series = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
    assert EPOCH_KEYS <= set(series)
    for key in EPOCH_KEYS:
        assert [x for x, _ in series[key]] == [1, 2, 3, 4], key
    health = client.get("/api/health").json()
    assert len(health["workers"]) == 1 and health["workers"][0]["threads"] == 1


@pytest.mark.redis
def test_worker_on_redis_and_postgres(configure, start_worker, pg_url, redis_url) -> None:
    env = configure(database_url=pg_url, broker_url=redis_url)
    start_worker(env)
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        _run_to_completion(client)


def test_worker_on_embedded_sqlite_broker(configure, start_worker) -> None:
    env = configure()  # the defaults: SQLite database and broker in the data dir
    start_worker(env)
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        _run_to_completion(client)
