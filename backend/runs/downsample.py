"""Long series for charts: N buckets over x, each keeping its minimum and maximum point.

Spikes stay visible (a bucket's extremes are always kept, at their own x). Up to RAW_LIMIT
points the database ranks the raw points in one statement; beyond, buckets are made of whole
rollup blocks (min and max per ROLLUP_BLOCK consecutive x, maintained as points are written),
so a million-point series is reduced from a few thousand rows and never read whole.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

# "+id" in both queries: the cursor bound must not choose the index. Without ANALYZE
# statistics SQLite's planner would read a series through (run_id, id), every point of the
# run then a sort, instead of through (run_id, key, x): 10x slower for one key of a run with
# 16 series. The unary plus changes nothing for PostgreSQL.
_SQL = text("""
WITH pts AS (
    SELECT x, value,
           CAST((x - :x0) * :buckets / :span AS INTEGER) AS bucket
    FROM metric_points
    WHERE run_id = :run_id AND key = :key AND +id <= :until AND value IS NOT NULL
), ranked AS (
    SELECT x, value,
           ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY value ASC, x ASC) AS lo,
           ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY value DESC, x ASC) AS hi
    FROM pts
)
SELECT x, value FROM ranked WHERE lo = 1 OR hi = 1 ORDER BY x
""")

_RANGE = text("""
SELECT MIN(x), MAX(x), COUNT(*) FROM metric_points
WHERE run_id = :run_id AND key = :key AND +id <= :until
""")

_ROLLUPS = text("""
SELECT block, min_x, min_v, max_x, max_v FROM metric_rollups
WHERE run_id = :run_id AND key = :key ORDER BY block
""")

_ROLLED = text("SELECT COALESCE(SUM(n), 0) FROM metric_rollups WHERE run_id = :run_id AND key = :key")

# Above this many points the raw ranking gets slow (it sorts every point); rollups take over.
RAW_LIMIT = 50_000


def downsample(
    *, session: Session, run_id: int, key: str, points: int, until: int
) -> list[list[Any]] | None:
    """At most ``points`` points of series ``key`` (ids ≤ until), or None if it is short.
    (Past RAW_LIMIT the rollups may include a few points newer than ``until``.)"""
    rolled = session.execute(_ROLLED, {"run_id": run_id, "key": key}).scalar_one()
    if rolled > RAW_LIMIT:
        return _from_rollups(session, run_id, key, points)
    x0, x1, count = session.execute(_RANGE, {"run_id": run_id, "key": key, "until": until}).one()
    if not count or count <= points:
        return None
    buckets = max(points // 2, 1)
    rows = session.execute(_SQL, {"run_id": run_id, "key": key, "x0": x0,
                                  "span": x1 - x0 + 1, "buckets": buckets, "until": until})
    return [[x, value] for x, value in rows]


def _from_rollups(session: Session, run_id: int, key: str, points: int) -> list[list[Any]]:
    rows = session.execute(_ROLLUPS, {"run_id": run_id, "key": key}).all()
    per_bucket = -(-len(rows) // max(points // 2, 1))  # whole blocks per bucket, rounded up
    out: list[list[Any]] = []
    for start in range(0, len(rows), per_bucket):
        group = rows[start:start + per_bucket]
        low = min(group, key=lambda r: (r.min_v, r.min_x))
        high = max(group, key=lambda r: (r.max_v, -r.max_x))
        out.append([low.min_x, low.min_v])
        if (high.max_x, high.max_v) != (low.min_x, low.min_v):
            out.append([high.max_x, high.max_v])
    out.sort(key=lambda p: p[0])
    return out
