"""Limits answer with their name and value, and write nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.app import create_app


def test_oversized_body_is_413_naming_the_limit(configure, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_MAX_BODY_BYTES", "4096")
    configure()
    with TestClient(create_app()) as client:
        big = {"name": "x" * 5000}
        response = client.post("/api/runs", json=big)
        assert response.status_code == 413
        assert "max_body_bytes" in response.json()["detail"] and "4096" in response.json()["detail"]
        assert client.get("/api/runs").json() == []
        assert client.post("/api/runs", json={"name": "small"}).status_code == 201


def test_full_queue_is_429_with_retry_after_and_creates_nothing(configure, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_MAX_QUEUED_RUNS", "3")
    configure()  # no worker: runs stay queued
    with TestClient(create_app()) as client:
        for _ in range(3):
            assert client.post("/api/runs", json={}).status_code == 201
        refused = client.post("/api/runs", json={})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert "max_queued_runs" in refused.json()["detail"]
        study = client.post("/api/studies", json={"seeds": 2})
        assert study.status_code == 429
        assert len(client.get("/api/runs").json()) == 3 and client.get("/api/studies").json() == []


def test_spec_limits_are_settings_and_name_field_limit_and_value(configure, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_MAX_EPOCHS", "100")
    monkeypatch.setenv("EPOQUE_MAX_WIDTH", "256")
    monkeypatch.setenv("EPOQUE_MAX_GRID_POINTS", "3")
    configure()
    with TestClient(create_app()) as client:
        too_long = client.post("/api/runs", json={"training": {"max_epochs": 101}})
        assert too_long.status_code == 422
        detail = too_long.json()["detail"][0]
        assert detail["field"] == "training.max_epochs" and "max_epochs = 100" in detail["msg"]
        too_wide = client.post("/api/runs", json={"model": {"hidden": [64, 512]}})
        assert too_wide.json()["detail"][0]["field"] == "model.hidden"
        assert "max_width = 256" in too_wide.json()["detail"][0]["msg"]
        grid = client.post("/api/studies", json={"grid": {"model.hidden": [[32], [1024]]}})
        assert grid.status_code == 422 and grid.json()["detail"][0]["field"] == "grid.model.hidden"
        base = client.post("/api/studies", json={"base": {"training": {"max_epochs": 500}},
                                                 "seeds": 2})
        assert base.json()["detail"][0]["field"] == "base.training.max_epochs"
        many = client.post("/api/studies", json={"seeds": 4})
        assert many.status_code == 422 and "3" in many.json()["detail"][0]["msg"]
        assert client.get("/api/runs").json() == [] and client.get("/api/studies").json() == []
        assert client.post("/api/runs", json={"training": {"max_epochs": 100}}).status_code == 201
