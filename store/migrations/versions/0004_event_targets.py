"""event targets: test events to one endpoint

Revision ID: 0004_event_targets
Revises: 0003_event_type_versions
Created: 2026-12-01

Additive: one new table.
"""

import sqlalchemy as sa
from alembic import op


revision = '0004_event_targets'
down_revision = '0003_event_type_versions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_targets',
    sa.Column('event_id', sa.String(), nullable=False),
    sa.Column('endpoint_id', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )


def downgrade() -> None:
    op.drop_table('event_targets')
