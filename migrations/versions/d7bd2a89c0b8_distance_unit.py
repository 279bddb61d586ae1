"""distances in miles or kilometres: users.distance_unit ('km' or 'mi'), chosen on the account;
NULL reads it from the account's locale (US: miles)

Revision ID: d7bd2a89c0b8
Revises: e9549162de47
Create Date: 2026-12-02 19:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd7bd2a89c0b8'
down_revision = 'e9549162de47'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('distance_unit', sa.String(length=2), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('distance_unit')
