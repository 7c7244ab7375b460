"""run packs: the id of the first run of the pack a run trains in

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 17:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('pack', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('runs', 'pack')
