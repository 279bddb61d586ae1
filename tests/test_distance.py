"""Two grades of distance: haversine decides matching; the bands people are shown follow the
WGS-84 geodesic (geopy), computed only where it could change the band."""

from __future__ import annotations

import pytest
from geopy.distance import geodesic
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.geo import DISTANCE_BANDS, Point, display_km, distance_band, haversine_km
from marketplace.geo.core import SPHERE_MARGIN

EDGES = [upper for upper, _label in DISTANCE_BANDS[:-1]]
latitudes = st.floats(-89.5, 89.5)
longitudes = st.floats(-180.0, 180.0)


def towards(origin: Point, bearing: float, km: float) -> Point:
    """The point ``km`` away along the WGS-84 geodesic."""
    p = geodesic(kilometers=km).destination((origin.lat, origin.lon), bearing)
    return Point(p.latitude, p.longitude)


def geodesic_km(a: Point, b: Point) -> float:
    return float(geodesic((a.lat, a.lon), (b.lat, b.lon)).km)


@settings(max_examples=1500, deadline=None)
@given(lat=latitudes, lon=longitudes, bearing=st.floats(0, 360),
       edge=st.sampled_from(EDGES), offset=st.floats(-0.01, 0.01))
def test_the_band_shown_is_the_geodesic_band_even_right_at_an_edge(
        lat: float, lon: float, bearing: float, edge: float, offset: float) -> None:
    a = Point(lat, lon)
    b = towards(a, bearing, edge * (1 + offset))
    assert distance_band(display_km(a, b)) == distance_band(geodesic_km(a, b))


@settings(max_examples=1500, deadline=None)
@given(lat=latitudes, lon=longitudes, bearing=st.floats(0, 360), km=st.floats(0.0, 300.0))
def test_any_distance_gets_its_geodesic_band_and_stays_within_the_sphere_margin(
        lat: float, lon: float, bearing: float, km: float) -> None:
    a = Point(lat, lon)
    b = towards(a, bearing, km)
    exact = geodesic_km(a, b)
    shown = display_km(a, b)
    assert distance_band(shown) == distance_band(exact)
    assert abs(shown - exact) <= max(exact * SPHERE_MARGIN, 1e-9)
    # the margin really covers the sphere's error, so a band away from every edge is certain
    assert abs(haversine_km(a.lat, a.lon, b.lat, b.lon) - exact) <= max(exact * 0.0057, 1e-9)


@pytest.mark.parametrize("edge", EDGES)
def test_near_an_edge_haversine_alone_would_show_the_wrong_band(edge: float) -> None:
    """North-south at the equator the sphere is ~0.56% long: just inside an edge by the
    geodesic is just outside it by haversine. The band shown follows the geodesic."""
    a = Point(0.0, 10.0)
    b = towards(a, 0.0, edge * 0.997)
    assert haversine_km(a.lat, a.lon, b.lat, b.lon) >= edge  # what haversine alone would say
    assert distance_band(display_km(a, b)) == distance_band(edge * 0.997)
