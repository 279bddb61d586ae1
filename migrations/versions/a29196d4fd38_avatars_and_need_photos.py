"""uploaded images: media_blobs (re-encoded images keyed by their SHA-256), avatars (one per
person) and need_photos (a need's photos)

Revision ID: a29196d4fd38
Revises: d7bd2a89c0b8
Create Date: 2026-12-02 19:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

from marketplace.db_types import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'a29196d4fd38'
down_revision = 'd7bd2a89c0b8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'media_blobs',
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('content_type', sa.String(length=32), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('digest', name=op.f('pk_media_blobs')),
    )
    op.create_table(
        'avatars',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('small_digest', sa.String(length=64), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['digest'], ['media_blobs.digest'],
                                name=op.f('fk_avatars_digest_media_blobs')),
        sa.ForeignKeyConstraint(['small_digest'], ['media_blobs.digest'],
                                name=op.f('fk_avatars_small_digest_media_blobs')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name=op.f('fk_avatars_user_id_users')),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_avatars')),
    )
    op.create_index(op.f('ix_avatars_digest'), 'avatars', ['digest'])
    op.create_index(op.f('ix_avatars_small_digest'), 'avatars', ['small_digest'])
    op.create_table(
        'need_photos',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('need_id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('small_digest', sa.String(length=64), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['digest'], ['media_blobs.digest'],
                                name=op.f('fk_need_photos_digest_media_blobs')),
        sa.ForeignKeyConstraint(['small_digest'], ['media_blobs.digest'],
                                name=op.f('fk_need_photos_small_digest_media_blobs')),
        sa.ForeignKeyConstraint(['need_id'], ['needs.id'], ondelete='CASCADE',
                                name=op.f('fk_need_photos_need_id_needs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_need_photos')),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_need_photos_need_id_id', 'need_photos', ['need_id', 'id'])
    op.create_index(op.f('ix_need_photos_digest'), 'need_photos', ['digest'])
    op.create_index(op.f('ix_need_photos_small_digest'), 'need_photos', ['small_digest'])


def downgrade():
    op.drop_table('need_photos')
    op.drop_table('avatars')
    op.drop_table('media_blobs')
