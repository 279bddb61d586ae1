"""Index-friendly search regions: which latitude rows and longitude ranges can hold a point
within ``radius_km`` of a centre. Conservative by a hair; the exact great-circle check decides.

Bounding coordinates follow J. P. Matuschek, "Finding Points Within a Distance of a
Latitude/Longitude Using Bounding Coordinates": on a sphere the widest longitude offset of a
cap of angular radius r around latitude phi is asin(sin r / cos phi); a cap containing a pole
spans every longitude; ranges crossing the antimeridian are split in two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from marketplace.geo.core import EARTH_RADIUS_KM

ROW_DEG = 0.1  # height of an index row (~11 km)
_MARGIN_DEG = 1e-6


def lat_row(lat: float) -> int:
    """The index row of a latitude; rows are fixed 0.1 degree bands from the south pole."""
    return math.floor((lat + 90.0) / ROW_DEG)


@dataclass(frozen=True)
class SearchBox:
    rows: tuple[int, ...]
    lon_ranges: tuple[tuple[float, float], ...]


def search_box(lat: float, lon: float, radius_km: float) -> SearchBox:
    angular = radius_km / EARTH_RADIUS_KM
    dlat = math.degrees(angular) + _MARGIN_DEG
    lat_lo, lat_hi = lat - dlat, lat + dlat
    rows = tuple(range(lat_row(max(lat_lo, -90.0)), lat_row(min(lat_hi, 90.0)) + 1))
    if lat_lo <= -90.0 or lat_hi >= 90.0:
        return SearchBox(rows, ((-180.0, 180.0),))
    ratio = math.sin(angular) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return SearchBox(rows, ((-180.0, 180.0),))
    dlon = math.degrees(math.asin(ratio)) + _MARGIN_DEG
    lo, hi = lon - dlon, lon + dlon
    if lo < -180.0:
        return SearchBox(rows, ((lo + 360.0, 180.0), (-180.0, hi)))
    if hi > 180.0:
        return SearchBox(rows, ((lo, 180.0), (-180.0, hi - 360.0)))
    return SearchBox(rows, ((lo, hi),))
