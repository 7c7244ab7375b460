"""datasets processed at ingestion: status, input shape, stored bytes, chunked images

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('datasets') as batch:
        batch.add_column(sa.Column('status', sa.String(length=16), nullable=False,
                                   server_default='ready'))
        batch.add_column(sa.Column('error', sa.Text(), nullable=True))
        batch.add_column(sa.Column('input_shape', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('stored_bytes', sa.BigInteger(), nullable=False,
                                   server_default='0'))
        batch.add_column(sa.Column('processed', sa.Integer(), nullable=False,
                                   server_default='0'))
    op.create_table('dataset_chunks',
    sa.Column('dataset_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('dataset_id', 'seq')
    )
    # Uploads of version 1 kept only their zip, never processed: they could not train.
    op.execute("UPDATE datasets SET status = 'failed', archive = NULL, error = "
               "'uploaded before images were processed at ingestion: upload it again'")


def downgrade() -> None:
    op.drop_table('dataset_chunks')
    with op.batch_alter_table('datasets') as batch:
        for column in ('processed', 'stored_bytes', 'input_shape', 'error', 'status'):
            batch.drop_column(column)
