"""offer decline reasons: why a declined offer was declined (another accepted, the need
closed, the customer blocked the provider)

Revision ID: b7d2e4a91c3f
Revises: 0c6be7a6dc89
Create Date: 2026-12-01 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d2e4a91c3f'
down_revision = '0c6be7a6dc89'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decline_reason', sa.Enum(
            'other_accepted', 'need_closed', 'blocked', name='declinereason',
            native_enum=False, length=20, create_constraint=False), nullable=True))
    # Offers declined before this revision: another offer accepted, or the need closed.
    op.execute("UPDATE offers SET decline_reason = CASE WHEN EXISTS ("
               "SELECT 1 FROM needs WHERE needs.id = offers.need_id "
               "AND needs.accepted_offer_id IS NOT NULL) "
               "THEN 'other_accepted' ELSE 'need_closed' END WHERE status = 'declined'")


def downgrade():
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_column('decline_reason')
