"""the viewer's time zone and locale on the account: users.time_zone (IANA name) and
users.locale (Babel name), reported by the browser; NULL until it does

Revision ID: d3b8f1a6c5e9
Revises: a1c5e9d3f7b2
Create Date: 2026-12-02 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd3b8f1a6c5e9'
down_revision = 'b3d7f1a9c2e4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('locale', sa.String(length=35), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locale')
        batch_op.drop_column('time_zone')
