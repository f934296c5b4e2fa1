"""The distributed mode: the leader's schedule, intake, role holders, config versions, host pace

source_state gains the leader's schedule (scheduled, host, next_check_at) and the claim of the
batch polling a source now; intake_batch and intake carry what fetch workers found to the
analysis owner; role_holder says who holds each role's advisory lock (and fences the owner);
config_version keeps the leader's feeds.yaml; host_pace spaces article pages over all workers.
One process on SQLite gets the tables and never fills them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:22:20.549635
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('config_version',
    sa.Column('version', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_config_version'))
    )
    op.create_table('host_pace',
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('host', name=op.f('pk_host_pace'))
    )
    op.create_table('intake_batch',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source_id', sa.String(length=200), nullable=False),
    sa.Column('claim_token', sa.String(length=64), nullable=False),
    sa.Column('shard', sa.Integer(), server_default='0', nullable=False),
    sa.Column('polled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake_batch'))
    )
    with op.batch_alter_table('intake_batch', schema=None) as batch_op:
        batch_op.create_index('ix_intake_batch_pending', ['shard', 'done_at', 'id'], unique=False)

    op.create_table('role_holder',
    sa.Column('role', sa.String(length=100), nullable=False),
    sa.Column('holder', sa.Text(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('role', name=op.f('pk_role_holder'))
    )
    op.create_table('intake',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.String(length=200), nullable=False),
    sa.Column('item_key', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('near_topics', sa.JSON(), nullable=True),
    sa.Column('article', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['intake_batch.id'], name=op.f('fk_intake_batch_id_intake_batch'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_intake')),
    sa.UniqueConstraint('source_id', 'item_key', name='uq_intake_source_item')
    )
    with op.batch_alter_table('intake', schema=None) as batch_op:
        batch_op.create_index('ix_intake_batch', ['batch_id'], unique=False)

    with op.batch_alter_table('source_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheduled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('host', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claim_token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claim_expires', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_source_state_claim', ['claim_token'], unique=False)
        batch_op.create_index('ix_source_state_due', ['scheduled', 'next_check_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('source_state', schema=None) as batch_op:
        batch_op.drop_index('ix_source_state_due')
        batch_op.drop_index('ix_source_state_claim')
        batch_op.drop_column('claim_expires')
        batch_op.drop_column('claim_token')
        batch_op.drop_column('next_check_at')
        batch_op.drop_column('host')
        batch_op.drop_column('scheduled')

    with op.batch_alter_table('intake', schema=None) as batch_op:
        batch_op.drop_index('ix_intake_batch')

    op.drop_table('intake')
    op.drop_table('role_holder')
    with op.batch_alter_table('intake_batch', schema=None) as batch_op:
        batch_op.drop_index('ix_intake_batch_pending')

    op.drop_table('intake_batch')
    op.drop_table('host_pace')
    op.drop_table('config_version')
