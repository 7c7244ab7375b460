"""Access: with a token, every write and the stream need it; beyond loopback needs a token."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from backend.app import create_app
from tests.conftest import ROOT

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def app(configure, monkeypatch):
    monkeypatch.setenv("EPOQUE_API_TOKEN", TOKEN)
    configure()
    return create_app()


def _writes(app) -> list[tuple[str, str]]:
    """Every write route the app publishes (from its own OpenAPI, so new ones are included)."""
    return [(method.upper(), path.replace("{run_id}", "1").replace("{study_id}", "1")
             .replace("{dataset_id}", "x").replace("{preset_id}", "ensemble"))
            for path, item in app.openapi()["paths"].items()
            for method in item if method.upper() in {"POST", "PUT", "PATCH", "DELETE"}]


def test_every_write_needs_the_token(app) -> None:
    writes = _writes(app)
    assert len(writes) >= 10  # runs, cancel, lr, predict, studies, datasets, presets, previews…
    with TestClient(app) as client:
        for method, path in writes:
            response = client.request(method, path, json={})
            assert response.status_code == 401, (method, path)
            assert TOKEN not in response.text
            wrong = client.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401, (method, path)
        assert client.get("/api/runs").status_code == 200  # reads stay open
        assert client.get("/api/health").status_code == 200


def test_with_the_token_writes_and_stream_work(app) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        run = client.post("/api/runs", json={"training": {"max_epochs": 1}}, headers=auth)
        assert run.status_code == 201
        run_id = run.json()["id"]
        with pytest.raises(WebSocketDisconnect) as closed, \
                client.websocket_connect(f"/api/runs/{run_id}/stream") as ws:
            ws.receive_json()
        assert closed.value.code == 4401
        with client.websocket_connect(f"/api/runs/{run_id}/stream?token={TOKEN}") as ws:
            assert ws.receive_json()["type"] == "run"
        assert client.delete(f"/api/runs/{run_id}", headers=auth).status_code == 204
        assert TOKEN not in client.get("/api/health").text


def test_serving_beyond_loopback_without_a_token_refuses_to_start(tmp_path) -> None:
    env = {"EPOQUE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "backend.cli", "serve", "--host", "0.0.0.0",
                           "--no-worker"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert "EPOQUE_API_TOKEN" in done.stderr and "--generate-token" in done.stderr


def test_an_empty_token_is_no_token(tmp_path) -> None:
    env = {"EPOQUE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "EPOQUE_API_TOKEN": "  "}
    done = subprocess.run([sys.executable, "-m", "backend.cli", "serve", "--host", "0.0.0.0",
                           "--no-worker"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and "EPOQUE_API_TOKEN" in done.stderr
