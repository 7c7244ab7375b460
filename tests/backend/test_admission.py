"""Admission control: a spec whose estimated memory is over the lab's limit is refused at
creation (runs and every study point) with the estimate and the limit; batch sizes are capped."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.runs.admission import estimate_bytes
from worker.engine.spec import parse_spec

EVERY_MAXIMUM = {"model": {"hidden": [4096] * 32}, "ensemble": {"members": 64},
                 "data": {"dataset": "moons", "n_samples": 200_000}}


def test_a_spec_at_every_maximum_is_422_naming_estimate_and_limit(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        refused = client.post("/api/runs", json=EVERY_MAXIMUM)
        assert refused.status_code == 422
        detail = refused.json()["detail"][0]
        assert detail["field"] == "model.hidden"
        assert "max_run_memory_mb" in detail["msg"] and "would need about" in detail["msg"]
        assert client.get("/api/runs").json() == []
        assert client.post("/api/runs", json={}).status_code == 201


def test_memory_limit_is_a_setting_and_applies_to_every_study_point(configure, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_MAX_RUN_MEMORY_MB", "50")
    configure()
    small, wide = {"hidden": [32]}, {"hidden": [2048, 2048, 2048]}
    assert estimate_bytes(parse_spec({"model": wide})).total > 50 * 2**20
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json={"model": wide})
        assert run.status_code == 422 and "50 MB" in run.json()["detail"][0]["msg"]
        study = client.post("/api/studies", json={"grid": {"model": [small, wide]}})
        assert study.status_code == 422
        assert study.json()["detail"][0]["field"] == "grid.model"
        assert client.get("/api/runs").json() == [] and client.get("/api/studies").json() == []
        assert client.post("/api/runs", json={"model": small}).status_code == 201


def test_huge_batch_size_in_a_study_is_422_not_a_worker_crash(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        refused = client.post("/api/studies", json={"grid": {"optim.batch_size": [10**15]},
                                                    "seeds": 2})
        assert refused.status_code == 422
        detail = refused.json()["detail"][0]
        assert detail["field"] == "grid.optim.batch_size" and "max_batch_size" in detail["msg"]
        run = client.post("/api/runs", json={"optim": {"batch_size": 65_537}})
        assert run.status_code == 422 and run.json()["detail"][0]["field"] == "optim.batch_size"
        assert client.get("/api/runs").json() == []


def test_full_batch_and_big_batches_are_estimated_on_the_training_set_size() -> None:
    # A batch larger than the training set trains as the whole set: both estimate the same.
    full = estimate_bytes(parse_spec({"optim": {"batch_size": "full"}}))
    huge = estimate_bytes(parse_spec({"optim": {"batch_size": 60_000}}))
    assert full == huge
    members = estimate_bytes(parse_spec({"ensemble": {"members": 4}}))
    assert members.weights == 4 * full.weights and members.dataset == full.dataset
