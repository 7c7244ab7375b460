"""GET /api/runs/{id}/same-start?other=: two runs share z0 and the minibatch order exactly when
their specs differ only in optimisation knobs (no worker: runs stay queued)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from worker.engine.forkspec import merged

BASE = {"seed": 4, "model": {"hidden": [8]}, "training": {"max_epochs": 3}}


@pytest.fixture
def client(configure) -> TestClient:
    configure()
    with TestClient(create_app()) as client:
        yield client


def _run(client: TestClient, change: dict) -> int:
    answer = client.post("/api/runs", json=merged(BASE, change))
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def test_knobs_keep_the_start_and_order_anything_else_does_not(client: TestClient) -> None:
    a = _run(client, {"name": "A"})
    knobs = _run(client, {"name": "B", "optim": {"lr": 0.02, "momentum": 0.5,
                                                 "schedule": {"kind": "cosine"}},
                          "training": {"early_stopping": {"patience": 3}}})
    got = client.get(f"/api/runs/{a}/same-start", params={"other": knobs}).json()
    assert got["same_start_and_order"] is True and got["not_knobs"] == []
    assert got["differences"] == ["optim.lr", "optim.momentum", "optim.schedule.kind",
                                  "training.early_stopping.patience"]
    for change, moved in [({"seed": 5}, ["seed"]),
                          ({"optim": {"batch_size": 16, "lr": 0.2}}, ["optim.batch_size"]),
                          ({"model": {"init": {"scheme": "xavier_normal"}}}, ["model.init.scheme"]),
                          ({"data": {"dataset": "mnist1d"}}, ["data.dataset"])]:
        b = _run(client, change)
        got = client.get(f"/api/runs/{a}/same-start", params={"other": b}).json()
        assert got["same_start_and_order"] is False and got["not_knobs"] == moved, change
    scale = _run(client, {"model": {"dropout": {"p_inc_hidden": 0.5}}})
    mc = _run(client, {"model": {"dropout": {"p_inc_hidden": 0.5, "inference": "mc"}}})
    got = client.get(f"/api/runs/{scale}/same-start", params={"other": mc}).json()
    assert got["same_start_and_order"] is True
    assert got["differences"] == ["model.dropout.inference"]
    same = client.get(f"/api/runs/{a}/same-start", params={"other": a}).json()
    assert same["same_start_and_order"] is True and same["differences"] == []


def test_bad_requests(client: TestClient) -> None:
    a = _run(client, {})
    assert client.get(f"/api/runs/{a}/same-start", params={"other": 999999}).status_code == 404
    assert client.get("/api/runs/999999/same-start", params={"other": a}).status_code == 404
    for params in ({}, {"other": "x"}, {"other": 0}):
        answer = client.get(f"/api/runs/{a}/same-start", params=params)
        assert answer.status_code == 422 and answer.json()["detail"][0]["field"] == "other"


def test_a_fork_of_a_run_that_has_not_reached_the_epoch_is_409(client: TestClient) -> None:
    """The runs stay queued here (no worker): no epoch to fork from yet."""
    queued = _run(client, {})
    answer = client.post(f"/api/runs/{queued}/fork", json={"epoch": 1, "spec": {}})
    assert answer.status_code == 409 and "no finite epoch 1" in answer.json()["detail"]
    assert client.get(f"/api/runs/{queued}").json()["forked_from"] is None
    # checked before the epoch: a change that is not a knob names the field
    answer = client.post(f"/api/runs/{queued}/fork", json={"epoch": 1, "spec": {"seed": 9}})
    assert answer.status_code == 409 and "seed would change z0" in answer.json()["detail"]
    assert len(client.get("/api/runs").json()) == 1  # nothing was created
