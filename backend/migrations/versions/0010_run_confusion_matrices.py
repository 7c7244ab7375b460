"""run_confusion: the validation confusion matrix of every recorded epoch (SPEC.md "Looking
inside").

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 19:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('run_confusion',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('matrix', sa.JSON(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'epoch')
    )


def downgrade() -> None:
    op.drop_table('run_confusion')
