"""run_trajectory: each epoch's weight sketch as float64 bytes (column data) instead of JSON
(column sketch); encoding it as JSON cost more than the rest of the epoch's writes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 04:00:00
"""

import json
import sys
from array import array
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# The codec of backend/runs/trajectory.py, written out: a migration must not change when the
# application's code does.


def _encode(sketch: list[list[float]]) -> bytes:
    flat = array("d", [v for row in sketch for v in row])
    if sys.byteorder == "big":
        flat.byteswap()
    return flat.tobytes()


def _decode(data: bytes) -> list[list[float]]:
    flat = array("d")
    flat.frombytes(data)
    if sys.byteorder == "big":
        flat.byteswap()
    n = len(flat) // 2
    return [flat[:n].tolist(), flat[n:].tolist()]


def _convert(source: str, target: str, codec: Callable[[Any], Any]) -> None:
    """Rewrite every row's ``source`` column into ``target``, a run at a time (a run keeps up
    to a few MB of sketches)."""
    conn = op.get_bind()
    table = sa.table('run_trajectory', sa.column('run_id', sa.Integer()),
                     sa.column('epoch', sa.Integer()), sa.column('sketch', sa.JSON()),
                     sa.column('data', sa.LargeBinary()))
    runs = [r for (r,) in conn.execute(sa.select(table.c.run_id).distinct())]
    for run_id in runs:
        rows = conn.execute(sa.select(table.c.epoch, table.c[source])
                            .where(table.c.run_id == run_id)).all()
        for epoch, value in rows:
            if isinstance(value, str):  # a JSON column read through a bare table on SQLite
                value = json.loads(value)
            conn.execute(sa.update(table).where(table.c.run_id == run_id, table.c.epoch == epoch)
                         .values({target: codec(value)}))


def _move(source: str, target: str, kind: sa.types.TypeEngine, codec: Callable[[Any], Any]) -> None:
    """Replace column ``source`` by ``target`` (of type ``kind``), each row's value converted."""
    op.add_column('run_trajectory', sa.Column(target, kind, nullable=True))
    _convert(source, target, codec)
    with op.batch_alter_table('run_trajectory') as batch:
        batch.drop_column(source)
        batch.alter_column(target, existing_type=kind, nullable=False)


def upgrade() -> None:
    _move('sketch', 'data', sa.LargeBinary(), _encode)


def downgrade() -> None:
    _move('data', 'sketch', sa.JSON(), _decode)
