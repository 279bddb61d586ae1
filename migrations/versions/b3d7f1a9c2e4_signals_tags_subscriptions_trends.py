"""signals: each need's ?intent/#topic/@mention tags (need_tags), providers' tag subscriptions
(provider_tags) and their spatial index (provider_tag_coverage), direct asks
(providers.direct_asks), why a need went to a recipient (need_recipients.via) and the trend
counters (trend_hits)

Revision ID: b3d7f1a9c2e4
Revises: a1c5e9d3f7b2
Create Date: 2026-12-02 10:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b3d7f1a9c2e4'
down_revision = 'd3e5a7c9b1f4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('need_tags',
    sa.Column('need_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('tag', sa.String(length=40), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.ForeignKeyConstraint(['need_id'], ['needs.id'], name=op.f('fk_need_tags_need_id_needs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('need_id', 'kind', 'tag', name=op.f('pk_need_tags'))
    )
    with op.batch_alter_table('need_tags', schema=None) as batch_op:
        batch_op.create_index('ix_need_tags_kind_tag', ['kind', 'tag'], unique=False)

    op.create_table('provider_tags',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('tag', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_provider_tags_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', 'kind', 'tag', name=op.f('pk_provider_tags'))
    )

    op.create_table('provider_tag_coverage',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('tag', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('lat_row', sa.Integer(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('radius_km', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_provider_tag_coverage_provider_id_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_provider_tag_coverage_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', 'kind', 'tag', name=op.f('pk_provider_tag_coverage'))
    )
    with op.batch_alter_table('provider_tag_coverage', schema=None) as batch_op:
        batch_op.create_index('ix_provider_tag_coverage_lookup', ['kind', 'tag', 'lat_row', 'lon', 'lat', 'radius_km', 'provider_id', 'user_id'], unique=False)

    op.create_table('trend_hits',
    sa.Column('cell_row', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('cell_col', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('hour', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('tag', sa.String(length=40), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('needs', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_trend_hits_customer_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('cell_row', 'cell_col', 'hour', 'kind', 'tag', 'customer_id', name=op.f('pk_trend_hits'), postgresql_include=['needs']),
    sqlite_with_rowid=False
    )
    with op.batch_alter_table('trend_hits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_trend_hits_customer_id'), ['customer_id'], unique=False)

    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('direct_asks', sa.Boolean(), server_default=sa.true(), nullable=False))

    with op.batch_alter_table('need_recipients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('via', sa.String(length=12), server_default='favourite', nullable=False))


def downgrade():
    with op.batch_alter_table('need_recipients', schema=None) as batch_op:
        batch_op.drop_column('via')

    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.drop_column('direct_asks')

    with op.batch_alter_table('trend_hits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_trend_hits_customer_id'))
    op.drop_table('trend_hits')

    with op.batch_alter_table('provider_tag_coverage', schema=None) as batch_op:
        batch_op.drop_index('ix_provider_tag_coverage_lookup')
    op.drop_table('provider_tag_coverage')

    op.drop_table('provider_tags')

    with op.batch_alter_table('need_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_need_tags_kind_tag')
    op.drop_table('need_tags')
