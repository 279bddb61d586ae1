"""webhooks: secret rotation (the previous secret also signs until previous_until) and a
count of deliveries failed in a row (re-enabling a webhook starts it again at 0)

Revision ID: b3c4d5e6f7a8
Revises: af59fba7aae9
Create Date: 2026-12-02 23:55:00.000000
"""
import sqlalchemy as sa
from alembic import op

import marketplace.db_types

# revision identifiers, used by Alembic.
revision = 'b3c4d5e6f7a8'
down_revision = 'af59fba7aae9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_in_a_row', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('previous_secret', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('previous_until', marketplace.db_types.UTCDateTime(),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('previous_until')
        batch_op.drop_column('previous_secret')
        batch_op.drop_column('failed_in_a_row')
