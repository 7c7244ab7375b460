"""ids never reused (AUTOINCREMENT on SQLite), and the attempt token of a run's claim

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 18:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite declares AUTOINCREMENT only when a table is created: batch mode rebuilds runs and
    # studies (rows copied, so sqlite_sequence starts past the highest id kept). PostgreSQL's
    # sequences never hand an id out twice already; there the batch is a plain ALTER.
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table('runs', recreate='always' if sqlite else 'auto',
                              table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=32), nullable=True))
    if sqlite:
        with op.batch_alter_table('studies', recreate='always',
                                  table_kwargs={'sqlite_autoincrement': True}):
            pass


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch_op:
        batch_op.drop_column('token')
