"""runs.kind and runs.options: a run is a training run ("train") or an LR range test
("lr_range", its start/end/steps/seeds in options); run_trajectory: per epoch, the sketch of
the weights the loss landscape projects its path from; run_landscapes: the computed loss
landscapes and their progress (SPEC.md "Looking inside").

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-30 21:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                   server_default='train'))
        batch.add_column(sa.Column('options', sa.JSON(), nullable=True))
    op.create_table('run_trajectory',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('sketch', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'epoch')
    )
    op.create_table('run_landscapes',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('resolution', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'resolution')
    )


def downgrade() -> None:
    op.drop_table('run_landscapes')
    op.drop_table('run_trajectory')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('options')
        batch.drop_column('kind')
