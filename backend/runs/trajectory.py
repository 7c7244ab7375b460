"""The weight sketches of a single-network run, one per epoch (worker/engine/landscape.py), from
which its loss landscape projects the path: stored as the float64 bytes of the two directions'
rows, one row after the other. As JSON they cost about 0.2 ms an epoch to encode, more than the
rest of the epoch's writes together (BENCHMARKS.md: persisted vs in process)."""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.runs.models import RunTrajectory
from backend.runs.service import insert_for

Sketch = list[list[float]]
ROWS = 2  # one row of dot products per random direction


def encode(sketch: Sketch) -> bytes:
    """Little-endian float64s, row after row (rows of equal length)."""
    if len(sketch) != ROWS or len({len(row) for row in sketch}) != 1:
        raise ValueError(f"a sketch is {ROWS} rows of equal length")
    flat = array("d")
    for row in sketch:
        flat.extend(row)
    if sys.byteorder == "big":
        flat.byteswap()
    return flat.tobytes()


def decode(data: bytes) -> Sketch:
    flat = array("d")
    flat.frombytes(data)
    if sys.byteorder == "big":
        flat.byteswap()
    n = len(flat) // ROWS
    return [flat[i * n:(i + 1) * n].tolist() for i in range(ROWS)]


def log_trajectory(*, session: Session, run_id: int, sketches: Iterable[tuple[int, Sketch]]) -> None:
    """Store epochs' weight sketches (an epoch already stored, by a resumed run, is kept); no
    commit: they go with the epoch's points."""
    rows = [{"run_id": run_id, "epoch": epoch, "data": encode(sketch)} for epoch, sketch in sketches]
    if rows:
        session.execute(insert_for(session)(RunTrajectory).on_conflict_do_nothing(), rows)


def trajectory(*, session: Session, run_id: int) -> list[tuple[int, Sketch]]:
    return [(e, decode(data)) for e, data in session.execute(
        select(RunTrajectory.epoch, RunTrajectory.data).where(RunTrajectory.run_id == run_id)
        .order_by(RunTrajectory.epoch))]
