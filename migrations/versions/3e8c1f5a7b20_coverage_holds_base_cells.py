"""coverage holds base cells: the matching index stores each provider's base grid-cell
centre, not the base

Revision ID: 3e8c1f5a7b20
Revises: e7a3c1d9f2b5
Create Date: 2026-12-02 07:30:00.000000

Matching now decides on the grid cells of both sides (marketplace.geo.in_reach), so an outsider
who watches what matches learns cells, never points. provider_coverage is derived from
providers; its lat, lon and lat_row are rewritten here from each provider's base with the same
formulas as marketplace.geo (copied: migrations must not change when the code does). The
schema does not change. Downgrading writes the true bases back.
"""
import math

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '3e8c1f5a7b20'
down_revision = 'e7a3c1d9f2b5'
branch_labels = None
depends_on = None

EARTH_RADIUS_KM = 6371.0088
_LAT_STEP = 1.0 / 111.195


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


def _rewrite(place):
    bind = op.get_bind()
    update = sa.text("UPDATE provider_coverage SET lat = :lat, lon = :lon, lat_row = :row "
                     "WHERE provider_id = :id")
    for provider_id, lat, lon in bind.execute(sa.text(
            "SELECT id, base_lat, base_lon FROM providers WHERE id IN "
            "(SELECT provider_id FROM provider_coverage)")).all():
        lat, lon = place(lat, lon)
        bind.execute(update, {"id": provider_id, "lat": lat, "lon": lon,
                              "row": math.floor((lat + 90.0) / 0.1)})


def upgrade():
    _rewrite(_cell_centre)


def downgrade():
    _rewrite(lambda lat, lon: (lat, lon))
