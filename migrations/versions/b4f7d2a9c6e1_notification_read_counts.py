"""notification_reads: how many of each recipient's notifications are marked read, so the
unread count is their newest seq less it instead of a count over all their notifications

Revision ID: b4f7d2a9c6e1
Revises: a7d2e5f8c3b1
Create Date: 2026-12-07 17:30:00.000000

Filled from the notifications: each recipient's newest seq less their unread ones (which is
how many they marked read, seqs having no holes; and if an old database had one, the unread
count still comes out exact). Recipients with no notifications get no row (none read).
Written in SQL that SQLite and PostgreSQL both run.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b4f7d2a9c6e1'
down_revision = 'a7d2e5f8c3b1'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'notification_reads',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('read_count', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_notification_reads_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_reads')),
    )
    op.execute(
        "INSERT INTO notification_reads (user_id, read_count)"
        " SELECT user_id, max(seq) - sum(CASE WHEN read_at IS NULL THEN 1 ELSE 0 END)"
        " FROM notifications GROUP BY user_id")


def downgrade():
    op.drop_table('notification_reads')
