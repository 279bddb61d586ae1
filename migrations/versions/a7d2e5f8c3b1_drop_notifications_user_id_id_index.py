"""Drop ix_notifications_user_id_id: a recipient's notifications are read through
ix_notifications_user_id_seq alone (their ids follow their seqs), and the second index cost
every fan-out one more index entry per recipient

Revision ID: a7d2e5f8c3b1
Revises: e4b9c2d7f1a6
Create Date: 2026-12-03 15:50:00.000000
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a7d2e5f8c3b1'
down_revision = 'e4b9c2d7f1a6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_id_id')


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user_id_id', ['user_id', 'id'], unique=False)
