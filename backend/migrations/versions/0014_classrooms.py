"""classes, class_students, and the runs' class, student and class dispatch order (SPEC.md
"Version 2" -> "Classrooms").

Revision ID: 0014
Revises: 0010
Create Date: 2026-11-30 21:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('classes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('presets', sa.JSON(), nullable=False),
    sa.Column('locked', sa.JSON(), nullable=False),
    sa.Column('max_runs_per_student', sa.Integer(), nullable=False),
    sa.Column('max_queued_per_student', sa.Integer(), nullable=False),
    sa.Column('show_classmates', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('challenge', sa.JSON(), nullable=True),
    sa.Column('join_code', sa.String(length=32), nullable=False),
    sa.Column('teacher_token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('join_code'),
    sa.UniqueConstraint('teacher_token_hash'),
    sqlite_autoincrement=True,
    )
    op.create_table('class_students',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('joined_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash'),
    sqlite_autoincrement=True,
    )
    op.create_index('ix_class_students_class_id', 'class_students', ['class_id'])
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('class_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('student', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('class_seq', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('class_preset', sa.String(length=64), nullable=True))
        batch.create_index('ix_runs_class_id', ['class_id'])


def downgrade() -> None:
    # SQLite drops columns by rebuilding the table: it keeps AUTOINCREMENT only if told (0009).
    with op.batch_alter_table('runs', table_kwargs={'sqlite_autoincrement': True}) as batch:
        batch.drop_index('ix_runs_class_id')
        batch.drop_column('class_preset')
        batch.drop_column('class_seq')
        batch.drop_column('student')
        batch.drop_column('class_id')
    op.drop_index('ix_class_students_class_id', table_name='class_students')
    op.drop_table('class_students')
    op.drop_table('classes')
