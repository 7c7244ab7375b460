"""runs.kind and runs.options: a run is a training run ("train") or an LR range test
("lr_range", its start/end/steps/seeds in options) (SPEC.md "Looking inside").

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-30 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                   server_default='train'))
        batch.add_column(sa.Column('options', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('options')
        batch.drop_column('kind')
