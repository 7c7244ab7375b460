"""A worker SIGKILLed mid-run: the run is recovered through the database, never run twice."""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.app import create_app
from backend.db import new_session
from backend.runs.models import RunCheckpoint
from tests.conftest import Hold, wait_for

# The kill lands mid-run: the test holds the run at an epoch's end (worker/testhold.py).
SPEC = {"name": "crash", "training": {"max_epochs": 14},
        "model": {"hidden": [512, 512]}, "optim": {"batch_size": 8, "lr": 0.01}}
FAST_RECOVERY = {"EPOQUE_HEARTBEAT_SECONDS": "0.5", "EPOQUE_HEARTBEAT_TIMEOUT_SECONDS": "3",
                 "EPOQUE_CHECKPOINT_SECONDS": "0.3"}


def _checkpointed(run_ids: tuple[int, ...]) -> bool:
    with new_session() as session:
        stored = session.scalars(select(RunCheckpoint.run_id)
                                 .where(RunCheckpoint.run_id.in_(run_ids))).all()
    return set(stored) == set(run_ids)


def _kill_worker_of(client: TestClient, run_id: int, procs: dict[int, object], hold: Hold,
                    others: tuple[int, ...] = ()) -> int:
    """SIGKILL the worker of ``run_id`` while it waits at an epoch's end (the caller set
    ``hold.every_run_at(3)`` before creating the runs; worker/testhold.py), once it and
    ``others`` (the rest of its pack) have a checkpoint: killed before the first one, a run
    restarts from epoch 1 instead of resuming. Returns the last epoch the database shows."""
    epoch = 3
    hold.held_at(run_id, epoch)
    for other in others:  # a pack waits in its first member; the others go on with it
        hold.release(other)
    while not _checkpointed((run_id, *others)):
        epoch += 1
        hold.run_until(run_id, epoch)
        hold.held_at(run_id, epoch)
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "running", run["status"]
    pid = int(run["worker"].rsplit(":", 1)[1])
    assert pid in procs, f"run is on an unknown process {run['worker']}"
    os.kill(pid, signal.SIGKILL)
    for held in (run_id, *others):  # the next attempt runs free
        hold.release(held)
    return run["progress"]["epoch"]


def two_workers_recovering_fast(configure, start_worker, pg_url: str, redis_url: str,
                                monkeypatch) -> dict[int, object]:
    """Two workers on Redis and PostgreSQL, with the API and them both recovering in seconds."""
    for key, value in FAST_RECOVERY.items():
        monkeypatch.setenv(key, value)
    env = {**configure(database_url=pg_url, broker_url=redis_url), **FAST_RECOVERY}
    return {p.pid: p for p in (start_worker(env), start_worker(env))}


@pytest.mark.redis
def test_killed_worker_run_resumes_elsewhere_and_succeeds(
    configure, start_worker, pg_url, redis_url, monkeypatch, hold
) -> None:
    procs = two_workers_recovering_fast(configure, start_worker, pg_url, redis_url, monkeypatch)
    with TestClient(create_app()) as client:
        wait_for(lambda: len(client.get("/api/health").json()["workers"]) == 2, 60, "two workers")
        hold.every_run_at(3)
        run = client.post("/api/runs", json=SPEC).json()
        killed_at = _kill_worker_of(client, run["id"], procs, hold)
        final = wait_for(lambda: (r := client.get(f"/api/runs/{run['id']}").json())["status"]
                         in ("succeeded", "failed") and r, 180, "the recovered run")
        assert final["status"] == "succeeded", final["error"]
        assert final["attempt"] == 2 and killed_at < 14
        series = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
        # The second attempt went on from the last checkpoint, not from epoch 1.
        [[resumed_at, attempt]] = series["events/resume"]
        assert attempt == 2 and 1 < resumed_at <= killed_at + 1
        for key in ("train_loss", "val_accuracy", "lr"):
            counts = Counter(x for x, _ in series[key])
            assert sorted(counts) == list(range(1, 15)) and set(counts.values()) == {1}, key


def test_attempts_exhausted_ends_failed_with_reason(configure, start_worker, monkeypatch,
                                                    hold) -> None:
    recovery = {**FAST_RECOVERY, "EPOQUE_MAX_ATTEMPTS": "1"}
    for key, value in recovery.items():
        monkeypatch.setenv(key, value)
    env = {**configure(), **recovery}  # embedded broker: it forgets the killed worker's message
    procs = {p.pid: p for p in [start_worker(env)]}
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker")
        hold.every_run_at(3)
        run = client.post("/api/runs", json=SPEC).json()
        _kill_worker_of(client, run["id"], procs, hold)
        final = wait_for(lambda: (r := client.get(f"/api/runs/{run['id']}").json())["status"]
                         != "running" and r, 60, "the run to be given up")
        assert final["status"] == "failed"
        assert "stopped answering" in final["error"] and "1 attempts" in final["error"]
