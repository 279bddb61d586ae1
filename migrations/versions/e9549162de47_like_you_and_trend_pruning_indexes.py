"""indexes for "people like you" and for pruning trends: ratings by customer (a viewer's
ratings and the customers who rated the same providers, with their stars) and trend counters
by hour (prune-trends deletes the old hours)

Revision ID: e9549162de47
Revises: 3b6b6b78dc13
Create Date: 2026-12-02 19:20:00.000000
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e9549162de47'
down_revision = '3b6b6b78dc13'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_ratings_customer_provider', 'ratings',
                    ['customer_id', 'provider_id', 'stars', 'id', 'hidden_at'], unique=False)
    op.create_index('ix_ratings_provider_customer', 'ratings',
                    ['provider_id', 'customer_id', 'stars', 'id', 'need_id', 'hidden_at'],
                    unique=False)
    op.create_index('ix_trend_hits_hour', 'trend_hits', ['hour'], unique=False)


def downgrade():
    op.drop_index('ix_trend_hits_hour', table_name='trend_hits')
    op.drop_index('ix_ratings_provider_customer', table_name='ratings')
    op.drop_index('ix_ratings_customer_provider', table_name='ratings')
