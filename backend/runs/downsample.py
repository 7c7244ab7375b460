"""Long series for charts: N buckets over x, each keeping its minimum and maximum point.

Spikes stay visible (a bucket's extremes are always kept, at their own x), and the work is done
by the database in one statement, so a million-point series never crosses the wire.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

_SQL = text("""
WITH pts AS (
    SELECT x, value,
           CAST((x - :x0) * :buckets / :span AS INTEGER) AS bucket
    FROM metric_points
    WHERE run_id = :run_id AND key = :key AND id <= :until AND value IS NOT NULL
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
WHERE run_id = :run_id AND key = :key AND id <= :until
""")


def downsample(
    *, session: Session, run_id: int, key: str, points: int, until: int
) -> list[list[Any]] | None:
    """At most ``points`` points of series ``key`` (ids ≤ until), or None if it is short."""
    x0, x1, count = session.execute(_RANGE, {"run_id": run_id, "key": key, "until": until}).one()
    if not count or count <= points:
        return None
    buckets = max(points // 2, 1)
    rows = session.execute(_SQL, {"run_id": run_id, "key": key, "x0": x0,
                                  "span": x1 - x0 + 1, "buckets": buckets, "until": until})
    return [[x, value] for x, value in rows]
