"""per-recipient notification seqs: notifications.seq counts each recipient's notifications
1, 2, 3, ... in commit order (unique per user)

Revision ID: d3e5a7c9b1f4
Revises: a1c5e9d3f7b2
Create Date: 2026-12-02 10:05:00.000000

Existing notifications are numbered per recipient in id order (ids already follow commit
order); the next one of each recipient continues from its highest seq without a hole. Written
in SQL that SQLite (3.33+: UPDATE ... FROM, window functions) and PostgreSQL both run.
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd3e5a7c9b1f4'
down_revision = 'd3b8f1a6c0e4'
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', SEQ, nullable=True))
    op.execute(
        "UPDATE notifications SET seq = numbered.n FROM ("
        " SELECT id, row_number() OVER (PARTITION BY user_id ORDER BY id) AS n"
        " FROM notifications) AS numbered WHERE numbered.id = notifications.id")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=SEQ, nullable=False)
        batch_op.create_index('ix_notifications_user_id_seq', ['user_id', 'seq'], unique=True)


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_id_seq')
        batch_op.drop_column('seq')
