"""e-mail alerts: alert_settings (a provider's switches, the sender's lease and last mail),
alert_categories (the categories alerted on) and alert_queue (matched needs waiting to be
mailed)

Revision ID: 3b6b6b78dc13
Revises: d3b8f1a6c5e9
Create Date: 2026-12-02 19:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

from marketplace.db_types import UTCDateTime

# revision identifiers, used by Alembic.
revision = '3b6b6b78dc13'
down_revision = 'd3b8f1a6c5e9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'alert_settings',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('direct_asks', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('tags', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('last_sent_at', UTCDateTime(), nullable=True),
        sa.Column('lease_until', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id'),
    )
    op.create_table(
        'alert_categories',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('category_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['category_id'], ['categories.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'category_id'),
    )
    op.create_table(
        'alert_queue',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('need_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('queued_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['need_id'], ['needs.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table('alert_queue', schema=None) as batch_op:
        batch_op.create_index('ix_alert_queue_user_id', ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_queue_need_id'), ['need_id'], unique=False)


def downgrade():
    with op.batch_alter_table('alert_queue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_queue_need_id'))
        batch_op.drop_index('ix_alert_queue_user_id')
    op.drop_table('alert_queue')
    op.drop_table('alert_categories')
    op.drop_table('alert_settings')
