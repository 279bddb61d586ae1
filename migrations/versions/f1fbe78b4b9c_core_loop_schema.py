"""core loop schema

Revision ID: f1fbe78b4b9c
Revises: 
Create Date: 2026-11-22 21:04:14.568116

"""
from alembic import op
import sqlalchemy as sa

import marketplace.db_types


# revision identifiers, used by Alembic.
revision = 'f1fbe78b4b9c'
down_revision = None
branch_labels = None
depends_on = None


CATEGORIES = (
    ("catering", "Catering"),
    ("cleaning", "Cleaning"),
    ("plumbing", "Plumbing"),
    ("electrical", "Electrical"),
    ("handyman", "Handyman"),
    ("moving", "Moving & delivery"),
    ("gardening", "Gardening"),
    ("painting", "Painting & decorating"),
    ("tutoring", "Tutoring"),
    ("childcare", "Childcare"),
    ("petcare", "Pet care"),
    ("photography", "Photography"),
    ("music", "Music & DJs"),
    ("beauty", "Hair & beauty"),
    ("fitness", "Fitness coaching"),
    ("it-support", "IT support"),
    ("car-rental", "Car rental"),
    ("car-repair", "Car repair"),
    ("events", "Event planning"),
    ("tailoring", "Tailoring & repairs"),
)


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    categories = op.create_table('categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_categories')),
    sa.UniqueConstraint('slug', name=op.f('uq_categories_slug'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', marketplace.db_types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.Text(), nullable=True),
    sa.Column('created_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_keys_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('scope', 'key', name='uq_idempotency_keys_scope_key')
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)

    op.create_table('needs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=True),
    sa.Column('address', sa.String(length=300), nullable=True),
    sa.Column('radius_km', sa.Float(), nullable=False),
    sa.Column('budget_amount', sa.BigInteger(), nullable=False),
    sa.Column('budget_currency', sa.String(length=3), nullable=False),
    sa.Column('needed_by', marketplace.db_types.UTCDateTime(), nullable=True),
    sa.Column('expires_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.Column('max_offers', sa.Integer(), nullable=True),
    sa.Column('offer_count', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('open', 'assigned', 'completed', 'cancelled', 'expired', name='needstatus', native_enum=False, length=12), nullable=False),
    sa.Column('accepted_offer_id', sa.Integer(), nullable=True),
    sa.Column('assigned_at', marketplace.db_types.UTCDateTime(), nullable=True),
    sa.Column('completed_at', marketplace.db_types.UTCDateTime(), nullable=True),
    sa.Column('cancelled_at', marketplace.db_types.UTCDateTime(), nullable=True),
    sa.Column('cancelled_by_id', sa.Integer(), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('created_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('budget_amount >= 0', name=op.f('ck_needs_budget_nonnegative')),
    sa.CheckConstraint('lat >= -90 AND lat <= 90', name=op.f('ck_needs_lat_range')),
    sa.CheckConstraint('lon >= -180 AND lon <= 180', name=op.f('ck_needs_lon_range')),
    sa.CheckConstraint('max_offers IS NULL OR max_offers >= 1', name=op.f('ck_needs_max_offers_positive')),
    sa.CheckConstraint('offer_count >= 0', name=op.f('ck_needs_offer_count_nonnegative')),
    # needs <-> offers reference each other: SQLite takes the forward reference inline,
    # other databases get it by ALTER once offers exists (below).
    *([sa.ForeignKeyConstraint(['accepted_offer_id'], ['offers.id'], name=op.f('fk_needs_accepted_offer_id_offers'), ondelete='SET NULL')] if sqlite else []),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['users.id'], name=op.f('fk_needs_cancelled_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_needs_category_id_categories')),
    sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_needs_customer_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_needs'))
    )
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_needs_category_id'), ['category_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_needs_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index('ix_needs_status_expires_at', ['status', 'expires_at'], unique=False)

    op.create_table('providers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('handle', sa.String(length=30), nullable=False),
    sa.Column('display_name', sa.String(length=80), nullable=False),
    sa.Column('bio', sa.String(length=2000), nullable=False),
    sa.Column('base_lat', sa.Float(), nullable=False),
    sa.Column('base_lon', sa.Float(), nullable=False),
    sa.Column('radius_km', sa.Float(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('base_lat >= -90 AND base_lat <= 90', name=op.f('ck_providers_lat_range')),
    sa.CheckConstraint('base_lon >= -180 AND base_lon <= 180', name=op.f('ck_providers_lon_range')),
    sa.CheckConstraint('radius_km >= 1 AND radius_km <= 100', name=op.f('ck_providers_radius_range')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_providers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers')),
    sa.UniqueConstraint('handle', name=op.f('uq_providers_handle')),
    sa.UniqueConstraint('user_id', name=op.f('uq_providers_user_id'))
    )
    op.create_table('offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('need_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('price_amount', sa.BigInteger(), nullable=False),
    sa.Column('price_currency', sa.String(length=3), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('available_at', marketplace.db_types.UTCDateTime(), nullable=True),
    sa.Column('status', sa.Enum('pending', 'accepted', 'declined', 'withdrawn', name='offerstatus', native_enum=False, length=12), nullable=False),
    sa.Column('created_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('price_amount >= 0', name=op.f('ck_offers_price_nonnegative')),
    sa.ForeignKeyConstraint(['need_id'], ['needs.id'], name=op.f('fk_offers_need_id_needs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_offers_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offers')),
    sa.UniqueConstraint('need_id', 'provider_id', name='uq_offers_need_provider')
    )
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offers_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index('uq_offers_one_accepted_per_need', ['need_id'], unique=True, sqlite_where=sa.text("status = 'accepted'"), postgresql_where=sa.text("status = 'accepted'"))
    if not sqlite:
        op.create_foreign_key(op.f('fk_needs_accepted_offer_id_offers'), 'needs', 'offers', ['accepted_offer_id'], ['id'], ondelete='SET NULL')

    op.create_table('provider_categories',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_provider_categories_category_id_categories'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_provider_categories_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', 'category_id', name=op.f('pk_provider_categories'))
    )
    with op.batch_alter_table('provider_categories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_categories_category_id'), ['category_id'], unique=False)

    op.create_table('ratings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('need_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('stars', sa.SmallInteger(), nullable=False),
    sa.Column('quality', sa.SmallInteger(), nullable=True),
    sa.Column('punctuality', sa.SmallInteger(), nullable=True),
    sa.Column('communication', sa.SmallInteger(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('reply', sa.String(length=2000), nullable=True),
    sa.Column('replied_at', marketplace.db_types.UTCDateTime(), nullable=True),
    sa.Column('created_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.CheckConstraint('communication IS NULL OR communication BETWEEN 1 AND 5', name=op.f('ck_ratings_communication_range')),
    sa.CheckConstraint('punctuality IS NULL OR punctuality BETWEEN 1 AND 5', name=op.f('ck_ratings_punctuality_range')),
    sa.CheckConstraint('quality IS NULL OR quality BETWEEN 1 AND 5', name=op.f('ck_ratings_quality_range')),
    sa.CheckConstraint('stars BETWEEN 1 AND 5', name=op.f('ck_ratings_stars_range')),
    sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_ratings_customer_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['need_id'], ['needs.id'], name=op.f('fk_ratings_need_id_needs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_ratings_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ratings')),
    sa.UniqueConstraint('need_id', name=op.f('uq_ratings_need_id'))
    )
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ratings_provider_id'), ['provider_id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), nullable=False),
    sa.Column('sender_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['offer_id'], ['offers.id'], name=op.f('fk_messages_offer_id_offers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sender_id'], ['users.id'], name=op.f('fk_messages_sender_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_offer_id_id', ['offer_id', 'id'], unique=False)

    op.bulk_insert(categories, [{"slug": slug, "name": name} for slug, name in CATEGORIES])


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f('fk_needs_accepted_offer_id_offers'), 'needs', type_='foreignkey')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_offer_id_id')

    op.drop_table('messages')
    with op.batch_alter_table('ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ratings_provider_id'))

    op.drop_table('ratings')
    with op.batch_alter_table('provider_categories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_categories_category_id'))

    op.drop_table('provider_categories')
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_index('uq_offers_one_accepted_per_need', sqlite_where=sa.text("status = 'accepted'"), postgresql_where=sa.text("status = 'accepted'"))
        batch_op.drop_index(batch_op.f('ix_offers_provider_id'))

    op.drop_table('offers')
    op.drop_table('providers')
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.drop_index('ix_needs_status_expires_at')
        batch_op.drop_index(batch_op.f('ix_needs_customer_id'))
        batch_op.drop_index(batch_op.f('ix_needs_category_id'))

    op.drop_table('needs')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))

    op.drop_table('idempotency_keys')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('categories')
