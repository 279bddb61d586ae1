"""trend_groups: how many distinct customers each trend tile's tag has over the kept hours
(trends read only the hits of groups that can reach the k floor), and the index that seeks one
tile's tag over a range of hours (ix_trend_hits_group); filled from trend_hits

Revision ID: b7e2c4d9a1f3
Revises: b3c4d5e6f7a8
Create Date: 2026-12-03 00:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7e2c4d9a1f3'
down_revision = 'b3c4d5e6f7a8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'trend_groups',
        sa.Column('cell_row', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('cell_col', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('tag', sa.String(length=40), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('cell_row', 'cell_col', 'kind', 'tag',
                                name=op.f('pk_trend_groups')),
    )
    op.create_index('ix_trend_hits_group', 'trend_hits',
                    ['cell_row', 'cell_col', 'kind', 'tag', 'hour', 'customer_id', 'needs'],
                    unique=False)
    op.execute(
        "INSERT INTO trend_groups (cell_row, cell_col, kind, tag, customers) "
        "SELECT cell_row, cell_col, kind, tag, count(DISTINCT customer_id) FROM trend_hits "
        "GROUP BY cell_row, cell_col, kind, tag")


def downgrade():
    op.drop_index('ix_trend_hits_group', table_name='trend_hits')
    op.drop_table('trend_groups')
