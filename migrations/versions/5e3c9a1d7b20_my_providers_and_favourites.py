"""my providers and favourites: the customer's private record of each provider they dealt
with (provider_contacts), needs sent to favourites only (needs.audience) and their recipients
(need_recipients)

Revision ID: 5e3c9a1d7b20
Revises: 6e4423366b60
Create Date: 2026-12-02 06:55:00.000000

"""
from alembic import op
import sqlalchemy as sa

import marketplace.db_types


# revision identifiers, used by Alembic.
revision = '5e3c9a1d7b20'
down_revision = "6e4423366b60"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('provider_contacts',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('would_hire_again', sa.Boolean(), nullable=True),
    sa.Column('favourite', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', marketplace.db_types.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['users.id'], name=op.f('fk_provider_contacts_customer_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_provider_contacts_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'provider_id', name=op.f('pk_provider_contacts'))
    )
    with op.batch_alter_table('provider_contacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_contacts_provider_id'), ['provider_id'], unique=False)

    op.create_table('need_recipients',
    sa.Column('need_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['need_id'], ['needs.id'], name=op.f('fk_need_recipients_need_id_needs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_need_recipients_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('need_id', 'provider_id', name=op.f('pk_need_recipients'))
    )
    with op.batch_alter_table('need_recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_need_recipients_provider_id'), ['provider_id'], unique=False)

    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience', sa.Enum(
            'nearby', 'favourites', name='audience', native_enum=False, length=12,
            create_constraint=False), server_default='nearby', nullable=False))


def downgrade():
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.drop_column('audience')

    with op.batch_alter_table('need_recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_need_recipients_provider_id'))
    op.drop_table('need_recipients')

    with op.batch_alter_table('provider_contacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_contacts_provider_id'))
    op.drop_table('provider_contacts')
