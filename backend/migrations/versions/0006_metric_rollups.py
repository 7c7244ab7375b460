"""metric rollups

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 13:23:33.863308
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('metric_rollups',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('block', sa.BigInteger(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('min_x', sa.BigInteger(), nullable=False),
    sa.Column('min_v', sa.Float(), nullable=False),
    sa.Column('max_x', sa.BigInteger(), nullable=False),
    sa.Column('max_v', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'key', 'block')
    )
    # Runs stored before this revision get their rollups too.
    op.execute("""
        INSERT INTO metric_rollups (run_id, key, block, n, min_x, min_v, max_x, max_v)
        WITH ranked AS (
            SELECT run_id, key, x, value, x / 256 AS block,
                   COUNT(*) OVER (PARTITION BY run_id, key, x / 256) AS n,
                   ROW_NUMBER() OVER (PARTITION BY run_id, key, x / 256 ORDER BY value, x) AS lo,
                   ROW_NUMBER() OVER (PARTITION BY run_id, key, x / 256
                                      ORDER BY value DESC, x) AS hi
            FROM metric_points WHERE value IS NOT NULL
        )
        SELECT l.run_id, l.key, l.block, l.n, l.x, l.value, h.x, h.value
        FROM ranked l JOIN ranked h
          ON h.run_id = l.run_id AND h.key = l.key AND h.block = l.block AND h.hi = 1
        WHERE l.lo = 1
    """)


def downgrade() -> None:
    op.drop_table('metric_rollups')
