"""webhook_attempts: every try of a webhook delivery, with when, how long and what came back
(GET /webhooks/{id}/deliveries/{delivery_id}/attempts)

Revision ID: c5d1e8f2a7b4
Revises: b7e2c4d9a1f3
Create Date: 2026-12-03 00:45:00.000000
"""
import sqlalchemy as sa
from alembic import op

from marketplace.db_types import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'c5d1e8f2a7b4'
down_revision = 'b7e2c4d9a1f3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=False),
        sa.Column('attempted_at', UTCDateTime(), nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('response_body', sa.Text(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'],
                                name=op.f('fk_webhook_attempts_delivery_id_webhook_deliveries'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts')),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f('ix_webhook_attempts_delivery_id'), 'webhook_attempts', ['delivery_id'],
                    unique=False)


def downgrade():
    op.drop_index(op.f('ix_webhook_attempts_delivery_id'), table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
