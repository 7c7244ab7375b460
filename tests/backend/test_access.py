"""Access: with a token, every write and the stream need it; beyond loopback needs a token."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from backend.app import create_app
from backend.auth import OPEN_WRITES
from tests.conftest import ROOT

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def app(configure, monkeypatch):
    monkeypatch.setenv("EPOQUE_API_TOKEN", TOKEN)
    configure()
    return create_app()


def _writes(app) -> list[tuple[str, str]]:
    """Every write route the app publishes (from its own OpenAPI, so new ones are included),
    but joining a class: a student has only its join code (tests/backend/test_classes.py)."""
    return [(method.upper(), path.replace("{run_id}", "1").replace("{study_id}", "1")
             .replace("{dataset_id}", "x").replace("{preset_id}", "ensemble")
             .replace("{class_id}", "1"))
            for path, item in app.openapi()["paths"].items()
            for method in item if method.upper() in {"POST", "PUT", "PATCH", "DELETE"}
            and (method.upper(), path) not in OPEN_WRITES]


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


EVIL = "http://evil.example"


@pytest.fixture(params=["no token", "token"])
def lab(request, configure, monkeypatch):
    """The lab without a token (the default) and with one: browsers' checks hold in both."""
    if request.param == "token":
        monkeypatch.setenv("EPOQUE_API_TOKEN", TOKEN)
    else:
        monkeypatch.delenv("EPOQUE_API_TOKEN", raising=False)
    configure()
    return create_app(), ({"Authorization": f"Bearer {TOKEN}"} if request.param == "token" else {})


def test_cross_site_browser_writes_are_refused_token_or_not(lab) -> None:
    """A form or fetch on another site (its Origin, or only a Referer) gets 403 on every write
    route, even with the right token; the lab's own pages and scripts (no such header) work."""
    app, auth = lab
    with TestClient(app) as client:
        for method, path in _writes(app):
            for header in ({"Origin": EVIL}, {"Referer": f"{EVIL}/page.html"}, {"Origin": "null"},
                           {"Origin": "http://testserver:8001"}, {"Origin": "https://testserver"}):
                response = client.request(method, path, json={}, headers={**auth, **header})
                assert response.status_code == 403, (method, path, header)
        # A plain HTML form posted from another site: refused, nothing created.
        form = client.post("/api/presets/ensemble/launch", data={"x": "1"},
                           headers={**auth, "Origin": EVIL})
        assert form.status_code == 403 and "cross-site" in form.json()["detail"]
        assert client.get("/api/runs").json() == [] and client.get("/api/studies").json() == []
        # The lab's own origin, and requests with neither header (scripts, curl): as before.
        own = client.post("/api/runs", json={}, headers={**auth, "Origin": "http://testserver"})
        assert own.status_code == 201
        referred = client.post(f"/api/runs/{own.json()['id']}/cancel",
                               headers={**auth, "Referer": "http://testserver/#/runs/1"})
        assert referred.status_code == 200
        assert client.post("/api/runs", json={}, headers=auth).status_code == 201
        # Reads stay open to any page (no state changes).
        assert client.get("/api/runs", headers={"Origin": EVIL}).status_code == 200


def test_cross_site_websockets_are_refused(lab) -> None:
    app, auth = lab
    query = f"?token={TOKEN}" if auth else ""
    with TestClient(app) as client:
        run_id = client.post("/api/runs", json={}, headers=auth).json()["id"]
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(
                f"/api/runs/{run_id}/stream{query}", headers={"Origin": EVIL}) as ws:
            ws.receive_json()
        assert closed.value.code == 4403
        with client.websocket_connect(f"/api/runs/{run_id}/stream{query}",
                                      headers={"Origin": "http://testserver"}) as ws:
            assert ws.receive_json()["type"] == "run"


def test_a_host_that_is_not_the_labs_is_refused(lab) -> None:
    """DNS rebinding: a page on evil.example re-pointed at this machine sends Host: evil.example."""
    app, auth = lab
    with TestClient(app) as client:
        for path in ("/", "/api/health", "/api/runs"):
            refused = client.get(path, headers={"Host": "evil.example"})
            assert refused.status_code == 400 and "EPOQUE_ALLOWED_HOSTS" in refused.text
        assert client.post("/api/runs", json={}, headers={**auth, "Host": "evil.example:8000",
                                                          "Origin": "http://evil.example:8000"}
                           ).status_code == 400
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(
                "/api/runs/1/stream", headers={"Host": "evil.example"}) as ws:
            ws.receive_json()
        assert closed.value.code == 4400
        assert client.get("/api/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/api/health", headers={"Host": "[::1]:8000"}).status_code == 200


def test_allowed_hosts_default_to_loopback_and_the_configured_host(monkeypatch) -> None:
    from backend.config import Settings

    monkeypatch.delenv("EPOQUE_ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("EPOQUE_HOST", raising=False)
    assert Settings().allowed_host_names == {"127.0.0.1", "localhost", "::1"}
    monkeypatch.setenv("EPOQUE_HOST", "lab.example.org")
    assert "lab.example.org" in Settings().allowed_host_names
    monkeypatch.setenv("EPOQUE_ALLOWED_HOSTS", "lab.example.org, *.school.example")
    assert Settings().allowed_host_names == {"lab.example.org", "*.school.example"}


def test_the_token_guard_follows_routes_not_a_path_prefix(app) -> None:
    """A write route outside /api/ needs the token too (the guard used to look at the prefix)."""
    def _elsewhere() -> dict[str, bool]:
        return {"written": True}

    app.add_api_route("/elsewhere", _elsewhere, methods=["POST"])
    app.router.routes.insert(0, app.router.routes.pop())  # before the static lab's mount

    with TestClient(app) as client:
        assert client.post("/elsewhere").status_code == 401
        allowed = client.post("/elsewhere", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.json() == {"written": True}
        assert client.get("/").status_code == 200  # the lab's page: a read


def test_a_real_lab_refuses_a_rebound_host_and_a_cross_site_form(tmp_path) -> None:
    """``epoque serve`` with its default settings, over real HTTP."""
    import httpx

    from tests.e2e.conftest import serve

    with serve(tmp_path / "data", tmp_path / "serve.log", worker=False) as base:
        port = base.rsplit(":", 1)[1]
        rebound = httpx.get(f"{base}/api/runs", headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 400
        form = httpx.post(f"{base}/api/runs", content=b"a=1", headers={
            "Origin": EVIL, "Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 403
        own = httpx.post(f"{base}/api/runs", json={}, headers={"Origin": base})
        assert own.status_code == 201
        assert httpx.post(f"{base}/api/runs", json={}).status_code == 201  # curl, scripts
        assert httpx.get(f"http://localhost:{port}/api/health").status_code == 200
