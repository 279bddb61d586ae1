"""Great-circle distance, the ~1 km privacy grid and coarse distance bands.

Two grades of distance: matching uses the haversine formula on the mean sphere (about half a
microsecond; it runs for every candidate of every need), while what people are shown -- the
distance bands -- follows the WGS-84 geodesic (geopy), which is about a hundred times dearer.
Haversine is never off by more than ~0.56%, so the geodesic is only computed when a distance
lies that close to a band's edge; everywhere else both give the same band.

Privacy rule: before acceptance nobody sees a need's true point. They see the centre of a
fixed grid cell (deterministic, so repeated looks reveal nothing new) and a distance band
computed from that centre, never from the true point (so trilateration has nothing to use).
The same holds for every decision an outsider can watch -- whether a need matches, is
visible, is in a feed, how many providers a need would reach: ``in_reach`` decides on the
cells of both sides, so sweeping one's own base and radius finds a cell, never a point.
Matching is thereby off from the true distance by at most each cell's half-diagonal.
"""

from __future__ import annotations

import bisect
import math
from functools import lru_cache
from typing import NamedTuple

from geopy.distance import geodesic

EARTH_RADIUS_KM = 6371.0088
CELL_KM = 1.0
_LAT_STEP = CELL_KM / 111.195  # degrees of latitude per cell row (~1 km)


class Point(NamedTuple):
    lat: float
    lon: float


def haversine_km(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    """Great-circle distance on a spherical Earth; fast and within 0.5% of geodesic."""
    p1, p2 = math.radians(a_lat), math.radians(b_lat)
    dp = p2 - p1
    dl = math.radians(b_lon - a_lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def in_reach(provider_cell: Point, provider_radius_km: float,
             need_cell: Point, need_radius_km: float) -> bool:
    """The matching rule's distance part, the one definition every matching decision uses
    (the spatial query and so notifications and the reach preview, a need's visibility, the
    feed): each radius covers the other, measured between the *grid-cell centres* of the
    provider's base and of the need (``grid_cell_centre`` of each; pass cells, never true
    points).

    Deciding on the cells is what makes the decision safe to show: an outsider who moves
    their own base and radius (in any number of requests and accounts) and watches whether a
    need is visible learns where its cell is and nothing finer, and a customer probing the
    reach preview learns providers' cells, not their bases. The price is that matching is off
    from the true distance by at most the two cells' half-diagonals (``CELL_SLACK_KM`` each,
    under ~0.9 km in practice): a need just outside a radius may match, one just inside may not.
    """
    km = haversine_km(provider_cell.lat, provider_cell.lon, need_cell.lat, need_cell.lon)
    return km <= provider_radius_km and km <= need_radius_km


@lru_cache(maxsize=65536)  # a pure function, asked ~8 times per need a page shows
def grid_cell_centre(lat: float, lon: float) -> Point:
    """Centre of the ~1 km cell holding (lat, lon).

    Rows are fixed bands of latitude; each row is split into equal-longitude columns whose
    count depends on the row alone, so every cell is about 1 km wide and the mapping is a pure
    function of the point.
    """
    row = math.floor((lat + 90.0) / _LAT_STEP)
    rows = math.ceil(180.0 / _LAT_STEP)
    row = min(max(row, 0), rows - 1)
    centre_lat = -90.0 + (row + 0.5) * _LAT_STEP
    centre_lat = min(max(centre_lat, -90.0), 90.0)
    circumference = 2 * math.pi * EARTH_RADIUS_KM * math.cos(math.radians(centre_lat))
    columns = max(1, math.floor(circumference / CELL_KM))
    lon_step = 360.0 / columns
    column = math.floor(((lon + 180.0) % 360.0) / lon_step)
    column = min(column, columns - 1)
    centre_lon = -180.0 + (column + 0.5) * lon_step
    return Point(round(centre_lat, 5), round(centre_lon, 5))


# (upper bound in km, label); the last band is open-ended.
DISTANCE_BANDS: tuple[tuple[float, str], ...] = (
    (2.0, "under 2 km"),
    (5.0, "2-5 km"),
    (10.0, "5-10 km"),
    (25.0, "10-25 km"),
    (50.0, "25-50 km"),
    (100.0, "50-100 km"),
    (math.inf, "over 100 km"),
)


def distance_band(km: float) -> str:
    """The coarse label for a distance (bands are wider than a grid cell on purpose)."""
    for upper, label in DISTANCE_BANDS:
        if km < upper:
            return label
    return DISTANCE_BANDS[-1][1]


def band_index(km: float) -> int:
    """Position of ``km``'s band, for sorting nearest band first."""
    for index, (upper, _label) in enumerate(DISTANCE_BANDS):
        if km < upper:
            return index
    return len(DISTANCE_BANDS) - 1


# Largest relative difference between haversine on the mean sphere and the WGS-84 geodesic:
# 0.5614% (north-south at the equator, where the meridian's radius of curvature is 6,335 km);
# a distance within this margin of a band edge is settled by the geodesic.
SPHERE_MARGIN = 0.007
_EDGES = tuple(upper for upper, _label in DISTANCE_BANDS[:-1])


def display_km(a: Point, b: Point) -> float:
    """Display-grade distance: the WGS-84 geodesic wherever it could change the band shown,
    the haversine distance (within 0.57% of it) everywhere else."""
    km = haversine_km(a.lat, a.lon, b.lat, b.lon)
    i = bisect.bisect_left(_EDGES, km)  # the nearest edges are _EDGES[i - 1] and _EDGES[i]
    if ((i < len(_EDGES) and _EDGES[i] - km <= _EDGES[i] * SPHERE_MARGIN)
            or (i > 0 and km - _EDGES[i - 1] <= _EDGES[i - 1] * SPHERE_MARGIN)):
        return _geodesic_km(a.lat, a.lon, b.lat, b.lon)
    return km


@lru_cache(maxsize=65536)
def _geodesic_km(alat: float, alon: float, blat: float, blon: float) -> float:
    """The WGS-84 geodesic (geographiclib's iterative solution, ~50 us a call), kept: callers
    pass grid-cell centres, so the same pairs come back page after page."""
    return float(geodesic((alat, alon), (blat, blon)).km)


# A point is never farther than this from the centre of its grid cell (cells are ~1 km; the
# widest, next to the poles, are under 2 km across).
CELL_SLACK_KM = 1.5


class UnitVector(NamedTuple):
    x: float
    y: float
    z: float


def unit_vector(lat: float, lon: float) -> UnitVector:
    """The point on the unit sphere. The dot product of two such vectors is the cosine of the
    angle between the points, so SQL can compare great-circle distances with products and
    sums alone (``1 - dot`` is twice the haversine term), without any trigonometry."""
    phi, lam = math.radians(lat), math.radians(lon)
    return UnitVector(math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam),
                      math.sin(phi))


def km_cos(km: float) -> float:
    """The dot product of the unit vectors of two points ``km`` apart (-1 beyond half the
    globe): a distance of at most ``km`` is a dot product of at least this."""
    return math.cos(min(km / EARTH_RADIUS_KM, math.pi))


def cell_distance_km(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    """Distance between the grid cells of two points: what every distance band shown before
    acceptance is computed from, so moving one side around reveals nothing finer than a cell."""
    return display_km(grid_cell_centre(a_lat, a_lon), grid_cell_centre(b_lat, b_lon))
