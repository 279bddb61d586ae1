"""needs on the unit sphere: the feed filters and ranks by distance band in SQL

Revision ID: 0c6be7a6dc89
Revises: 11ddfbe27cdc
Create Date: 2026-12-02 15:00:00.000000

Each need gets the unit vector of its true point (ux, uy, uz), of its grid cell's centre
(cell_ux, cell_uy, cell_uz) and the cosine of its reach (reach_cos): a dot product of two unit
vectors is the cosine of the angle between the points, so SQL can tell "within r km" and
"which distance band" with products and sums, on SQLite and PostgreSQL alike. Existing needs
are filled in here with the same formulas as marketplace.geo (copied: migrations must not
change when the code does).
"""
import math

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0c6be7a6dc89'
down_revision = '11ddfbe27cdc'
branch_labels = None
depends_on = None

EARTH_RADIUS_KM = 6371.0088
_LAT_STEP = 1.0 / 111.195
COLUMNS = ("ux", "uy", "uz", "cell_ux", "cell_uy", "cell_uz", "reach_cos")


def _cell_centre(lat, lon):
    row = math.floor((lat + 90.0) / _LAT_STEP)
    rows = math.ceil(180.0 / _LAT_STEP)
    row = min(max(row, 0), rows - 1)
    centre_lat = min(max(-90.0 + (row + 0.5) * _LAT_STEP, -90.0), 90.0)
    circumference = 2 * math.pi * EARTH_RADIUS_KM * math.cos(math.radians(centre_lat))
    columns = max(1, math.floor(circumference / 1.0))
    lon_step = 360.0 / columns
    column = min(math.floor(((lon + 180.0) % 360.0) / lon_step), columns - 1)
    return round(centre_lat, 5), round(-180.0 + (column + 0.5) * lon_step, 5)


def _unit(lat, lon):
    phi, lam = math.radians(lat), math.radians(lon)
    return math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)


def upgrade():
    with op.batch_alter_table('needs') as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Float(), nullable=True))
    bind = op.get_bind()
    update = sa.text("UPDATE needs SET ux = :ux, uy = :uy, uz = :uz, cell_ux = :cx, "
                     "cell_uy = :cy, cell_uz = :cz, reach_cos = :rc WHERE id = :id")
    for need_id, lat, lon, radius in bind.execute(
            sa.text("SELECT id, lat, lon, radius_km FROM needs")).all():
        ux, uy, uz = _unit(lat, lon)
        cx, cy, cz = _unit(*_cell_centre(lat, lon))
        bind.execute(update, {"id": need_id, "ux": ux, "uy": uy, "uz": uz, "cx": cx, "cy": cy,
                              "cz": cz, "rc": math.cos(min(radius / EARTH_RADIUS_KM, math.pi))})
    with op.batch_alter_table('needs') as batch_op:
        for name in COLUMNS:
            batch_op.alter_column(name, existing_type=sa.Float(), nullable=False)


def downgrade():
    with op.batch_alter_table('needs') as batch_op:
        for name in COLUMNS:
            batch_op.drop_column(name)
