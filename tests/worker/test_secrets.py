"""No secret is ever returned by the API or written to a log.

A real `epoque serve` and `epoque worker` run with an API token, a PostgreSQL URL with a
password (this machine's PostgreSQL trusts local connections, so any password is accepted) and
a Redis of their own that requires a password. The test drives every kind of traffic that could
echo a secret: writes with and without the token, the stream with ``?token=`` (browsers cannot
send headers on a WebSocket), bad specs, unknown paths, a run to its end. Then the secrets must
appear in no response body and in no line either process logged.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import ROOT, free_port, wait_for

TOKEN = "api-token-5ecret-Q7"
PG_PASSWORD = "pg-pa55word-Z3"
REDIS_PASSWORD = "redis-pa55word-K9"
SECRETS = (TOKEN, PG_PASSWORD, REDIS_PASSWORD)



@pytest.fixture
def guarded_redis(tmp_path: Path):
    """A Redis server of this test's own that refuses clients without the password."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass",
         REDIS_PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 20, "redis-server")
        yield f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _stream(base: str, run_id: int) -> list[str]:
    # The synchronous client: the browser tests leave an event loop running in this thread.
    url = base.replace("http", "ws") + f"/api/runs/{run_id}/stream?token={TOKEN}"
    with connect(url) as ws:
        return [ws.recv(timeout=30)]


def test_no_secret_in_responses_or_logs(pg_url: str, guarded_redis: str, tmp_path: Path) -> None:
    database_url = pg_url.replace("postgres@", f"postgres:{PG_PASSWORD}@")
    env = {**os.environ, "EPOQUE_DATA_DIR": str(tmp_path / "data"), "EPOQUE_API_TOKEN": TOKEN,
           "EPOQUE_DATABASE_URL": database_url, "EPOQUE_BROKER_URL": guarded_redis}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = {"serve": tmp_path / "serve.log", "worker": tmp_path / "worker.log"}
    procs = []
    bodies: list[str] = []
    try:
        with logs["serve"].open("wb") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "serve", "--no-worker", "--port", str(port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        with logs["worker"].open("wb") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "backend.cli", "worker", "--loglevel", "DEBUG"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))

        def workers() -> list:
            try:
                return httpx.get(f"{base}/api/health", timeout=2).json().get("workers") or []
            except (httpx.HTTPError, ValueError):
                return []

        wait_for(workers, 90, "the API and a worker")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        spec = {"name": "secrets", "training": {"max_epochs": 3}}
        with httpx.Client(base_url=base, timeout=30) as client:
            answers = [
                client.post("/api/runs", json=spec),  # 401: no token
                client.post("/api/runs", json=spec, headers={"Authorization": "Bearer wrong"}),
                client.post("/api/runs", json={"optim": {"lr": -1}}, headers=auth),  # 422
                client.get(f"/api/nowhere?token={TOKEN}"),  # 404, with the token in the URL
            ]
            created = client.post("/api/runs", json=spec, headers=auth)
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]
            wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["status"] == "succeeded",
                     120, "the run to succeed")
            bodies += _stream(base, run_id)
            for path in ("/api/health", "/openapi.json", "/api/runs", f"/api/runs/{run_id}",
                         f"/api/runs/{run_id}/metrics", "/api/spec/schema", "/api/presets",
                         "/api/studies", "/api/datasets", "/"):
                answers.append(client.get(path))
            assert [a.status_code for a in answers[:4]] == [401, 401, 422, 404]
            assert all(a.status_code == 200 for a in answers[4:]), \
                [(str(a.url), a.status_code) for a in answers[4:]]
            bodies += [a.text for a in answers] + [str(dict(a.headers)) for a in answers]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    logged = {name: path.read_text(errors="replace") for name, path in logs.items()}
    # The logs did record the traffic (so the absence below means something)…
    assert "/api/nowhere?token=***" in logged["serve"], logged["serve"][-3000:]
    assert f"/api/runs/{run_id}/stream?token=***" in logged["serve"]
    assert "epoque.run_training" in logged["worker"]
    # …and no secret, in any response or any log line.
    for secret in SECRETS:
        for name, text in logged.items():
            assert secret not in text, f"{name} log shows a secret: {secret}"
        assert not [b for b in bodies if secret in b], f"a response shows a secret: {secret}"
