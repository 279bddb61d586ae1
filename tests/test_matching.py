"""The spatial query returns exactly what a brute-force great-circle check returns — between
the grid-cell centres of the provider's base and of the need, the published places — including
near the poles, across the antimeridian and on radius boundaries."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import _clean
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace import access
from marketplace.geo import EARTH_RADIUS_KM, grid_cell_centre, haversine_km, lat_row, search_box
from marketplace.needs import services as needs
from marketplace.providers import services as providers
from marketplace.providers.matching import providers_for


def destination(lat: float, lon: float, bearing_deg: float, km: float) -> tuple[float, float]:
    """The point ``km`` away on a great circle (spherical Earth, the model haversine uses)."""
    phi1, lam1, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    delta = km / EARTH_RADIUS_KM
    phi2 = math.asin(math.sin(phi1) * math.cos(delta)
                     + math.cos(phi1) * math.sin(delta) * math.cos(theta))
    lam2 = lam1 + math.atan2(math.sin(theta) * math.sin(delta) * math.cos(phi1),
                             math.cos(delta) - math.sin(phi1) * math.sin(phi2))
    lon2 = (math.degrees(lam2) + 540.0) % 360.0 - 180.0
    return max(-90.0, min(90.0, math.degrees(phi2))), lon2


latitudes = st.one_of(
    st.floats(-89.99, 89.99),
    st.floats(84.0, 89.99),  # near the north pole
    st.floats(-89.99, -84.0),  # near the south pole
)
longitudes = st.one_of(
    st.floats(-180.0, 180.0),
    st.floats(175.0, 180.0),  # either side of the antimeridian
    st.floats(-180.0, -175.0),
)
radii = st.floats(1.0, 100.0)


@settings(max_examples=2000, deadline=None)
@given(lat=latitudes, lon=longitudes, radius=radii, bearing=st.floats(0, 360),
       fraction=st.floats(0.0, 1.0))
def test_every_point_within_the_radius_lies_in_the_search_box(
        lat: float, lon: float, radius: float, bearing: float, fraction: float) -> None:
    plat, plon = destination(lat, lon, bearing, radius * fraction)
    if haversine_km(lat, lon, plat, plon) > radius:
        return  # float error put it a hair outside; not a point we must find
    box = search_box(lat, lon, radius)
    assert lat_row(plat) in box.rows
    assert any(lo <= plon <= hi for lo, hi in box.lon_ranges), (box, plat, plon)


@settings(max_examples=500, deadline=None)
@given(row=st.integers(1, 1795), radius=radii, bearing=st.sampled_from([0.0, 180.0]),
       nudge=st.floats(1e-9, 1e-6))
def test_cap_edges_just_across_a_row_boundary_are_in_the_box(
        row: int, radius: float, bearing: float, nudge: float) -> None:
    """Put the cap's northern (or southern) tip just past a row boundary: the row must be in."""
    boundary = -90.0 + row * 0.1
    reach = math.degrees(radius / EARTH_RADIUS_KM)
    lat = boundary - reach + nudge if bearing == 0.0 else boundary + reach - nudge
    if not -89.0 < lat < 89.0:
        return
    tip_lat, tip_lon = destination(lat, 10.0, bearing, radius)
    box = search_box(lat, 10.0, radius)
    assert lat_row(tip_lat) in box.rows
    assert any(lo <= tip_lon <= hi for lo, hi in box.lon_ranges)


@settings(max_examples=200, deadline=None)
@given(lat=st.floats(-80, 80), lon=longitudes, radius=radii)
def test_whole_rim_of_the_cap_is_in_the_box(lat: float, lon: float, radius: float) -> None:
    """The widest longitude of a cap is not due east or west of the centre but a little
    poleward; walk the whole rim, one degree of bearing at a time."""
    box = search_box(lat, lon, radius)
    for bearing in range(360):
        plat, plon = destination(lat, lon, bearing, radius * (1 - 1e-12))
        assert lat_row(plat) in box.rows
        assert any(lo <= plon <= hi for lo, hi in box.lon_ranges), (bearing, plat, plon)


provider_spec = st.fixed_dictionaries({
    "bearing": st.floats(0, 360),
    "km": st.one_of(st.floats(0, 160), st.sampled_from(["on-own-radius", "on-need-radius"])),
    "radius": radii,
    "category": st.sampled_from(["catering", "plumbing"]),
    "active": st.booleans(),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(lat=latitudes, lon=longitudes, need_radius=radii,
       specs=st.lists(provider_spec, min_size=1, max_size=8))
def test_spatial_query_equals_brute_force(app: Any, make_user: Any, lat: float, lon: float,
                                          need_radius: float, specs: list[dict[str, Any]]) -> None:
    try:
        customer = make_user()
        placed = []
        for spec in specs:
            km = spec["km"]
            if km == "on-own-radius":
                km = spec["radius"]
            elif km == "on-need-radius":
                km = need_radius
            plat, plon = destination(lat, lon, spec["bearing"], km)
            person = make_user()
            provider = providers.save_profile(person.user, {
                "handle": f"h{person.user.id}", "display_name": "P", "categories":
                [spec["category"]], "base": {"lat": plat, "lon": plon},
                "radius_km": spec["radius"], "active": spec["active"]})
            placed.append(provider)
        category = providers.category_by_slug("catering")
        found = {m.provider_id for m in providers_for(category.id, lat, lon, need_radius,
                                                        exclude_user_id=customer.user.id)}
        need_cell = grid_cell_centre(lat, lon)
        expected = {
            p.id for p in placed
            if p.active and any(c.slug == "catering" for c in p.categories)
            and haversine_km(*grid_cell_centre(p.base_lat, p.base_lon), *need_cell)
            <= min(p.radius_km, need_radius)
        }
        assert found == expected
        # The single-pair rule used for access checks and the provider feed agree with it.
        need = needs.create(customer.user, {
            "title": "Probe", "category": "catering", "location": {"lat": lat, "lon": lon},
            "radius_km": need_radius, "budget": {"amount": 100, "currency": "USD"},
            "expires_at": datetime.now(UTC) + timedelta(hours=1)})
        assert {p.id for p in placed if needs.matches(p, need)} == expected
        for p in placed:
            in_feed = any(item.id == need.id for item in access.feed(p.user, limit=100)[0])
            assert in_feed == (p.id in expected)
    finally:
        from marketplace.extensions import db

        db.session.remove()
        _clean(app)


def test_customer_never_matches_own_need(make_user: Any, make_provider: Any) -> None:
    me = make_provider()
    category = providers.category_by_slug("catering")
    assert providers_for(category.id, me.provider.base_lat, me.provider.base_lon, 10,
                         exclude_user_id=me.user.id) == []
    assert [m.provider_id for m in providers_for(category.id, me.provider.base_lat,
                                                 me.provider.base_lon, 10)] == [me.provider.id]


def test_profile_changes_rewrite_the_index(make_provider: Any) -> None:
    pro = make_provider(categories=("catering", "plumbing"))
    base = (pro.provider.base_lat, pro.provider.base_lon)
    catering = providers.category_by_slug("catering").id
    plumbing = providers.category_by_slug("plumbing").id

    def found(category_id: int) -> bool:
        return bool(providers_for(category_id, *base, 5))

    assert found(catering) and found(plumbing)
    data = {"handle": pro.provider.handle, "display_name": "P", "categories": ["plumbing"],
            "base": {"lat": base[0], "lon": base[1]}, "radius_km": 10, "active": True}
    providers.save_profile(pro.user, data)
    assert not found(catering) and found(plumbing)
    providers.save_profile(pro.user, {**data, "active": False})
    assert not found(plumbing)
    providers.save_profile(pro.user, {**data, "base": {"lat": base[0] + 1, "lon": base[1]}})
    assert not found(plumbing)


def test_a_radius_exactly_the_cell_distance_matches_and_a_hair_less_does_not(
        make_provider: Any) -> None:
    """On the rule's edge: the query may pre-filter by distance in SQL (PostgreSQL does, with
    a slack), but the rule decides, so a radius equal to the cell-to-cell distance (as Python
    computes it) matches and the next float below does not -- on each side of the pair."""
    need_at = (30.2672, -97.7431)
    base = destination(*need_at, 63.0, 17.3)
    d = haversine_km(*grid_cell_centre(*base), *grid_cell_centre(*need_at))
    below = math.nextafter(d, 0.0)
    exact = make_provider(base=base, radius_km=d)
    short = make_provider(base=base, radius_km=below)
    category = providers.category_by_slug("catering")
    found = {m.provider_id for m in providers_for(category.id, *need_at, d)}
    assert exact.provider.id in found and short.provider.id not in found
    assert found == {exact.provider.id}
    # and the need's radius: exact reaches the provider whose own radius covers it, a hair
    # less reaches nobody
    assert {m.provider_id for m in providers_for(category.id, *need_at, below)} == set()
