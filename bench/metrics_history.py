"""A 1,000,000-point series downsampled to 2,000 points, on SQLite and PostgreSQL, against
reading the whole series (what a chart without downsampling would have to load)."""

from __future__ import annotations

import math
import os
import tempfile
import uuid

import psycopg

from bench.common import Row, median_time

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def _use(url: str) -> None:
    from backend.broker import celery_client
    from backend.config import get_settings

    os.environ["EPOQUE_DATABASE_URL"] = url
    os.environ.setdefault("EPOQUE_DATA_DIR", tempfile.mkdtemp(prefix="epoque-bench-"))
    get_settings.cache_clear()
    celery_client.cache_clear()


def _measure(url: str, n: int, points: int) -> tuple[float, float]:
    from backend.db import new_session
    from backend.migrate import upgrade
    from backend.runs import service
    from backend.runs.downsample import downsample
    from worker.engine import Spec

    _use(url)
    upgrade()
    with new_session() as session:
        run = service.create_run(session=session, spec=Spec())
        chunk = 50_000
        for start in range(1, n + 1, chunk):
            service.log_batch(session=session, run_id=run.id, points=[
                ("step_loss", x, math.sin(x / 1000) + (5.0 if x % 99_991 == 0 else 0.0))
                for x in range(start, min(start + chunk, n + 1))])
            session.commit()
        cursor = service.last_cursor(session=session, run_id=run.id)

        def full() -> None:
            service.get_points(session=session, run_id=run.id, keys=["step_loss"])

        def reduced() -> None:
            out = downsample(session=session, run_id=run.id, key="step_loss", points=points,
                             until=cursor)
            assert out is not None and len(out) <= points

        return median_time(full, 3), median_time(reduced, 5)


def run(smoke: bool = False) -> list[Row]:
    n = 20_000 if smoke else 1_000_000
    points = 2_000
    rows = []
    sqlite_url = f"sqlite:///{tempfile.mkdtemp(prefix='epoque-bench-')}/bench.sqlite"
    name = f"epoque_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    pg_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        for label, url in (("SQLite", sqlite_url), ("PostgreSQL", pg_url)):
            full, reduced = _measure(url, n, points)
            rows.append(Row(f"{n:,}-point series → {points:,} points ({label})",
                            "read the whole series", full, "downsampled (rollups)", reduced, "s",
                            "≤ 0.100 s", reduced <= 0.100 if not smoke else None))
    finally:
        from backend.db import engine_for

        engine_for(pg_url).dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return rows
