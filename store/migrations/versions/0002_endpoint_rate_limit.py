"""endpoints: rate_limit and its bucket

Revision ID: 0002_endpoint_rate_limit
Revises: 0001_baseline
Created: 2026-12-01

Additive: both columns are nullable (null rate_limit = no limit), so old processes keep working.
"""

import sqlalchemy as sa
from alembic import op


revision = '0002_endpoint_rate_limit'
down_revision = '0001_baseline'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rate_limit', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rate_next_at', sa.Float(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('endpoints', schema=None) as batch_op:
        batch_op.drop_column('rate_next_at')
        batch_op.drop_column('rate_limit')

