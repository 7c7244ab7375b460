"""run forks: where a fork comes from ({run, epoch}) and how to replay its start; the
snapshots kept for forks (some epochs per run, within a byte budget)

Revision ID: 0013
Revises: 0010
Create Date: 2026-11-30 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('forked_from', sa.JSON(), nullable=True))
    op.create_table('run_snapshots',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'epoch')
    )


def downgrade() -> None:
    op.drop_table('run_snapshots')
    op.drop_column('runs', 'forked_from')
