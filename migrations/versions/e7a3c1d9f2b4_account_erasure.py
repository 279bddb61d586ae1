"""account erasure: users.erased_at and providers.erased_at (the rows stay as tombstones)

Revision ID: e7a3c1d9f2b4
Revises: 5e3c9a1d7b20
Create Date: 2026-12-02 07:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

from marketplace.db_types import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'e7a3c1d9f2b4'
down_revision = '5e3c9a1d7b20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', UTCDateTime(), nullable=True))
    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
