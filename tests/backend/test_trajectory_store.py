"""The weight sketches a run stores per epoch (backend/runs/trajectory.py): float64 bytes that
give back exactly the floats written, written in the epoch's own transaction, and the migration
that turned the JSON sketches of earlier labs into bytes (and back), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import struct

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from backend.db import engine_for, new_session
from backend.migrate import alembic_config
from backend.runs import service
from backend.runs.lifecycle import claim_run, record_epoch
from backend.runs.trajectory import decode, encode, trajectory
from worker.engine.spec import parse_spec

AWKWARD = [0.1, -0.0, math.pi, 1e308, -2.5e-308, 5e-324, 123456789.123456789, -1.0]


def test_the_bytes_give_back_every_float_exactly() -> None:
    sketch = [AWKWARD, [-v for v in AWKWARD]]
    data = encode(sketch)
    assert len(data) == 8 * 2 * len(AWKWARD)
    # Independent of the codec: little-endian IEEE doubles, row after row.
    assert data == struct.pack(f"<{2 * len(AWKWARD)}d", *AWKWARD, *[-v for v in AWKWARD])
    back = decode(data)
    assert [[v.hex() for v in row] for row in back] == [[v.hex() for v in row] for row in sketch]
    assert decode(encode([[], []])) == [[], []]


@pytest.mark.parametrize("bad", [[[1.0]], [[1.0], [2.0, 3.0]], [[1.0], [2.0], [3.0]]])
def test_a_sketch_is_two_rows_of_equal_length(bad) -> None:
    with pytest.raises(ValueError, match="2 rows of equal length"):
        encode(bad)


def test_sketches_are_written_with_the_epochs_points(configure, db_url) -> None:
    configure(database_url=db_url)
    with new_session() as session:
        run_id = service.create_run(session=session, spec=parse_spec({})).id
        token = claim_run(session=session, run_id=run_id, worker="w").token
        record_epoch(session=session, run_id=run_id, token=token, epoch=2,
                     points=[("train_loss", 1, 0.5), ("train_loss", 2, 0.25)],
                     sketches=[(1, [[0.1, 0.2], [0.3, 0.4]]), (2, [[AWKWARD[2]], [AWKWARD[3]]])])
    with new_session() as session:  # a new session: only what was committed
        assert trajectory(session=session, run_id=run_id) == [
            (1, [[0.1, 0.2], [0.3, 0.4]]), (2, [[math.pi], [1e308]])]
        # A resumed attempt writing epoch 2 again keeps the first sketch.
        record_epoch(session=session, run_id=run_id, token=token, epoch=2, points=[],
                     sketches=[(2, [[9.0], [9.0]])])
        assert trajectory(session=session, run_id=run_id)[1] == (2, [[math.pi], [1e308]])


def test_the_migration_turns_json_sketches_into_bytes_and_back(db_url) -> None:
    config = alembic_config(db_url)
    command.upgrade(config, "0014")
    sketches = {0: [AWKWARD, AWKWARD[::-1]], 3: [[1.5, -2.0], [0.0, 7.25]]}
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO runs (id, status, spec, queue, created_at, epoch, max_epochs, attempt, "
            "cancel_requested) VALUES (1, 'succeeded', '{}', 'cpu', '2026-01-01', 3, 3, 1, false)"))
        for epoch, sketch in sketches.items():
            conn.execute(text("INSERT INTO run_trajectory (run_id, epoch, sketch) VALUES (1, :e, :s)"),
                         {"e": epoch, "s": json.dumps(sketch)})
    command.upgrade(config, "head")
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT epoch, data FROM run_trajectory WHERE run_id = 1")).all())
    assert {e: decode(bytes(d)) for e, d in stored.items()} == sketches
    command.downgrade(config, "0014")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT epoch, sketch FROM run_trajectory WHERE run_id = 1")).all()
    assert {e: (json.loads(s) if isinstance(s, str) else s) for e, s in rows} == sketches
    engine.dispose()
    engine_for(db_url).dispose()
