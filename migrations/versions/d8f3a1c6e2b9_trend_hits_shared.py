"""trend groups by id: trend_groups.id (the tile-tag's surrogate key), trend_hits.group_id
naming it and trend_hits.shared (its group has two customers or more); the trends query reads
the shared hits of the area by ix_trend_hits_shared and groups them by integer id, in place of
joining trend_groups on text keys (ix_trend_hits_group goes); filled from the rows there are

Revision ID: d8f3a1c6e2b9
Revises: c5d1e8f2a7b4
Create Date: 2026-12-03 06:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd8f3a1c6e2b9'
down_revision = 'c5d1e8f2a7b4'
branch_labels = None
depends_on = None

HIT_COLUMNS = "cell_row, cell_col, hour, kind, tag, customer_id, needs"


def _groups_table(name, with_id):
    columns = [sa.Column('id', sa.Integer(), nullable=False)] if with_id else []
    columns += [
        sa.Column('cell_row', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('cell_col', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('tag', sa.String(length=40), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False),
    ]
    if with_id:
        keys = [sa.PrimaryKeyConstraint('id', name='pk_trend_groups'),
                sa.UniqueConstraint('cell_row', 'cell_col', 'kind', 'tag',
                                    name='uq_trend_groups_tile_tag')]
    else:
        keys = [sa.PrimaryKeyConstraint('cell_row', 'cell_col', 'kind', 'tag',
                                        name='pk_trend_groups')]
    op.create_table(name, *columns, *keys,
                    **({'sqlite_autoincrement': True} if with_id else {}))


def _hits_table(name, with_group):
    columns = [
        sa.Column('cell_row', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('cell_col', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('hour', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('tag', sa.String(length=40), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('needs', sa.Integer(), nullable=False),
    ]
    keys = [sa.ForeignKeyConstraint(['customer_id'], ['users.id'],
                                    name='fk_trend_hits_customer_id_users', ondelete='CASCADE')]
    if with_group:
        columns += [sa.Column('group_id', sa.Integer(), nullable=False),
                    sa.Column('shared', sa.Boolean(), server_default=sa.false(),
                              nullable=False)]
        keys.append(sa.ForeignKeyConstraint(['group_id'], ['trend_groups.id'],
                                            name='fk_trend_hits_group_id_trend_groups',
                                            ondelete='CASCADE'))
    keys.append(sa.PrimaryKeyConstraint('cell_row', 'cell_col', 'hour', 'kind', 'tag',
                                        'customer_id', name='pk_trend_hits',
                                        postgresql_include=['needs']))
    op.create_table(name, *columns, *keys, sqlite_with_rowid=False)


def _hit_indexes(with_group):
    op.create_index('ix_trend_hits_customer_id', 'trend_hits', ['customer_id'], unique=False)
    op.create_index('ix_trend_hits_hour', 'trend_hits', ['hour'], unique=False)
    if with_group:
        op.create_index('ix_trend_hits_shared', 'trend_hits',
                        ['cell_row', 'cell_col', 'hour', 'group_id', 'customer_id', 'needs'],
                        unique=False, postgresql_where=sa.text('shared'),
                        sqlite_where=sa.text('shared = 1'))
        op.create_index('ix_trend_hits_group_id', 'trend_hits', ['group_id', 'customer_id'],
                        unique=False)
    else:
        op.create_index('ix_trend_hits_group', 'trend_hits',
                        ['cell_row', 'cell_col', 'kind', 'tag', 'hour', 'customer_id', 'needs'],
                        unique=False)


def _set_aside(postgresql_renames):
    """Rename both tables to *_old, with the names of their keys and indexes freed for the new
    tables (PostgreSQL names them per schema)."""
    for table in ('trend_hits', 'trend_groups'):
        op.rename_table(table, f'{table}_old')
    if op.get_bind().dialect.name == 'postgresql':
        for statement in postgresql_renames:
            op.execute(statement)


def upgrade():
    # New tables in place of the old, filled from them: both tables change their keys, and
    # SQLite can do that only by copying (trend_hits is WITHOUT ROWID).
    for index in ('ix_trend_hits_customer_id', 'ix_trend_hits_hour', 'ix_trend_hits_group'):
        op.drop_index(index, table_name='trend_hits')
    _set_aside([
        "ALTER TABLE trend_hits_old RENAME CONSTRAINT pk_trend_hits TO pk_trend_hits_old",
        "ALTER TABLE trend_hits_old DROP CONSTRAINT fk_trend_hits_customer_id_users",
        "ALTER TABLE trend_groups_old RENAME CONSTRAINT pk_trend_groups TO pk_trend_groups_old",
    ])
    _groups_table('trend_groups', with_id=True)
    op.execute("INSERT INTO trend_groups (cell_row, cell_col, kind, tag, customers) "
               "SELECT cell_row, cell_col, kind, tag, customers FROM trend_groups_old "
               "ORDER BY cell_row, cell_col, kind, tag")
    _hits_table('trend_hits', with_group=True)
    op.execute(f"INSERT INTO trend_hits ({HIT_COLUMNS}, group_id, shared) "
               "SELECT h.cell_row, h.cell_col, h.hour, h.kind, h.tag, h.customer_id, h.needs, "
               "g.id, g.customers >= 2 FROM trend_hits_old h JOIN trend_groups g "
               "ON g.cell_row = h.cell_row AND g.cell_col = h.cell_col AND g.kind = h.kind "
               "AND g.tag = h.tag")
    op.drop_table('trend_hits_old')
    op.drop_table('trend_groups_old')
    _hit_indexes(with_group=True)


def downgrade():
    for index in ('ix_trend_hits_customer_id', 'ix_trend_hits_hour', 'ix_trend_hits_shared',
                  'ix_trend_hits_group_id'):
        op.drop_index(index, table_name='trend_hits')
    _set_aside([
        "ALTER TABLE trend_hits_old RENAME CONSTRAINT pk_trend_hits TO pk_trend_hits_old",
        "ALTER TABLE trend_hits_old DROP CONSTRAINT fk_trend_hits_customer_id_users",
        "ALTER TABLE trend_hits_old DROP CONSTRAINT fk_trend_hits_group_id_trend_groups",
        "ALTER TABLE trend_groups_old RENAME CONSTRAINT pk_trend_groups TO pk_trend_groups_old",
        "ALTER TABLE trend_groups_old RENAME CONSTRAINT uq_trend_groups_tile_tag "
        "TO uq_trend_groups_tile_tag_old",
    ])
    _groups_table('trend_groups', with_id=False)
    op.execute("INSERT INTO trend_groups (cell_row, cell_col, kind, tag, customers) "
               "SELECT cell_row, cell_col, kind, tag, customers FROM trend_groups_old")
    _hits_table('trend_hits', with_group=False)
    op.execute(f"INSERT INTO trend_hits ({HIT_COLUMNS}) SELECT {HIT_COLUMNS} FROM trend_hits_old")
    op.drop_table('trend_hits_old')
    op.drop_table('trend_groups_old')
    _hit_indexes(with_group=False)
