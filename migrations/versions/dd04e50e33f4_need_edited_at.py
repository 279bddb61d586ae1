"""needs.edited_at: when the customer last edited an open need's text, budget or dates
(NULL for a need never edited); the need page says "edited"

Revision ID: dd04e50e33f4
Revises: a29196d4fd38
Create Date: 2026-12-02 19:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

import marketplace.db_types

# revision identifiers, used by Alembic.
revision = 'dd04e50e33f4'
down_revision = 'a29196d4fd38'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edited_at', marketplace.db_types.UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.drop_column('edited_at')
