"""event type versions, event payloads, version deliveries

Revision ID: 0003_event_type_versions
Revises: 0002_endpoint_rate_limit
Created: 2026-12-01

Additive: three new tables; a type without versions uses none of them.
"""

import sqlalchemy as sa
from alembic import op


revision = '0003_event_type_versions'
down_revision = '0002_endpoint_rate_limit'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_payloads',
    sa.Column('event_id', sa.String(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('event_id', 'version')
    )
    op.create_table('event_type_versions',
    sa.Column('id', sa.String(), nullable=False),
    sa.Column('type_name', sa.String(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(), nullable=True),
    sa.Column('json_schema', sa.JSON(), nullable=True),
    sa.Column('example', sa.JSON(), nullable=True),
    sa.Column('transforms', sa.JSON(), nullable=True),
    sa.Column('deprecated', sa.Boolean(), nullable=False),
    sa.Column('sunset_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('type_name', 'version')
    )
    with op.batch_alter_table('event_type_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_type_versions_type_name'), ['type_name'], unique=False)

    op.create_table('version_deliveries',
    sa.Column('delivery_id', sa.String(), nullable=False),
    sa.Column('type_name', sa.String(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('delivery_id')
    )
    with op.batch_alter_table('version_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_version_deliveries_delivered_at'), ['delivered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_version_deliveries_type_name'), ['type_name'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('version_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_version_deliveries_type_name'))
        batch_op.drop_index(batch_op.f('ix_version_deliveries_delivered_at'))

    op.drop_table('version_deliveries')
    with op.batch_alter_table('event_type_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_type_versions_type_name'))

    op.drop_table('event_type_versions')
    op.drop_table('event_payloads')
