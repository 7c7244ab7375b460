"""Cancel and manual η through the database, on Redis and on the embedded broker; z* served."""

from __future__ import annotations

import io

import pytest
import torch
from fastapi.testclient import TestClient

from backend.app import create_app
from tests.conftest import Hold, wait_for
from worker.engine import load_dataset, parse_spec
from worker.engine.models import build_model

# Never reaches its last epoch: the test holds it at epoch ends (worker/testhold.py) and
# cancels it.
LONG = {"name": "long", "training": {"max_epochs": 400},
        "model": {"hidden": [64]}, "optim": {"batch_size": 4, "lr": 0.01}}


def _status(client: TestClient, run_id: int) -> dict:
    return client.get(f"/api/runs/{run_id}").json()


def _control_scenario(client: TestClient, hold: Hold) -> None:
    wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker")
    hold.every_run_at(3)
    run = client.post("/api/runs", json=LONG).json()
    hold.held_at(run["id"], 3)
    assert _status(client, run["id"])["status"] == "running"
    assert _status(client, run["id"])["progress"]["epoch"] == 3

    # η by hand, sent during epoch 3's end: applied from epoch 4, recorded as an event there.
    asked = client.post(f"/api/runs/{run['id']}/lr", json={"lr": 0.0123})
    assert asked.status_code == 200
    hold.run_until(run["id"], 4)
    hold.held_at(run["id"], 4)
    series = client.get(f"/api/runs/{run['id']}/metrics", params={"keys": "lr,events/lr"}).json()["series"]
    [[event_epoch, value]] = series["events/lr"]
    assert event_epoch == 4 and value == pytest.approx(0.0123)
    assert series["lr"] == [[1, pytest.approx(0.01)], [2, pytest.approx(0.01)],
                            [3, pytest.approx(0.01)], [4, pytest.approx(0.0123)]]

    # Cancel, sent during epoch 4's end: the run stops there, keeps z*, status cancelled.
    assert client.post(f"/api/runs/{run['id']}/cancel").status_code == 200
    hold.release(run["id"])
    final = wait_for(lambda: (s := _status(client, run["id"]))["status"] != "running" and s, 60,
                     "the cancel")
    assert final["status"] == "cancelled"
    assert final["result"]["stopped_epoch"] == 4
    assert final["result"]["test_accuracy"] > 0.5
    assert final["progress"]["epoch"] == 4
    assert client.get(f"/api/runs/{run['id']}/model").status_code == 200
    # An ended run takes no more control.
    assert client.post(f"/api/runs/{run['id']}/cancel").status_code == 409
    assert client.post(f"/api/runs/{run['id']}/lr", json={"lr": 0.1}).status_code == 409


@pytest.mark.redis
def test_cancel_and_lr_on_redis(configure, start_worker, pg_url, redis_url, hold) -> None:
    start_worker(configure(database_url=pg_url, broker_url=redis_url))
    with TestClient(create_app()) as client:
        _control_scenario(client, hold)


def test_cancel_and_lr_on_embedded_broker(configure, start_worker, hold) -> None:
    start_worker(configure())
    with TestClient(create_app()) as client:
        _control_scenario(client, hold)


def test_cancel_a_queued_run_ends_it_at_once(configure) -> None:
    configure()  # no worker: the run stays queued
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json={}).json()
        assert client.post(f"/api/runs/{run['id']}/cancel").json()["status"] == "cancelled"
        assert client.post(f"/api/runs/{run['id']}/lr", json={"lr": -1}).status_code == 422
        assert client.get(f"/api/runs/{run['id']}/model").status_code == 409


def test_downloaded_model_predicts_like_the_api_and_the_reported_accuracy(
    configure, start_worker
) -> None:
    start_worker(configure())
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json={"training": {"max_epochs": 5}, "seed": 3}).json()
        wait_for(lambda: _status(client, run["id"])["status"] == "succeeded", 120, "the run")
        result = _status(client, run["id"])["result"]
        blob = client.get(f"/api/runs/{run['id']}/model").content

    saved = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    spec = parse_spec(saved["spec"])
    model = build_model(spec, saved["input_shape"], len(saved["classes"]))
    model.load_state_dict(saved["state_dict"])
    model.eval()
    data = load_dataset(spec)
    with torch.no_grad():
        local = torch.softmax(model(data.X_test), dim=1)
    accuracy = (local.argmax(1) == data.y_test).float().mean().item()
    assert accuracy == pytest.approx(result["test_accuracy"], abs=1e-6)

    with TestClient(create_app()) as client:
        answer = client.post(f"/api/runs/{run['id']}/predict",
                             json={"inputs": data.X_test[:16].tolist()})
        assert answer.status_code == 200
        assert answer.json()["classes"] == saved["classes"]
        assert torch.allclose(torch.tensor(answer.json()["probabilities"]), local[:16], atol=1e-5)
        bad = client.post(f"/api/runs/{run['id']}/predict", json={"inputs": [[1, 2, 3]]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "inputs"
