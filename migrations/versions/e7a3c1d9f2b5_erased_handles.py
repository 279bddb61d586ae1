"""erased handles: the SHA-256 of each erased provider's handle, reserved for good

Revision ID: e7a3c1d9f2b5
Revises: e7a3c1d9f2b4
Create Date: 2026-12-02 07:55:00.000000

"""
import sqlalchemy as sa
from alembic import op

from marketplace.db_types import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'e7a3c1d9f2b5'
down_revision = 'e7a3c1d9f2b4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'erased_handles',
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('digest', name=op.f('pk_erased_handles')),
    )


def downgrade():
    op.drop_table('erased_handles')
