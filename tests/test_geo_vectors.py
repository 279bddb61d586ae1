"""The arithmetic the feed's SQL relies on: unit-vector dot products order distances exactly as
haversine does, and a point is never farther than CELL_SLACK_KM from its grid-cell centre."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.geo import (
    CELL_SLACK_KM,
    grid_cell_centre,
    haversine_km,
    km_cos,
    unit_vector,
)
from marketplace.needs.feed import DOT_EPSILON

lats = st.one_of(st.floats(-90, 90), st.floats(89.5, 90), st.floats(-90, -89.5))
lons = st.floats(-180, 180)


@settings(max_examples=3000, deadline=None)
@given(lat=lats, lon=lons)
def test_a_point_lies_within_the_slack_of_its_cell_centre(lat: float, lon: float) -> None:
    centre = grid_cell_centre(lat, lon)
    assert haversine_km(lat, lon, centre.lat, centre.lon) <= CELL_SLACK_KM


def dot(a: tuple[float, float], b: tuple[float, float]) -> float:
    u, v = unit_vector(*a), unit_vector(*b)
    return u.x * v.x + u.y * v.y + u.z * v.z


near = st.tuples(lats, lons, st.floats(0, 200), st.floats(0, 360))


@settings(max_examples=5000, deadline=None)
@given(a=near, slack=st.floats(-1e-3, 1e-3))
def test_the_dot_product_test_keeps_every_pair_haversine_keeps(
        a: tuple[float, float, float, float], slack: float) -> None:
    """``dot >= km_cos(km) - DOT_EPSILON`` holds for every pair whose haversine distance is
    at most ``km`` — right at the limit too — so the SQL prefilter never drops one."""
    from test_feed import offset

    lat, lon, km, bearing = a
    b = offset(km, bearing, origin=(lat, lon))
    distance = haversine_km(lat, lon, *b)
    limit = max(0.0, distance + slack)
    if distance <= limit:
        assert dot((lat, lon), b) >= km_cos(limit) - DOT_EPSILON, (distance, limit)
