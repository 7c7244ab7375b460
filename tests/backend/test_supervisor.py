"""The embedded worker is supervised: restarted with a back-off when it dies; health and the run
say when queued runs have no live worker for their queue (a cuda run on a CPU-only lab)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.db import new_session
from backend.supervisor import Supervisor
from backend.workers.service import register_worker
from tests.conftest import wait_for
from tests.e2e.conftest import serve


def test_restarts_back_off_while_the_child_dies_quickly_and_start_over_once_it_lived() -> None:
    """Real children (processes that exit at once); the clock is injected: each child is made
    to have lived the scripted seconds, and the back-off waits are recorded, not slept."""
    now = [0.0]
    lifetimes = iter([1, 1, 1, 1, 1, 100, 1])
    delays: list[float] = []

    def start() -> subprocess.Popen[bytes]:
        now[0] += next(lifetimes)  # read by the supervisor when the child has ended
        return subprocess.Popen([sys.executable, "-c", "pass"])

    def wait(seconds: float) -> bool:
        delays.append(seconds)
        return len(delays) == 7  # then stop

    supervisor = Supervisor(start, clock=lambda: now[0], first_delay=1, max_delay=8,
                            stable_seconds=60)
    supervisor.run(wait)
    assert delays == [1, 2, 4, 8, 8, 1, 1]  # doubling, capped; reset by the child that lived
    assert supervisor.restarts == 6


def test_a_stopped_supervisor_starts_nothing_more() -> None:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen([sys.executable, "-c", "pass"]))
        return started[-1]

    supervisor = Supervisor(start)
    assert supervisor.stop() is None
    supervisor.run(lambda seconds: False)
    assert started == []


def test_health_is_degraded_while_queued_runs_have_no_live_worker(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        assert client.get("/api/health").json()["status"] == "ok"  # nothing waits
        run = client.post("/api/runs", json={}).json()
        assert "worker serving the cpu queue" in run["waiting"]
        cuda = client.post("/api/runs", json={"device": "cuda"})
        assert cuda.status_code == 201, cuda.text
        assert "GPU worker" in cuda.json()["waiting"]
        health = client.get("/api/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert [(w["queue"], w["runs"]) for w in health.json()["waiting"]] == [("cpu", 1), ("gpu", 1)]
        assert "GPU worker" in health.json()["waiting"][1]["message"]

        with new_session() as session:  # a CPU worker comes: only the cuda run still waits
            register_worker(session=session, name="cpu-box:1", device="cpu", threads=1,
                            queues="cpu")
        assert client.get(f"/api/runs/{run['id']}").json()["waiting"] is None
        assert "GPU worker" in client.get(f"/api/runs/{cuda.json()['id']}").json()["waiting"]
        listed = {r["id"]: r["waiting"] for r in client.get("/api/runs").json()}
        assert listed[run["id"]] is None and "GPU worker" in listed[cuda.json()["id"]]
        health = client.get("/api/health").json()
        assert health["status"] == "degraded" and [w["queue"] for w in health["waiting"]] == ["gpu"]

        client.post(f"/api/runs/{cuda.json()['id']}/cancel")
        client.post(f"/api/runs/{run['id']}/cancel")
        assert client.get("/api/health").json()["status"] == "ok"


def test_a_sigkilled_embedded_worker_is_replaced_and_queued_runs_finish(tmp_path: Path) -> None:
    """The OOM killer's SIGKILL, on the embedded worker of a real ``epoque serve``: a new
    worker registers, the dead one is reaped (not left defunct), and a run queued after trains."""
    with serve(tmp_path / "data", tmp_path / "serve.log",
               env={"EPOQUE_HEARTBEAT_SECONDS": "0.5"}) as base:
        def workers() -> list[str]:
            return [w["name"] for w in httpx.get(f"{base}/api/health", timeout=5).json()["workers"]]

        [first] = wait_for(workers, 60, "the embedded worker")
        pid = int(first.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: workers() and first not in workers(), 120, "a new embedded worker")
        state = Path(f"/proc/{pid}/stat")
        assert not state.exists() or state.read_text().split(") ")[1][0] != "Z", "left defunct"

        run = httpx.post(f"{base}/api/runs", json={"training": {"max_epochs": 2}}, timeout=30)
        assert run.status_code == 201
        done = wait_for(lambda: (r := httpx.get(f"{base}/api/runs/{run.json()['id']}",
                                                timeout=5).json())["status"] != "queued"
                        and r["status"] != "running" and r, 180, "the run to finish")
        assert done["status"] == "succeeded", done["error"]
        assert httpx.get(f"{base}/api/health", timeout=5).json()["status"] == "ok"
