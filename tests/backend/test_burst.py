"""A burst of 500 concurrent run creations: accepted or refused cleanly, each run exactly once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import free_port
from tests.own_loop import on_own_loop
from tests.worker.test_distributed import _serve


async def _burst(base: str, n: int) -> list[httpx.Response]:
    # Fresh connections: a kept-alive one the server closes as a request leaves is a client race.
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        return await asyncio.gather(*(client.post("/api/runs", json={"name": f"burst {i}"})
                                      for i in range(n)))


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_500_concurrent_creations(database, configure, tmp_path, request) -> None:
    db_url = None if database == "sqlite" else request.getfixturevalue("pg_url")
    env = {**configure(database_url=db_url), "EPOQUE_MAX_QUEUED_RUNS": "450"}
    port = free_port()
    api = _serve(env, port, tmp_path / "api.log")
    try:
        responses = on_own_loop(asyncio.run, _burst(f"http://127.0.0.1:{port}", 500))
        runs = httpx.get(f"http://127.0.0.1:{port}/api/runs", params={"limit": 1000}).json()
        health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=10)
    finally:
        api.terminate()
        api.wait(timeout=30)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 429}, sorted(set(statuses))
    accepted = [r.json()["id"] for r in responses if r.status_code == 201]
    assert len(accepted) == len(set(accepted)) == statuses.count(201)
    assert len(accepted) == 450 and statuses.count(429) == 50  # the limit holds exactly
    assert sorted(r["id"] for r in runs) == sorted(accepted)  # each stored exactly once
    assert health.status_code == 200
    log = (tmp_path / "api.log").read_text()
    assert "database is locked" not in log and "Traceback" not in log
