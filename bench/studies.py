"""A 16-run seed study on two local workers vs one, and packed on one (Redis + PostgreSQL,
real worker processes)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import redis

from bench.common import Row
from bench.stream import PG_ADMIN, _configure

ROOT = Path(__file__).resolve().parent.parent
REDIS = "redis://127.0.0.1:6379/13"


def _study_seconds(env: dict[str, str], workers: int, runs: int, epochs: int, pack: bool) -> float:
    from backend.db import new_session
    from backend.migrate import upgrade
    from backend.studies import service
    from backend.workers.service import live_workers

    _configure(env)
    upgrade()
    redis.Redis.from_url(REDIS).flushdb()
    procs = [subprocess.Popen([sys.executable, "-m", "backend.cli", "worker", "--loglevel",
                               "WARNING"], cwd=ROOT, env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    try:
        deadline = time.monotonic() + 60  # workers up (registered) before the clock starts
        while time.monotonic() < deadline:
            with new_session() as session:
                if len(live_workers(session=session)) >= workers:
                    break
            time.sleep(0.25)
        with new_session() as session:
            study, _ = service.submit_study(
                session=session, name=f"{workers} workers",
                base={"model": {"hidden": [128, 128]}, "training": {"max_epochs": epochs}},
                grid={}, seeds=runs, pack=pack)
        t0 = time.perf_counter()
        while True:
            with new_session() as session:
                runs_now = service.study_runs(session=session, study_id=study.id)
                if all(r.status not in ("queued", "running") for r in runs_now):
                    break
            time.sleep(0.25)  # the bench itself must not take a core from the workers
        seconds = time.perf_counter() - t0
        assert all(r.status == "succeeded" for r in runs_now)
        return seconds
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def _fresh_study(workers: int, runs: int, epochs: int, pack: bool) -> float:
    """Seconds of one study on a fresh PostgreSQL database (dropped afterwards)."""
    name = f"epoque_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        env = {"EPOQUE_DATA_DIR": tempfile.mkdtemp(prefix="epoque-bench-"),
               "EPOQUE_DATABASE_URL": url, "EPOQUE_BROKER_URL": REDIS,
               "EPOQUE_TORCH_THREADS": "1"}
        return _study_seconds(env, workers, runs, epochs, pack)
    finally:
        from backend.db import engine_for

        engine_for(url).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(smoke: bool = False) -> list[Row]:
    runs, epochs = (2, 2) if smoke else (16, 40)
    # (workers, packed): one task per run on one and on two workers; packs on one worker.
    # Alternated over rounds, medians: single runs of the pair gave 1.66×, 1.70× and 1.98×.
    cases = ((1, False), (2, False), (1, True))
    seconds: dict[tuple[int, bool], list[float]] = {case: [] for case in cases}
    for _ in range(1 if smoke else 3):
        for workers, pack in cases:
            seconds[workers, pack].append(_fresh_study(workers, runs, epochs, pack))
    times = {case: statistics.median(values) for case, values in seconds.items()}
    one = times[1, False]
    spread, packed = one / times[2, False], one / times[1, True]
    return [
        Row(f"{runs}-run study, two local workers vs one (digits MLP, {epochs} epochs each)",
            "one worker", one, "two workers", times[2, False], "s", "speed-up ≥ 1.8",
            None if smoke else spread >= 1.8, note=f"speed-up {spread:.2f}×"),
        Row(f"{runs}-seed study on one worker, packed vs one task per run (end to end: "
            f"{runs} runs' metrics, checkpoints and models stored)",
            "one task per run", one, "packed: one stacked network", times[1, True], "s",
            "informative", None, note=f"speed-up {packed:.2f}×"),
    ]
