"""GET /api/v1/feed: the open needs posted to the calling provider right now — the matching
rule seen from the provider's side, with approximate locations only, nearest band first."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import AUSTIN, error_of
from sqlalchemy import select, update

from marketplace import lifecycle
from marketplace.errors import Conflict
from marketplace.extensions import db
from marketplace.geo import EARTH_RADIUS_KM, distance_band, grid_cell_centre, haversine_km
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedStatus
from marketplace.notifications.models import Notification


def offset(km: float, bearing_deg: float = 0.0, origin: tuple[float, float] = AUSTIN
           ) -> tuple[float, float]:
    """The point ``km`` from ``origin`` along a great circle (the model haversine uses)."""
    phi1, lam1 = math.radians(origin[0]), math.radians(origin[1])
    theta, delta = math.radians(bearing_deg), km / EARTH_RADIUS_KM
    phi2 = math.asin(math.sin(phi1) * math.cos(delta)
                     + math.cos(phi1) * math.sin(delta) * math.cos(theta))
    lam2 = lam1 + math.atan2(math.sin(theta) * math.sin(delta) * math.cos(phi1),
                             math.cos(delta) - math.sin(phi1) * math.sin(phi2))
    return math.degrees(phi2), (math.degrees(lam2) + 540.0) % 360.0 - 180.0


def at(point: tuple[float, float]) -> dict[str, float]:
    return {"lat": point[0], "lon": point[1]}


def feed(person: Any, **args: Any) -> dict[str, Any]:
    r = person.get("/api/v1/feed", query_string=args)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def feed_ids(person: Any) -> list[int]:
    return [item["id"] for item in feed(person, limit=100)["items"]]


def put_profile(person: Any, **changes: Any) -> None:
    provider = person.provider
    data = {
        "handle": provider.handle, "display_name": provider.display_name, "bio": "",
        "categories": [c.slug for c in provider.categories],
        "base": {"lat": provider.base_lat, "lon": provider.base_lon},
        "radius_km": provider.radius_km, "active": provider.active,
    }
    data.update(changes)
    r = person.put("/api/v1/me/provider", json=data)
    assert r.status_code == 200, r.get_json()


# --- who sees what --------------------------------------------------------------------------


def test_feed_lists_exactly_the_open_needs_matching_the_provider(
        make_user, make_provider, make_need, make_offer):
    pro = make_provider(base=AUSTIN, radius_km=25, categories=("catering",))
    customer = make_user()
    here = make_need(customer, location=at(AUSTIN))
    seven_km = make_need(customer, location=at(offset(7, 30)), radius_km=20)
    make_need(customer, category="cleaning", location=at(AUSTIN))  # other category
    make_need(customer, location=at(offset(40, 90)), radius_km=50)  # beyond the provider's 25 km
    make_need(customer, location=at(offset(15, 180)), radius_km=10)  # provider beyond need's 10 km
    make_need(pro, location=at(AUSTIN))  # the provider's own need
    swept = make_need(customer, location=at(AUSTIN), expires_at=datetime.now(UTC)
                      + timedelta(hours=1))
    assert lifecycle.expire_due(datetime.now(UTC) + timedelta(hours=2)) == [swept.id]
    stale = make_need(customer, location=at(AUSTIN))  # past expires_at, not yet swept
    db.session.execute(update(Need).where(Need.id == stale.id)
                       .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    db.session.commit()
    assigned = make_need(customer, location=at(AUSTIN))
    offer = make_offer(assigned, make_provider())
    lifecycle.accept(customer.user, offer.id)
    cancelled = make_need(customer, location=at(AUSTIN))
    lifecycle.cancel(customer.user, cancelled.id, "changed my mind")

    assert sorted(feed_ids(pro)) == sorted([here.id, seven_km.id])


def test_feed_covers_every_category_the_provider_serves(make_user, make_provider, make_need):
    pro = make_provider(categories=("catering", "cleaning"))
    customer = make_user()
    catering = make_need(customer)
    cleaning = make_need(customer, category="cleaning")
    make_need(customer, category="plumbing")
    assert sorted(feed_ids(pro)) == sorted([catering.id, cleaning.id])


def test_both_radii_must_cover_the_distance(make_user, make_provider, make_need):
    customer = make_user()
    need_at = offset(15, 45)
    wide_need = make_need(customer, location=at(need_at), radius_km=20)
    narrow_need = make_need(customer, location=at(need_at), radius_km=10)
    far_reaching = make_provider(radius_km=25)
    short_reaching = make_provider(radius_km=10)
    assert feed_ids(far_reaching) == [wide_need.id]
    assert feed_ids(short_reaching) == []
    assert narrow_need.id not in feed_ids(far_reaching)


def test_feed_agrees_with_who_was_told_need_matched(make_user, make_provider, make_need):
    """Intent is permission: a provider sees in the feed exactly the needs they were told of."""
    customer = make_user()
    pros = [make_provider(base=offset(km, bearing), radius_km=radius, categories=(cat,))
            for km, bearing, radius, cat in [
                (0, 0, 5, "catering"), (4, 10, 5, "catering"), (6, 100, 5, "catering"),
                (12, 200, 30, "catering"), (19, 300, 30, "catering"), (21, 40, 30, "catering"),
                (2, 270, 10, "catering"), (3, 0, 10, "cleaning"), (30, 90, 100, "catering")]]
    posted = [make_need(customer, location=at(AUSTIN), radius_km=20),
              make_need(customer, location=at(offset(5.5, 270)), radius_km=8)]
    seen = {}
    for pro in pros:
        told = {data["need"]["id"] for data in db.session.scalars(
            select(Notification.data).where(Notification.user_id == pro.user.id,
                                            Notification.type == "need.matched"))}
        expected = {n.id for n in posted if needs.matches(pro.provider, n)}
        assert set(feed_ids(pro)) == expected == told, pro.provider.handle
        # and the feed shows the same coarse distance the notification gave
        bands = {d["need"]["id"]: d["need"]["distance_band"] for d in db.session.scalars(
            select(Notification.data).where(Notification.user_id == pro.user.id))}
        assert {i["id"]: i["distance_band"] for i in feed(pro, limit=100)["items"]} == bands
        seen[pro.provider.handle] = expected
    # the layout is not trivial: some providers see both, some one, some none
    assert {len(v) for v in seen.values()} == {0, 1, 2}


@pytest.mark.parametrize(("base", "need_at"), [
    ((-17.0, 179.95), (-17.0, -179.95)),  # Fiji, across the antimeridian (~10.6 km)
    ((-17.0, -179.97), (-17.02, 179.98)),  # the other way round
    ((89.95, 0.0), (89.95, 180.0)),  # across the north pole (~11 km)
    ((-89.96, 45.0), (-89.97, -135.0)),  # across the south pole
])
def test_feed_works_across_the_antimeridian_and_the_poles(make_user, make_provider, make_need,
                                                          base, need_at):
    assert haversine_km(*base, *need_at) < 15
    pro = make_provider(base=base, radius_km=20)
    need = make_need(make_user(), location=at(need_at), radius_km=20)
    assert feed_ids(pro) == [need.id]
    told = db.session.scalars(select(Notification).where(
        Notification.user_id == pro.user.id, Notification.type == "need.matched")).all()
    assert [n.data["need"]["id"] for n in told] == [need.id]


def test_inactive_provider_gets_an_empty_feed(make_user, make_provider, make_need):
    pro = make_provider(active=False)
    make_need(make_user())
    body = feed(pro)
    assert body == {"items": [], "next_cursor": None}


def test_no_provider_profile_is_403(make_user, make_need):
    person = make_user()
    make_need(make_user())
    r = person.get("/api/v1/feed")
    assert r.status_code == 403
    assert error_of(r)["code"] == "forbidden"


def test_feed_needs_a_token(client):
    r = client.get("/api/v1/feed")
    assert r.status_code == 401
    error_of(r)


# --- what an item shows ---------------------------------------------------------------------


def test_items_show_the_grid_cell_and_band_never_the_point_address_or_customer(
        make_user, make_provider, make_need, make_offer):
    pro = make_provider(base=offset(3.3, 200))
    customer = make_user(name="Cora Customer", email="cora@example.com", phone="+15125550100")
    true_point = (30.2712345, -97.7398765)
    need = make_need(customer, location=at(true_point), address="742 Evergreen Terrace",
                     place="East Austin")
    body = feed(pro)
    [item] = body["items"]
    cell = grid_cell_centre(*true_point)
    assert item["id"] == need.id
    assert item["location"] == {"lat": cell.lat, "lon": cell.lon, "approximate": True}
    assert (item["location"]["lat"], item["location"]["lon"]) != true_point
    assert item["distance_band"] == distance_band(
        haversine_km(pro.provider.base_lat, pro.provider.base_lon, cell.lat, cell.lon))
    assert item["address"] is None and item["customer"] is None
    assert item["accepted_offer_id"] is None
    assert item["place"] == "Austin, TX, US"  # the geocoder's name of the cell, not as typed
    assert item["status"] == "open" and item["viewer_role"] == "matched_provider"
    text = json.dumps(body)
    for secret in ("742 Evergreen", "cora@example.com", "Cora Customer", "+15125550100",
                   repr(true_point[0]), repr(true_point[1])):
        assert secret not in text

    make_offer(need, pro)  # having offered changes nothing about what the provider sees
    [item] = feed(pro)["items"]
    assert item["viewer_role"] == "offering_provider"
    assert item["location"]["approximate"] is True
    assert item["address"] is None and item["customer"] is None


def test_band_comes_from_the_cell_centre_not_the_true_point(make_user, make_provider,
                                                            make_need):
    """Two needs in one grid cell, one truly under 2 km from the provider and one truly over:
    both show the same cell centre and the same band, so nothing narrows down the point."""
    cell = grid_cell_centre(*AUSTIN)
    north, south = (cell.lat + 0.0009, cell.lon), (cell.lat - 0.0009, cell.lon)
    assert grid_cell_centre(*north) == grid_cell_centre(*south) == cell
    base = offset(2.05, 0.0, origin=(cell.lat, cell.lon))  # north of the cell centre
    assert haversine_km(*base, *north) < 2.0 < haversine_km(*base, *south)
    pro = make_provider(base=base)
    customer = make_user()
    needs_ = [make_need(customer, location=at(north)), make_need(customer, location=at(south))]
    items = {i["id"]: i for i in feed(pro)["items"]}
    assert set(items) == {n.id for n in needs_}
    shown = {(i["location"]["lat"], i["location"]["lon"], i["distance_band"])
             for i in items.values()}
    assert shown == {(cell.lat, cell.lon, "2-5 km")}
    told = {d["need"]["distance_band"] for d in db.session.scalars(
        select(Notification.data).where(Notification.user_id == pro.user.id))}
    assert told == {"2-5 km"}


def test_nearest_band_first_then_newest(make_user, make_provider, make_need):
    pro = make_provider(base=AUSTIN, radius_km=25)
    customer = make_user()
    far = make_need(customer, location=at(offset(17, 0)))  # 10-25 km
    near_old = make_need(customer, location=at(offset(0.3, 90)))  # under 2 km
    mid = make_need(customer, location=at(offset(7.5, 180)))  # 5-10 km
    close = make_need(customer, location=at(offset(3.5, 270)))  # 2-5 km
    near_new = make_need(customer, location=at(offset(0.6, 0)))  # under 2 km
    mid_new = make_need(customer, location=at(offset(7.0, 45)))  # 5-10 km
    items = feed(pro)["items"]
    assert [i["id"] for i in items] == [near_new.id, near_old.id, close.id, mid_new.id, mid.id,
                                        far.id]
    assert [i["distance_band"] for i in items] == ["under 2 km", "under 2 km", "2-5 km",
                                                   "5-10 km", "5-10 km", "10-25 km"]


def test_cursor_pagination_walks_the_whole_feed_once(make_user, make_provider, make_need):
    pro = make_provider(radius_km=25)
    customer = make_user()
    for i in range(7):
        make_need(customer, location=at(offset(1.5 * i, 40 * i)), title=f"Need number {i}")
    everything = feed_ids(pro)
    assert len(everything) == 7
    seen: list[int] = []
    pages = []
    cursor = None
    while True:
        args: dict[str, Any] = {"limit": 3}
        if cursor:
            args["cursor"] = cursor
        body = feed(pro, **args)
        pages.append(len(body["items"]))
        seen.extend(i["id"] for i in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "pagination does not end"
    assert pages == [3, 3, 1]
    assert seen == everything


def test_an_exact_page_has_no_next_cursor(make_user, make_provider, make_need):
    pro = make_provider()
    customer = make_user()
    for _ in range(2):
        make_need(customer)
    body = feed(pro, limit=2)
    assert len(body["items"]) == 2 and body["next_cursor"] is None


@pytest.mark.parametrize(("args", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "many"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": "x" * 65}, "cursor"),
])
def test_bad_paging_arguments_are_422(make_provider, args, field):
    r = make_provider().get("/api/v1/feed", query_string=args)
    assert r.status_code == 422
    assert field in error_of(r)["fields"]


def test_a_forged_negative_cursor_is_422(make_user, make_provider, make_need):
    pro = make_provider()
    customer = make_user()
    for i in range(5):
        make_need(customer, title=f"Need number {i}")
    forged = base64.urlsafe_b64encode(b"id:-2").decode().rstrip("=")
    r = pro.get("/api/v1/feed", query_string={"cursor": forged, "limit": 3})
    assert r.status_code == 422, (r.get_json(), forged)
    assert "cursor" in error_of(r)["fields"]


# --- the provider's profile is read live ----------------------------------------------------


def test_profile_changes_take_effect_at_once(make_user, make_provider, make_need):
    pro = make_provider(base=AUSTIN, radius_km=25, categories=("catering",))
    need = make_need(make_user(), location=at(offset(15, 90)), radius_km=20)
    assert feed_ids(pro) == [need.id]

    put_profile(pro, radius_km=10)
    assert feed_ids(pro) == []
    put_profile(pro, radius_km=25)
    assert feed_ids(pro) == [need.id]

    put_profile(pro, categories=["cleaning"])
    assert feed_ids(pro) == []
    put_profile(pro, categories=["cleaning", "catering"])
    assert feed_ids(pro) == [need.id]

    put_profile(pro, active=False)
    assert feed(pro)["items"] == []
    put_profile(pro, active=True)
    assert feed_ids(pro) == [need.id]

    put_profile(pro, base=at(offset(60, 270)))  # moved away
    assert feed_ids(pro) == []
    put_profile(pro, base=at(offset(14, 90)))  # moved next door: now the nearest band
    [item] = feed(pro)["items"]
    assert item["id"] == need.id and item["distance_band"] == "under 2 km"


def test_a_need_leaves_the_feed_as_soon_as_it_closes(make_user, make_provider, make_need,
                                                     make_offer):
    pro = make_provider()
    other = make_provider()
    customer = make_user()
    accepted = make_need(customer)
    cancelled = make_need(customer)
    expiring = make_need(customer)
    assert sorted(feed_ids(pro)) == sorted([accepted.id, cancelled.id, expiring.id])

    lifecycle.accept(customer.user, make_offer(accepted, other).id)
    assert accepted.id not in feed_ids(pro)
    lifecycle.cancel(customer.user, cancelled.id, None)
    assert cancelled.id not in feed_ids(pro)
    db.session.execute(update(Need).where(Need.id == expiring.id)
                       .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    assert feed_ids(pro) == []


@pytest.fixture
def signals() -> Any:
    """Live-only signals as the Socket.IO layer receives them, after each commit."""
    from marketplace.notifications import outbox

    got: list[tuple[int, str, dict[str, Any]]] = []

    def record(batch: list[tuple[int, str, dict[str, Any]]]) -> None:
        got.extend(batch)

    outbox.on_signal(record)
    yield got
    outbox._signal_emitters.remove(record)


def test_closing_a_need_signals_every_provider_it_was_posted_to(make_user, make_provider,
                                                                make_need, make_offer, signals):
    customer = make_user()
    near, offering = make_provider(), make_provider()
    far = make_provider(base=offset(200))
    other_trade = make_provider(categories=("plumbing",))
    blocked = make_provider()
    r = customer.put(f"/api/v1/me/blocks/{blocked.provider.handle}")
    assert r.status_code == 200, r.get_json()
    posted_to = sorted([near.user.id, offering.user.id])
    accepted, cancelled, expiring = (make_need(customer) for _ in range(3))
    offer = make_offer(accepted, offering)
    rejected = make_need(customer)
    assert signals == []  # creating needs and offers signals nothing

    lifecycle.accept(customer.user, offer.id)
    lifecycle.cancel(customer.user, cancelled.id, None)
    db.session.execute(update(Need).where(Need.id == expiring.id)
                       .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    lifecycle.expire_due()
    with pytest.raises(Conflict):  # a refused change (wrong role/state) signals nothing
        lifecycle.complete(customer.user, rejected.id)

    by_need: dict[int, list[int]] = {}
    for user_id, name, data in signals:
        assert name == "need.closed"
        by_need.setdefault(data["need_id"], []).append(user_id)
    assert {k: sorted(v) for k, v in by_need.items()} == {
        accepted.id: posted_to, cancelled.id: posted_to, expiring.id: posted_to}
    statuses = {data["need_id"]: data["status"] for _uid, _name, data in signals}
    assert statuses == {accepted.id: "assigned", cancelled.id: "cancelled",
                        expiring.id: "expired"}
    assert not {far.user.id, other_trade.user.id, blocked.user.id, customer.user.id} & {
        uid for uid, _n, _d in signals}


def test_a_rolled_back_close_signals_nothing(make_user, make_provider, make_need, signals):
    customer = make_user()
    make_provider()
    need = make_need(customer)
    lifecycle.transition(need, NeedStatus.CANCELLED, "customer")
    db.session.rollback()
    db.session.commit()
    assert signals == []
    assert db.session.get(Need, need.id).status.value == "open"
