"""The live stream under 50 clients: from a point's commit to its arrival at a WebSocket
client (p95), on Redis mode and on the embedded default; and the replay of 10,000 missed
points. The writer stands in for a worker: the same lifecycle calls, one commit per flush."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import websockets

from bench.common import Row

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _configure(env: dict[str, str]) -> None:
    from backend.broker import celery_client
    from backend.config import get_settings
    from backend.notify import _sync_client

    for key in ("EPOQUE_DATABASE_URL", "EPOQUE_BROKER_URL"):
        os.environ.pop(key, None)
    os.environ.update(env)
    get_settings.cache_clear()
    celery_client.cache_clear()
    _sync_client.cache_clear()


async def _client(url: str, latencies: list[float], done: asyncio.Event) -> None:
    async with websockets.connect(url, max_size=None) as ws:
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            if message["type"] == "points":
                latencies.extend(now - v for _, series in message["series"].items()
                                 for _, v in series if v is not None)
            if message["type"] == "end":
                break
    done.set()


def _writer(run_id: int, flushes: int, per_flush: int) -> None:
    from backend.db import new_session
    from backend.notify import publish
    from backend.runs.lifecycle import claim_run, finish_run, record_epoch

    with new_session() as session:
        token = claim_run(session=session, run_id=run_id, worker="bench").token
    for epoch in range(1, flushes + 1):
        with new_session() as session:
            # The value is the commit time (just before it), so a client can tell the latency.
            points = [(f"k{j}", epoch, time.time()) for j in range(per_flush)]
            record_epoch(session=session, run_id=run_id, token=token, epoch=epoch, points=points)
        publish(run_id)
        time.sleep(0.02)
    with new_session() as session:
        finish_run(session=session, run_id=run_id, token=token, status="succeeded", result={})
    publish(run_id)


async def _measure(base: str, clients: int, flushes: int, per_flush: int) -> tuple[float, float]:
    # The clients stand in for browsers: this process's own full garbage collections (it holds
    # torch) would otherwise be timed as the server's.
    gc.freeze()
    run = (await asyncio.to_thread(
        httpx.post, f"{base}/api/runs", json={"training": {"max_epochs": flushes}})).json()
    ws_url = base.replace("http", "ws") + f"/api/runs/{run['id']}/stream"
    latencies: list[float] = []
    events = [asyncio.Event() for _ in range(clients)]
    tasks = [asyncio.create_task(_client(ws_url, latencies, e)) for e in events]
    await asyncio.sleep(1.0)  # everyone connected and caught up
    await asyncio.to_thread(_writer, run["id"], flushes, per_flush)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    latencies.sort()
    p95 = latencies[int(0.95 * (len(latencies) - 1))]

    # Replay: a client that missed everything reconnects from cursor 0.
    t0 = time.perf_counter()
    received = 0
    async with websockets.connect(ws_url, max_size=None) as ws:
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "points":
                received += sum(len(s) for s in message["series"].values())
            if message["type"] == "end":
                break
    replay = time.perf_counter() - t0
    assert received == flushes * per_flush, (received, flushes * per_flush)
    return p95, replay


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--no-worker", "--port",
                             str(port)], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the API did not start")


def run(smoke: bool = False) -> list[Row]:
    clients = 5 if smoke else 50
    flushes, per_flush = (20, 5) if smoke else (500, 20)  # 10,000 points
    rows = []
    name = f"epoque_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    modes = {
        "Redis + PostgreSQL": ({"EPOQUE_DATA_DIR": tempfile.mkdtemp(prefix="epoque-bench-"),
                                "EPOQUE_DATABASE_URL":
                                    f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
                                "EPOQUE_BROKER_URL": "redis://127.0.0.1:6379/12"}, 0.050),
        "embedded default": ({"EPOQUE_DATA_DIR": tempfile.mkdtemp(prefix="epoque-bench-")},
                             0.250),
    }
    try:
        for label, (env, target) in modes.items():
            _configure(env)
            port = _port()
            api = _serve(env, port)
            try:
                p95, replay = asyncio.run(_measure(f"http://127.0.0.1:{port}", clients, flushes,
                                                   per_flush))
            finally:
                api.terminate()
                api.wait(timeout=30)
            rows.append(Row(f"stream latency, commit → client, p95, {clients} clients ({label})",
                            "target", target, "Époque", p95, "s", f"≤ {target * 1000:.0f} ms",
                            None if smoke else p95 <= target))
            rows.append(Row(f"stream replay of {flushes * per_flush:,} missed points ({label})",
                            "target", 0.300, "Époque", replay, "s", "≤ 300 ms",
                            None if smoke else replay <= 0.300))
    finally:
        from backend.db import engine_for

        engine_for(modes["Redis + PostgreSQL"][0]["EPOQUE_DATABASE_URL"]).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows
