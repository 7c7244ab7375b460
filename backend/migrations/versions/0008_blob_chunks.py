"""blob chunks: models and checkpoints stored in pieces (any size fits any database)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 18:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TABLES = (('run_models', 'model'), ('run_checkpoints', 'checkpoint'))


def upgrade() -> None:
    op.create_table('blob_chunks',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('kind', 'run_id', 'seq')
    )
    for table, kind in TABLES:
        # A blob stored whole becomes one piece (pieces may be of any size up to a value's
        # limit; new ones are blobs.CHUNK_BYTES).
        op.execute(f"INSERT INTO blob_chunks (kind, run_id, seq, data) "
                   f"SELECT '{kind}', run_id, 0, blob FROM {table}")
        op.add_column(table, sa.Column('size', sa.BigInteger(), nullable=True))
        op.execute(f"UPDATE {table} SET size = length(blob)")
        with op.batch_alter_table(table) as batch:
            batch.alter_column('size', existing_type=sa.BigInteger(), nullable=False)
            batch.drop_column('blob')


def downgrade() -> None:
    for table, kind in TABLES:
        op.add_column(table, sa.Column('blob', sa.LargeBinary(), nullable=True))
        # Only blobs of one piece come back (larger ones did not fit one value before).
        op.execute(f"UPDATE {table} SET blob = (SELECT data FROM blob_chunks c WHERE "
                   f"c.kind = '{kind}' AND c.run_id = {table}.run_id AND c.seq = 0)")
        with op.batch_alter_table(table) as batch:
            batch.drop_column('size')
    op.drop_table('blob_chunks')
