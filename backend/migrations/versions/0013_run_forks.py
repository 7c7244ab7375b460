"""run forks: where a fork comes from ({run, epoch}) and how to replay its start

Revision ID: 0013
Revises: 0010
Create Date: 2026-11-30 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('forked_from', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('runs', 'forked_from')
