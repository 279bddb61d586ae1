"""Cloaking that holds against an attacker: everything an outsider can watch about a need — is
it visible (GET /api/v1/needs/{id}: 200 or 404), is it in my feed, in which band, was I
notified — and about a provider — how many providers a need here would reach — is decided on
grid cells, so moving one's own base and radius, in as many requests and accounts as the
attacker likes, locates a cell and never a point.

The attack this stops (measured on the old rule, true distances): a fresh provider account
bisects the edge of visibility by moving its base or radius; from three bases that locates a
need's true point to under a metre in ~250 requests. The honest form of "nothing finer than the
cell" used here: two needs at different true points of one cell (about a kilometre apart, in
opposite corners) give byte-identical observations to every probe of a sweep whose radii sit
exactly on the true distances — probes that the old rule answers differently for the two
(asserted too, so the sweep would have caught the leak). Then nothing the attacker sees can
tell the two points apart, whatever estimator they use: their error is cell-scale.

And the rate limits that make sweeps slow: the N+1th base change in the window is a 429 and
changes nothing.
"""

from __future__ import annotations

import math
import random
from typing import Any

from conftest import AUSTIN, _clean, need_data
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_matching import destination

from marketplace.extensions import db
from marketplace.geo import EARTH_RADIUS_KM, grid_cell_centre, haversine_km
from marketplace.providers import services as providers
from marketplace.providers.matching import providers_for

CELL = grid_cell_centre(*AUSTIN)
LAT_STEP = 1.0 / 111.195
LON_STEP = 360.0 / math.floor(2 * math.pi * EARTH_RADIUS_KM * math.cos(math.radians(CELL.lat)))
# Opposite corners of one cell (0.4 of a step from the centre each way): ~1 km apart.
POINT_A = (CELL.lat + 0.4 * LAT_STEP, CELL.lon - 0.4 * LON_STEP)
POINT_B = (CELL.lat - 0.4 * LAT_STEP, CELL.lon + 0.4 * LON_STEP)
NEED_RADIUS = 20.0
# What differs between two needs for reasons other than their place.
INTRINSIC = {"id", "created_at", "expires_at", "title"}


def test_the_two_points_share_a_cell_and_are_far_apart() -> None:
    assert grid_cell_centre(*POINT_A) == grid_cell_centre(*POINT_B) == CELL
    assert haversine_km(*POINT_A, *POINT_B) > 0.9


def _probes(seed: int) -> list[tuple[tuple[float, float], float]]:
    """(base, radius) pairs an attacker would try: radii exactly on the true distance to
    either point and halfway between (bisection converges there), and bases on the need's
    radius (the other edge), in every direction."""
    rng = random.Random(seed)
    probes = []
    for _ in range(8):
        bearing, km = rng.uniform(0, 360), rng.uniform(3, 18)
        base = destination(*CELL, bearing, km)
        da, db = haversine_km(*base, *POINT_A), haversine_km(*base, *POINT_B)
        probes += [(base, da), (base, db), (base, (da + db) / 2)]
    for _ in range(6):  # on the need's own radius, with a radius that is not the limit
        base = destination(*CELL, rng.uniform(0, 360), NEED_RADIUS)
        probes.append((base, 50.0))
    return probes


def _true_rule(base: tuple[float, float], radius: float, point: tuple[float, float]) -> bool:
    km = haversine_km(*base, *point)
    return km <= radius and km <= NEED_RADIUS


def _strip(body: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if body is None else {k: v for k, v in body.items() if k not in INTRINSIC}


def _profile(handle: str, base: tuple[float, float], radius: float,
             categories: tuple[str, ...] = ("catering",)) -> dict[str, Any]:
    return {"handle": handle, "display_name": "Prober", "categories": list(categories),
            "base": {"lat": base[0], "lon": base[1]}, "radius_km": radius}


def test_a_sweep_of_bases_and_radii_cannot_tell_two_points_of_one_cell_apart(
        make_user: Any, rate_limits: Any) -> None:
    probes = _probes(seed=7)
    # The sweep is discriminating: on true distances it would see the two needs differ.
    assert sum(_true_rule(b, r, POINT_A) != _true_rule(b, r, POINT_B) for b, r in probes) >= 10

    # Several fresh accounts set up where the first probes are, before the needs are posted,
    # so the notifications are probes too.
    attackers = [make_user() for _ in range(6)]
    for i, person in enumerate(attackers):
        base, radius = probes[i]
        r = person.put("/api/v1/me/provider", json=_profile(f"probe-{person.user.id}", base,
                                                            radius))
        assert r.status_code == 200, r.get_json()
    customer = make_user()
    ids = {}
    for name, point in (("a", POINT_A), ("b", POINT_B)):
        r = customer.post("/api/v1/needs", json={**need_data(
            title=f"Need {name}", location={"lat": point[0], "lon": point[1]},
            radius_km=NEED_RADIUS, address=None)})
        assert r.status_code == 201, r.get_json()
        ids[name] = r.get_json()["id"]

    for person in attackers:  # notified of one exactly when of the other, alike
        events = person.get("/api/v1/notifications", query_string={"limit": 100}).get_json()
        matched = {e["data"]["need"]["id"]: _strip(e["data"]["need"]) for e in events["items"]
                   if e["type"] == "need.matched"}
        assert matched.get(ids["a"]) == matched.get(ids["b"])

    # Then every account moves through the rest of the sweep, reading everything each time.
    seen_any = False
    for i, (base, radius) in enumerate(probes):
        person = attackers[i % len(attackers)]
        r = person.put("/api/v1/me/provider", json=_profile(f"probe-{person.user.id}", base,
                                                            radius))
        assert r.status_code == 200, r.get_json()
        bodies = {}
        for name, need_id in ids.items():
            r = person.get(f"/api/v1/needs/{need_id}")
            assert r.status_code in (200, 404)
            bodies[name] = (r.status_code, _strip(r.get_json()) if r.status_code == 200
                            else r.get_json())
        assert bodies["a"] == bodies["b"], (base, radius)
        feed = person.get("/api/v1/feed", query_string={"limit": 100}).get_json()["items"]
        in_feed = {item["id"]: _strip(item) for item in feed}
        assert in_feed.get(ids["a"]) == in_feed.get(ids["b"]), (base, radius)
        seen_any = seen_any or bodies["a"][0] == 200
    assert seen_any  # the sweep did reach the needs' cell, it just cannot split it


def test_the_reach_preview_cannot_tell_two_bases_of_one_cell_apart(
        make_user: Any, auth: Any) -> None:
    """A customer probing the post-need form's reach count finds providers' cells, not bases:
    two providers in opposite corners of one cell (one serving catering, one plumbing, so each
    has its own count) are counted alike by every probe."""
    for point, category in ((POINT_A, "catering"), (POINT_B, "plumbing")):
        person = make_user()
        providers.save_profile(person.user, {**_profile(f"based-{person.user.id}", point, 30.0,
                                                        (category,)),
                                             "base": {"lat": point[0], "lon": point[1]}})
    customer = auth.sign_in(make_user())
    rng = random.Random(11)
    discriminating = counted = 0
    for _ in range(12):
        at = destination(*CELL, rng.uniform(0, 360), rng.uniform(2, 25))
        da, db = haversine_km(*at, *POINT_A), haversine_km(*at, *POINT_B)
        for radius in (da, db, (da + db) / 2):
            if not 1 <= radius <= 100:
                continue
            discriminating += (da <= radius) != (db <= radius)
            counts = [customer.get("/needs/reach", query_string={
                "category": category, "radius_km": radius, "lat": at[0], "lon": at[1]},
                headers={"Accept": "application/json"}).get_json()["count"]
                for category in ("catering", "plumbing")]
            assert counts[0] == counts[1], (at, radius)
            counted += counts[0]
    assert discriminating >= 10 and counted > 0


# --- rate limits ----------------------------------------------------------------------------


def test_the_rate_limit_stops_a_sweep_of_bases(make_user: Any, auth: Any,
                                               rate_limits: Any) -> None:
    """Three base changes an hour: the fourth, through the API or the form (one budget), is a
    429 in the one error shape with Retry-After, and the base stays where it was. Another
    account has a budget of its own."""
    rate_limits(RATE_LIMIT_PLACE_CHANGES="3 per hour")
    person = make_user()
    for km in (1, 2):
        r = person.put("/api/v1/me/provider",
                       json=_profile("sweeper", destination(*AUSTIN, 0, km), 10))
        assert r.status_code == 200, r.get_json()
    browser = auth.sign_in(person)
    form = {"handle": "sweeper", "display_name": "Prober", "categories": "catering",
            "lat": str(AUSTIN[0]), "lon": str(AUSTIN[1]), "radius_km": "10", "active": "1"}
    assert browser.post("/provider", data=form).status_code == 302
    kept = providers.provider_of(person.user)
    assert (kept.base_lat, kept.base_lon) == AUSTIN  # the form's save was the third
    before = (kept.base_lat, kept.base_lon, kept.radius_km)

    r = person.put("/api/v1/me/provider", json=_profile("sweeper", destination(*AUSTIN, 0, 4), 9))
    assert r.status_code == 429
    error = r.get_json()["error"]
    assert (error["status"], error["code"]) == (429, "too_many_requests")
    assert "3 per 1 hour" in error["message"]
    assert 0 < int(r.headers["Retry-After"]) <= 3600
    page = browser.post("/provider", data={**form, "lat": str(AUSTIN[0] + 0.05)})
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "Too many requests" in page.get_data(as_text=True)
    db.session.expire_all()
    kept = providers.provider_of(person.user)
    assert (kept.base_lat, kept.base_lon, kept.radius_km) == before

    other = make_user()
    assert other.put("/api/v1/me/provider",
                     json=_profile("other-one", AUSTIN, 10)).status_code == 200


def test_location_reads_and_reach_previews_are_limited_per_account(
        make_provider: Any, make_need: Any, make_user: Any, auth: Any, rate_limits: Any) -> None:
    rate_limits(RATE_LIMIT_LOCATION_READS="2 per minute", RATE_LIMIT_REACH_PREVIEWS="1 per minute")
    pro = make_provider()
    need = make_need()
    assert pro.get("/api/v1/feed").status_code == 200
    assert pro.get(f"/api/v1/needs/{need.id}").status_code == 200
    refused = pro.get("/api/v1/feed")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert refused.get_json()["error"]["code"] == "too_many_requests"
    assert auth.sign_in(pro).get("/feed").status_code == 429  # the page spends the same budget
    assert make_provider().get("/api/v1/feed").status_code == 200  # another account does not

    customer = auth.sign_in(make_user())
    args = {"category": "catering", "radius_km": 10, "lat": AUSTIN[0], "lon": AUSTIN[1]}
    json = {"Accept": "application/json"}
    assert customer.get("/needs/reach", query_string=args, headers=json).status_code == 200
    r = customer.get("/needs/reach", query_string=args, headers=json)
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "too_many_requests"


# --- the same rule, anywhere on the globe ----------------------------------------------------


def _cell_point(lat: float, lon: float, fy: float, fx: float) -> tuple[float, float]:
    """A point of the cell holding (lat, lon), at fractions (fy, fx) in -0.45..0.45 of its
    height and width from the centre."""
    centre = grid_cell_centre(lat, lon)
    columns = max(1, math.floor(2 * math.pi * EARTH_RADIUS_KM * math.cos(math.radians(centre.lat))))
    lon_point = centre.lon + fx * 360.0 / columns
    return centre.lat + fy * LAT_STEP, (lon_point + 540.0) % 360.0 - 180.0


@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cell=st.tuples(st.floats(-80, 80), st.floats(-180, 180)),
       corners=st.lists(st.floats(-0.45, 0.45), min_size=4, max_size=4),
       # a base 2.5 km or more away: its radius (the distance +-1.5 km) stays >= 1 km, the least
       # a profile may have (a radius under it is refused by the database's CHECK)
       bases=st.lists(st.tuples(st.floats(0, 360), st.floats(2.5, 60), st.floats(-1.5, 1.5)),
                      min_size=1, max_size=6),
       need_radius=st.floats(1, 100))
def test_every_point_of_a_cell_reaches_the_same_providers(
        app: Any, make_user: Any, cell: tuple[float, float], corners: list[float],
        bases: list[tuple[float, float, float]], need_radius: float) -> None:
    """Anywhere (the antimeridian included), two points of one cell are matched to exactly the
    same providers — what notifications, visibility and the reach count are made of. Each
    provider's radius lies within 1.5 km of its distance to one of the points: where a rule on
    true distances tells the two apart."""
    try:
        a = _cell_point(*cell, corners[0], corners[1])
        b = _cell_point(*cell, corners[2], corners[3])
        assume(grid_cell_centre(*a) == grid_cell_centre(*b))
        for bearing, km, edge in bases:
            person = make_user()
            providers.save_profile(person.user, _profile(
                f"h{person.user.id}", destination(*a, bearing, km), min(100.0, km + edge)))
        catering = providers.category_by_slug("catering").id
        found = [{m.provider_id: m.cell for m in providers_for(catering, *p, need_radius)}
                 for p in (a, b)]
        assert found[0] == found[1]
    finally:
        db.session.remove()
        _clean(app)
