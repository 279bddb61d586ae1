"""ratings.near_row and near_col: the fixed 0.1-degree tile of the rated job's need, so "people
near you" reads the ratings index alone (no join to needs, which PostgreSQL answered with a
scan of every need); ix_ratings_provider_customer covers them; filled from the needs (none
for a rating whose customer was erased)

Revision ID: e4b9c2d7f1a6
Revises: d8f3a1c6e2b9
Create Date: 2026-12-03 06:40:00.000000
"""
import math

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e4b9c2d7f1a6'
down_revision = 'd8f3a1c6e2b9'
branch_labels = None
depends_on = None

NEAR_TILE_DEG = 0.1  # as ratings.models.NEAR_TILE_DEG was when this ran
OLD_INDEX = ['provider_id', 'customer_id', 'stars', 'id', 'need_id', 'hidden_at']


def upgrade():
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('near_row', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('near_col', sa.Integer(), nullable=True))
        batch_op.drop_index('ix_ratings_provider_customer')
        batch_op.create_index('ix_ratings_provider_customer', [*OLD_INDEX, 'near_row', 'near_col'],
                              unique=False)
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT r.id, n.lat, n.lon FROM ratings r JOIN needs n ON n.id = r.need_id "
        "WHERE r.customer_id IS NOT NULL")).all()
    if rows:
        bind.execute(sa.text("UPDATE ratings SET near_row = :row, near_col = :col WHERE id = :id"),
                     [{"id": rid, "row": math.floor(lat / NEAR_TILE_DEG),
                       "col": math.floor(lon / NEAR_TILE_DEG)} for rid, lat, lon in rows])


def downgrade():
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.drop_index('ix_ratings_provider_customer')
        batch_op.create_index('ix_ratings_provider_customer', OLD_INDEX, unique=False)
        batch_op.drop_column('near_col')
        batch_op.drop_column('near_row')
