"""Distributed mode for real: PostgreSQL, Redis, an API process and several worker processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import connect

from backend.app import create_app
from tests.conftest import ROOT, free_port, wait_for

pytestmark = pytest.mark.redis


@pytest.fixture
def distributed(configure, pg_url, redis_url) -> dict[str, str]:
    return configure(database_url=pg_url, broker_url=redis_url)


def test_two_workers_run_a_study_each_run_exactly_once(distributed, start_worker, hold) -> None:
    workers = [start_worker(distributed), start_worker(distributed)]
    with TestClient(create_app()) as client:
        wait_for(lambda: len(client.get("/api/health").json()["workers"]) == 2, 60, "two workers")
        hold.every_run_at(1)  # each worker takes one run and waits in it (worker/testhold.py)
        study = client.post("/api/studies", json={
            "name": "six", "base": {"model": {"hidden": [64]}, "training": {"max_epochs": 6}},
            "grid": {"optim.batch_size": [16, 32, 64], "optim.momentum": [0.0, 0.9]}}).json()
        # One run at a time per worker (solo pool, prefetch 1): two runs held, on two workers.
        wait_for(lambda: len(hold.held_runs()) == 2, 120, "both workers to hold a run")
        held = [client.get(f"/api/runs/{run_id}").json()["worker"] for run_id in hold.held_runs()]
        assert len(set(held)) == 2, held
        hold.release_all()
        done = wait_for(lambda: (s := client.get(f"/api/studies/{study['id']}").json())["status"]
                        == "finished" and s, 180, "the study")
    assert [r["status"] for r in done["runs"]] == ["succeeded"] * 6
    assert all(r["attempt"] == 1 for r in done["runs"])  # claimed once, never re-run
    used = Counter(r["worker"].rsplit(":", 1)[1] for r in done["runs"])
    assert set(used) <= {str(w.pid) for w in workers}
    assert len(used) == 2, f"the work was not spread: {used}"
    assert all(row["test_accuracy"] is not None and row["seconds"] > 0 for row in done["summary"])



def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--no-worker", "--port", str(port)],
        cwd=ROOT, env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    wait_for(lambda: _health(port), 60, "the API")
    return proc


def _health(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _stream(port: int, run_id: int, cursor: int, points: list[tuple[str, int]],
            enough: int | None = None, timeout: float = 120) -> tuple[int, dict | None]:
    """Read run ``run_id``'s stream after ``cursor`` into ``points`` until it holds ``enough``
    points or the run ends; returns the last cursor and the ended run (None if not ended)."""
    deadline = time.monotonic() + timeout
    with connect(f"ws://127.0.0.1:{port}/api/runs/{run_id}/stream?after={cursor}",
                 open_timeout=5) as ws:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out after {timeout:.0f} s reading the stream"
            message = json.loads(ws.recv(timeout=left))
            cursor = message["cursor"]
            if message["type"] == "points":
                points += [(k, x) for k, s in message["series"].items() for x, _ in s]
            if message["type"] == "end":
                return cursor, message["run"]
            if enough is not None and len(points) >= enough:
                return cursor, None


def test_api_restart_mid_run_stream_catches_up_exactly(distributed, start_worker, tmp_path,
                                                       hold) -> None:
    start_worker(distributed)
    port = free_port()
    api = _serve(distributed, port, tmp_path / "api.log")
    base = f"http://127.0.0.1:{port}"
    spec = {"model": {"hidden": [64]}, "optim": {"batch_size": 16},
            "training": {"max_epochs": 12}}
    hold.every_run_at(3)  # worker/testhold.py: the run waits at epoch ends the test chooses
    run = httpx.post(f"{base}/api/runs", json=spec).json()
    hold.held_at(run["id"], 3)
    so_far = httpx.get(f"{base}/api/runs/{run['id']}/metrics").json()["series"]
    points: list[tuple[str, int]] = []
    try:
        cursor, ended = _stream(port, run["id"], 0, points, enough=sum(map(len, so_far.values())))
        assert ended is None
        # The API dies mid-run; the worker goes on writing epochs 4-6 to the database.
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=30)
        hold.run_until(run["id"], 6)
        hold.held_at(run["id"], 6)
        api = _serve(distributed, port, tmp_path / "api.log")  # a client reconnecting later
        hold.release(run["id"])
        _, ended = _stream(port, run["id"], cursor, points)
    finally:
        api.terminate()
        api.wait(timeout=30)
    assert ended is not None and ended["status"] == "succeeded", ended
    counts = Counter(points)
    assert set(counts.values()) == {1}, "a point arrived twice"
    with TestClient(create_app()) as client:
        stored = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
    assert sorted(counts) == sorted((k, x) for k, s in stored.items() for x, _ in s)
