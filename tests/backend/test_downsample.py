"""Downsampling keeps every bucket's min and max (spikes stay visible), on both databases."""

from __future__ import annotations

import math
import random

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.db import new_session
from backend.runs.service import log_batch


def test_every_bucket_keeps_its_min_and_max(configure, db_url) -> None:
    configure(database_url=db_url)
    rng = random.Random(7)
    n, points = 20_000, 200
    values = [math.sin(i / 500) + rng.gauss(0, 0.05) for i in range(1, n + 1)]
    values[12_345 - 1] = 50.0   # an upward spike
    values[777 - 1] = -40.0     # a downward one
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json={}).json()
        with new_session() as session:
            log_batch(session=session, run_id=run["id"],
                      points=[("step_loss", x, v) for x, v in enumerate(values, start=1)])
            log_batch(session=session, run_id=run["id"], points=[("short", 1, 0.5), ("short", 2, None)])
            session.commit()
        body = client.get(f"/api/runs/{run['id']}/metrics",
                          params={"keys": "step_loss,short", "points": points}).json()
    reduced = body["series"]["step_loss"]
    assert len(reduced) <= points
    assert [x for x, _ in reduced] == sorted(x for x, _ in reduced)
    assert [12_345, 50.0] in reduced and [777, -40.0] in reduced
    # Recompute the buckets independently: each one's extremes are present at their own x.
    buckets = points // 2
    for b in range(buckets):
        xs = [x for x in range(1, n + 1) if (x - 1) * buckets // n == b]
        if not xs:
            continue
        lo = min(xs, key=lambda x: (values[x - 1], x))
        hi = max(xs, key=lambda x: (values[x - 1], -x))
        assert [lo, values[lo - 1]] in reduced and [hi, values[hi - 1]] in reduced, b
    assert body["series"]["short"] == [[1, 0.5], [2, None]]  # short series come back whole
    assert body["cursor"] > 0


def test_long_series_are_reduced_from_rollups_keeping_every_bucket_extreme(configure, db_url):
    from backend.runs.downsample import RAW_LIMIT
    from backend.runs.models import ROLLUP_BLOCK

    configure(database_url=db_url)
    rng = random.Random(3)
    n, points = RAW_LIMIT + 20_000, 500
    values = [math.cos(i / 3000) + rng.gauss(0, 0.02) for i in range(1, n + 1)]
    values[55_555 - 1] = 9.0
    values[101 - 1] = -9.0
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json={}).json()
        with new_session() as session:
            # Written in flushes, with a replayed batch (a resumed attempt) that must not count.
            pts = [("step_loss", x, v) for x, v in enumerate(values, start=1)]
            for i in range(0, n, 7_000):
                log_batch(session=session, run_id=run["id"], points=pts[i:i + 7_000])
                session.commit()
            log_batch(session=session, run_id=run["id"],
                      points=[("step_loss", x, 1e6) for x in range(1, 500)])
            session.commit()
        body = client.get(f"/api/runs/{run['id']}/metrics",
                          params={"keys": "step_loss", "points": points}).json()
    reduced = body["series"]["step_loss"]
    assert len(reduced) <= points and [55_555, 9.0] in reduced and [101, -9.0] in reduced
    assert max(v for _, v in reduced) == 9.0  # the replayed 1e6 values were never stored
    # Independently: buckets of whole blocks, each bucket's min and max at their own x.
    blocks = sorted({x // ROLLUP_BLOCK for x in range(1, n + 1)})
    per = -(-len(blocks) // (points // 2))
    for start in range(0, len(blocks), per):
        group = set(blocks[start:start + per])
        xs = [x for x in range(1, n + 1) if x // ROLLUP_BLOCK in group]
        lo = min(xs, key=lambda x: (values[x - 1], x))
        hi = max(xs, key=lambda x: (values[x - 1], -x))
        assert [lo, values[lo - 1]] in reduced and [hi, values[hi - 1]] in reduced
