"""endpoints: health, failing_since, consecutive_failures

Revision ID: 0005_endpoint_health
Revises: 0004_event_targets
Created: 2026-12-01

The circuit breaker's columns. Existing endpoints start healthy with no failures counted (the
server defaults fill the rows the table already has).
"""

import sqlalchemy as sa
from alembic import op


revision = '0005_endpoint_health'
down_revision = '0004_event_targets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('health', sa.String(), nullable=False, server_default='healthy'))
        batch_op.add_column(sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('consecutive_failures', sa.Integer(), nullable=False, server_default='0'))



def downgrade() -> None:
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.drop_column('consecutive_failures')
        batch_op.drop_column('failing_since')
        batch_op.drop_column('health')

