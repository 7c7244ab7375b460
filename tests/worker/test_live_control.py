"""Cancel and manual η through the database, on Redis and on the embedded broker; z* served."""

from __future__ import annotations

import io

import pytest
import torch
from fastapi.testclient import TestClient

from backend.app import create_app
from tests.conftest import wait_for
from worker.engine import load_dataset, parse_spec
from worker.engine.models import build_model

# Epochs longer than the worker's flush interval, so the progress the API shows is current and
# "within one epoch" can be checked against it.
LONG = {"name": "long", "training": {"max_epochs": 400},
        "model": {"hidden": [1024, 1024]}, "optim": {"batch_size": 4, "lr": 0.01}}


def _status(client: TestClient, run_id: int) -> dict:
    return client.get(f"/api/runs/{run_id}").json()


def _epochs(client: TestClient, run_id: int) -> int:
    return _status(client, run_id)["progress"]["epoch"]


def _control_scenario(client: TestClient) -> None:
    wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker")
    run = client.post("/api/runs", json=LONG).json()
    wait_for(lambda: _epochs(client, run["id"]) >= 3, 60, "a few epochs")

    # η by hand: applied from the next epoch, recorded as an event at that epoch.
    asked = client.post(f"/api/runs/{run['id']}/lr", json={"lr": 0.0123})
    assert asked.status_code == 200
    asked_at = _epochs(client, run["id"])
    wait_for(lambda: client.get(f"/api/runs/{run['id']}/metrics",
                                params={"keys": "events/lr"}).json()["series"], 30, "the lr event")
    series = client.get(f"/api/runs/{run['id']}/metrics", params={"keys": "lr,events/lr"}).json()["series"]
    [[event_epoch, value]] = series["events/lr"]
    assert value == pytest.approx(0.0123)
    # It takes effect within one epoch of what the API had seen, and from then on η is the new one.
    assert asked_at < event_epoch <= asked_at + 2
    lrs = dict(series["lr"])
    assert lrs[event_epoch - 1] == pytest.approx(0.01) and lrs[event_epoch] == pytest.approx(0.0123)

    # Cancel: stops within an epoch, keeps the best model, status cancelled.
    assert client.post(f"/api/runs/{run['id']}/cancel").status_code == 200
    cancelled_at = _epochs(client, run["id"])
    final = wait_for(lambda: (s := _status(client, run["id"]))["status"] != "running" and s, 30,
                     "the cancel")
    assert final["status"] == "cancelled"
    assert final["result"]["stopped_epoch"] <= cancelled_at + 2 < 400
    assert final["result"]["test_accuracy"] > 0.5
    assert final["progress"]["epoch"] == final["result"]["stopped_epoch"]
    assert client.get(f"/api/runs/{run['id']}/model").status_code == 200
    # An ended run takes no more control.
    assert client.post(f"/api/runs/{run['id']}/cancel").status_code == 409
    assert client.post(f"/api/runs/{run['id']}/lr", json={"lr": 0.1}).status_code == 409


@pytest.mark.redis
def test_cancel_and_lr_on_redis(configure, start_worker, pg_url, redis_url) -> None:
    start_worker(configure(database_url=pg_url, broker_url=redis_url))
    with TestClient(create_app()) as client:
        _control_scenario(client)


def test_cancel_and_lr_on_embedded_broker(configure, start_worker) -> None:
    start_worker(configure())
    with TestClient(create_app()) as client:
        _control_scenario(client)


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
