"""A real Celery worker process takes a run from a real broker to the end."""

from __future__ import annotations

from itertools import pairwise

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from tests.conftest import Hold, wait_for

EPOCH_KEYS = {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
              "epoch_seconds", "examples_per_second"}
SPEC = {"name": "worker test", "model": {"hidden": [32]}, "training": {"max_epochs": 4}}


def _run_to_completion(client: TestClient, hold: Hold) -> None:
    hold.every_run_at(1)
    run = client.post("/api/runs", json=SPEC).json()
    # Held at the end of epoch 1 (worker/testhold.py): running, with that epoch stored.
    hold.held_at(run["id"], 1)
    held = client.get(f"/api/runs/{run['id']}").json()
    assert held["status"] == "running" and held["progress"] == {"epoch": 1, "max_epochs": 4}
    assert held["worker"] is not None
    hold.release(run["id"])
    wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["status"]
             not in ("queued", "running"), timeout=120, what="the run to finish")
    final = client.get(f"/api/runs/{run['id']}").json()
    assert final["status"] == "succeeded", final["error"]
    assert final["progress"] == {"epoch": 4, "max_epochs": 4}
    assert final["result"]["epochs_run"] == 4 and 0 <= final["result"]["test_accuracy"] <= 1
    series = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
    assert EPOCH_KEYS <= set(series)
    for key in EPOCH_KEYS:
        assert [x for x, _ in series[key]] == [1, 2, 3, 4], key
    health = client.get("/api/health").json()
    assert len(health["workers"]) == 1 and health["workers"][0]["threads"] == 1


@pytest.mark.redis
def test_worker_on_redis_and_postgres(configure, start_worker, pg_url, redis_url, hold) -> None:
    env = configure(database_url=pg_url, broker_url=redis_url)
    start_worker(env)
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        _run_to_completion(client, hold)


def test_worker_on_embedded_sqlite_broker(configure, start_worker, hold) -> None:
    env = configure()  # the defaults: SQLite database and broker in the data dir
    start_worker(env)
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        _run_to_completion(client, hold)


# Its stream reads block until a message comes: this deadline ends them if none does.
@pytest.mark.timeout(300)
def test_two_d_run_stores_boundaries_and_step_losses(configure, start_worker) -> None:
    start_worker(configure())
    spec = {"data": {"dataset": "moons"}, "model": {"hidden": [16]},
            "training": {"max_epochs": 5, "log_every_steps": 10}}
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json=spec).json()
        boundary_notices = []
        with client.websocket_connect(f"/api/runs/{run['id']}/stream") as ws:
            while (message := ws.receive_json())["type"] != "end":
                if message["type"] == "boundary":
                    boundary_notices.append(message["epoch"])
        assert message["run"]["status"] == "succeeded", message["run"]["error"]
        boundary = client.get(f"/api/runs/{run['id']}/boundary").json()
        assert boundary["epoch"] == boundary["epochs"][-1] and boundary_notices[-1] == boundary["epoch"]
        size = len(boundary["x"])
        assert size > 4 and len(boundary["probs"]) == len(boundary["y"]) and len(boundary["probs"][0]) == size
        answer = client.get(f"/api/runs/{run['id']}/boundary",
                            params={"epoch": boundary["epochs"][0]})
        assert answer.status_code == 200
        first = answer.json()
        # The epoch asked for, on the same grid, with the probabilities of that earlier epoch.
        assert first["epoch"] == boundary["epochs"][0] < boundary["epoch"]
        assert first["epochs"] == boundary["epochs"]
        assert first["x"] == boundary["x"] and first["y"] == boundary["y"]
        assert len(first["probs"]) == len(first["y"])
        assert all(len(row) == size for row in first["probs"])
        assert first["probs"] != boundary["probs"]
        steps = client.get(f"/api/runs/{run['id']}/metrics", params={"keys": "step_loss"}).json()
        xs = [x for x, _ in steps["series"]["step_loss"]]
        assert xs[:3] == [10, 20, 30] and all(b - a == 10 for a, b in pairwise(xs))
        digits = client.post("/api/runs", json={"training": {"max_epochs": 1}}).json()
        assert client.get(f"/api/runs/{digits['id']}/boundary").status_code == 404
