"""Access rules: intent is permission, location privacy before acceptance, who sees which offers,
and that no input can set status, owner, counters, ratings or reputation."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import AUSTIN, committed_state, error_of, need_data
from sqlalchemy import select

from marketplace import access, lifecycle
from marketplace.extensions import db
from marketplace.geo import distance_band, grid_cell_centre, haversine_km
from marketplace.needs import services as needs
from marketplace.notifications.models import Notification
from marketplace.offers import services as offers

# Off the grid-cell centre on purpose, so "approximate" and "exact" differ.
TRUE_POINT = (30.26513, -97.74687)
ADDRESS = "221 Secret Lane, Austin"
KM_PER_DEG_LAT = 111.195


def north_of(point: tuple[float, float], km: float) -> tuple[float, float]:
    return (point[0] + km / KM_PER_DEG_LAT, point[1])


@pytest.fixture
def scene(make_user, make_provider, make_need, make_offer):
    """A customer's open need at TRUE_POINT with offers from two matched providers."""
    customer = make_user(name="Cara Customer", email="cara@example.com",
                         phone="+1 512 555 0199")
    pro_a, pro_b = make_provider(), make_provider()
    need = make_need(customer, location={"lat": TRUE_POINT[0], "lon": TRUE_POINT[1]},
                     address=ADDRESS)
    offer_a = make_offer(need, pro_a, amount=30000)
    offer_b = make_offer(need, pro_b, amount=32000)
    return {"customer": customer, "need": need, "pro_a": pro_a, "offer_a": offer_a,
            "pro_b": pro_b, "offer_b": offer_b}


def assert_private_view(body: dict[str, Any]) -> None:
    cell = grid_cell_centre(*TRUE_POINT)
    assert body["location"] == {"lat": cell.lat, "lon": cell.lon, "approximate": True}
    assert (body["location"]["lat"], body["location"]["lon"]) != TRUE_POINT
    assert body["address"] is None
    assert body["customer"] is None
    assert body["accepted_offer_id"] is None


def assert_no_secrets(text: str) -> None:
    for secret in (ADDRESS, "cara@example.com", "555 0199", "Cara", str(TRUE_POINT[0]),
                   str(TRUE_POINT[1])):
        assert secret not in text, secret


# --- location privacy and contact details ---------------------------------------------------


def test_matched_provider_sees_only_the_grid_cell_and_no_contact(make_user, make_provider,
                                                                make_need):
    customer = make_user(name="Cara Customer", email="cara@example.com", phone="+1 512 555 0199")
    pro = make_provider()
    need = make_need(customer, location={"lat": TRUE_POINT[0], "lon": TRUE_POINT[1]},
                     address=ADDRESS)
    r = pro.get(f"/api/v1/needs/{need.id}")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["viewer_role"] == "matched_provider"
    assert_private_view(body)
    assert_no_secrets(r.get_data(as_text=True))
    feed = pro.get("/api/v1/feed")
    assert [item["id"] for item in feed.get_json()["items"]] == [need.id]
    assert_private_view(feed.get_json()["items"][0])
    assert_no_secrets(feed.get_data(as_text=True))


def test_offering_provider_still_sees_only_the_grid_cell(scene):
    for pro in (scene["pro_a"], scene["pro_b"]):
        r = pro.get(f"/api/v1/needs/{scene['need'].id}")
        assert r.status_code == 200
        assert r.get_json()["viewer_role"] == "offering_provider"
        assert_private_view(r.get_json())
        assert_no_secrets(r.get_data(as_text=True))
        mine = pro.get(f"/api/v1/needs/{scene['need'].id}/offers")
        assert_no_secrets(mine.get_data(as_text=True))


def test_the_same_cell_looks_the_same_wherever_the_true_point_is(make_provider, make_need):
    """Repeated looks reveal nothing new: two needs in one cell are indistinguishable."""
    cell = grid_cell_centre(*TRUE_POINT)
    other = (cell.lat + 0.003, cell.lon - 0.004)
    assert grid_cell_centre(*other) == cell
    pro = make_provider()
    a = make_need(location={"lat": TRUE_POINT[0], "lon": TRUE_POINT[1]})
    b = make_need(location={"lat": other[0], "lon": other[1]})
    view_a = pro.get(f"/api/v1/needs/{a.id}").get_json()
    view_b = pro.get(f"/api/v1/needs/{b.id}").get_json()
    assert view_a["location"] == view_b["location"]
    assert view_a["distance_band"] == view_b["distance_band"]


def test_match_notifications_carry_no_contact_or_true_point(scene):
    with db.engine.connect() as conn:
        rows = conn.execute(select(Notification.type, Notification.data)
                            .where(Notification.user_id == scene["pro_a"].user.id)).all()
    assert "need.matched" in {row.type for row in rows}
    assert_no_secrets(json.dumps([row.data for row in rows]))


def test_customer_sees_their_own_need_exactly(scene):
    r = scene["customer"].get(f"/api/v1/needs/{scene['need'].id}")
    body = r.get_json()
    assert body["viewer_role"] == "customer"
    assert body["location"] == {"lat": TRUE_POINT[0], "lon": TRUE_POINT[1], "approximate": False}
    assert body["address"] == ADDRESS
    assert body["customer"]["email"] == "cara@example.com"


def test_after_acceptance_only_the_accepted_provider_sees_exact_place_and_contact(scene):
    need = scene["need"]
    lifecycle.accept(scene["customer"].user, scene["offer_a"].id)
    r = scene["pro_a"].get(f"/api/v1/needs/{need.id}")
    assert r.status_code == 200
    body = r.get_json()
    assert body["viewer_role"] == "accepted_provider"
    assert body["location"] == {"lat": TRUE_POINT[0], "lon": TRUE_POINT[1], "approximate": False}
    assert body["address"] == ADDRESS
    assert body["customer"] == {"name": "Cara Customer", "email": "cara@example.com",
                                "phone": "+1 512 555 0199", "avatar": None}  # none uploaded
    declined = scene["pro_b"].get(f"/api/v1/needs/{need.id}")
    assert declined.status_code == 200
    assert declined.get_json()["viewer_role"] == "offering_provider"
    assert_private_view(declined.get_json())
    assert_no_secrets(declined.get_data(as_text=True))
    # ...and still not once the job is done.
    lifecycle.complete(scene["customer"].user, need.id)
    declined = scene["pro_b"].get(f"/api/v1/needs/{need.id}")
    assert_private_view(declined.get_json())


def test_withdrawn_provider_never_sees_contact(scene):
    offers.withdraw(scene["pro_b"].user, scene["offer_b"].id)
    lifecycle.accept(scene["customer"].user, scene["offer_a"].id)
    r = scene["pro_b"].get(f"/api/v1/needs/{scene['need'].id}")
    assert_private_view(r.get_json())


def _straddling_pair() -> tuple[tuple[float, float], tuple[float, float]]:
    """Two points in one grid cell whose true distances from the cell centre of a provider
    based at AUSTIN fall in different distance bands."""
    base_cell = grid_cell_centre(*AUSTIN)
    half = 0.45 / KM_PER_DEG_LAT
    for k in range(1, 400):
        centre = grid_cell_centre(AUSTIN[0] + k * 0.0005, AUSTIN[1])
        a, b = (centre.lat - half, centre.lon), (centre.lat + half, centre.lon)
        if grid_cell_centre(*a) != centre or grid_cell_centre(*b) != centre:
            continue
        bands = {distance_band(haversine_km(*base_cell, *p)) for p in (a, b)}
        if len(bands) == 2:
            return a, b
    raise AssertionError("no straddling pair found")


def test_need_views_bands_depend_only_on_the_cell(make_provider, make_need):
    a, b = _straddling_pair()
    pro = make_provider(base=AUSTIN)
    need_a = make_need(location={"lat": a[0], "lon": a[1]})
    need_b = make_need(location={"lat": b[0], "lon": b[1]})
    view_a = pro.get(f"/api/v1/needs/{need_a.id}").get_json()
    view_b = pro.get(f"/api/v1/needs/{need_b.id}").get_json()
    assert view_a["location"] == view_b["location"]
    assert view_a["distance_band"] == view_b["distance_band"]


def test_provider_offer_views_bands_depend_only_on_the_cell(make_provider, make_need, make_offer):
    a, b = _straddling_pair()
    pro = make_provider(base=AUSTIN)
    need_a = make_need(location={"lat": a[0], "lon": a[1]})
    need_b = make_need(location={"lat": b[0], "lon": b[1]})
    offer_a, offer_b = make_offer(need_a, pro), make_offer(need_b, pro)
    band_a = pro.get(f"/api/v1/offers/{offer_a.id}").get_json()["distance_band"]
    band_b = pro.get(f"/api/v1/offers/{offer_b.id}").get_json()["distance_band"]
    assert band_a == band_b


# --- who may see a need at all --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["out_of_range", "outside_need_radius", "other_category",
                                  "inactive", "no_profile"])
def test_providers_the_need_was_not_posted_to_get_404(make_user, make_provider, make_need, kind):
    need = make_need(location={"lat": TRUE_POINT[0], "lon": TRUE_POINT[1]}, radius_km=3)
    if kind == "out_of_range":
        viewer = make_provider(base=north_of(TRUE_POINT, 60), radius_km=50)
    elif kind == "outside_need_radius":  # within the provider's radius, not within the need's
        viewer = make_provider(base=north_of(TRUE_POINT, 5), radius_km=50)
    elif kind == "other_category":
        viewer = make_provider(categories=("plumbing", "cleaning"))
    elif kind == "inactive":
        viewer = make_provider(active=False)
    else:
        viewer = make_user()
    # A provider placed right on the need is matched: the setup itself is sound.
    assert make_provider(base=TRUE_POINT).get(f"/api/v1/needs/{need.id}").status_code == 200
    r = viewer.get(f"/api/v1/needs/{need.id}")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"
    assert error_of(r)["message"] == "No such need."
    r = viewer.get(f"/api/v1/needs/{need.id}/offers")
    assert r.status_code == 404
    if kind == "no_profile":
        r = viewer.get("/api/v1/feed")
        assert r.status_code == 403 and error_of(r)["code"] == "forbidden"
    else:
        before = committed_state()
        r = viewer.post(f"/api/v1/needs/{need.id}/offers", json={"message": "Let me in"})
        assert r.status_code == 404
        assert committed_state() == before
        assert viewer.get("/api/v1/feed").get_json()["items"] == []


def test_provider_on_the_edge_of_both_radii_is_matched(make_provider, make_need):
    """The radii are measured between the two grid cells (the published places): a provider
    whose radius reaches exactly the need's cell sees it, one a metre short does not."""
    base = north_of(TRUE_POINT, 2.9)
    km = haversine_km(*grid_cell_centre(*base), *grid_cell_centre(*TRUE_POINT))
    need = make_need(location={"lat": TRUE_POINT[0], "lon": TRUE_POINT[1]}, radius_km=km)
    inside = make_provider(base=base, radius_km=km)
    short = make_provider(base=base, radius_km=km - 0.001)
    outside = make_provider(base=north_of(base, km), radius_km=50)  # beyond the need's radius
    assert inside.get(f"/api/v1/needs/{need.id}").status_code == 200
    assert short.get(f"/api/v1/needs/{need.id}").status_code == 404
    assert outside.get(f"/api/v1/needs/{need.id}").status_code == 404


def test_a_matched_provider_loses_sight_once_the_need_is_taken(scene, make_provider):
    bystander = make_provider()
    assert bystander.get(f"/api/v1/needs/{scene['need'].id}").status_code == 200
    lifecycle.accept(scene["customer"].user, scene["offer_a"].id)
    assert bystander.get(f"/api/v1/needs/{scene['need'].id}").status_code == 404
    assert bystander.get("/api/v1/feed").get_json()["items"] == []


def test_unknown_and_invisible_needs_answer_alike(make_provider, make_need):
    pro = make_provider(categories=("plumbing",))
    hidden = make_need()
    invisible = pro.get(f"/api/v1/needs/{hidden.id}")
    missing = pro.get(f"/api/v1/needs/{hidden.id + 1000}")
    assert invisible.status_code == missing.status_code == 404
    assert invisible.get_json() == missing.get_json()


# --- who sees which offers ------------------------------------------------------------------


def test_only_the_owner_sees_all_offers(scene, make_provider):
    need_id = scene["need"].id
    r = scene["customer"].get(f"/api/v1/needs/{need_id}/offers")
    assert r.status_code == 200
    assert {o["id"] for o in r.get_json()["items"]} == {scene["offer_a"].id, scene["offer_b"].id}
    for pro, offer in ((scene["pro_a"], scene["offer_a"]), (scene["pro_b"], scene["offer_b"])):
        r = pro.get(f"/api/v1/needs/{need_id}/offers")
        assert r.status_code == 200
        assert [o["id"] for o in r.get_json()["items"]] == [offer.id]
    bystander = make_provider()
    r = bystander.get(f"/api/v1/needs/{need_id}/offers")
    assert r.status_code == 200 and r.get_json()["items"] == []


def test_provider_sees_only_their_own_offers_after_acceptance_too(scene):
    lifecycle.accept(scene["customer"].user, scene["offer_a"].id)
    r = scene["pro_b"].get(f"/api/v1/needs/{scene['need'].id}/offers")
    assert [(o["id"], o["status"]) for o in r.get_json()["items"]] == [
        (scene["offer_b"].id, "declined")]
    r = scene["pro_a"].get(f"/api/v1/needs/{scene['need'].id}/offers")
    assert [(o["id"], o["status"]) for o in r.get_json()["items"]] == [
        (scene["offer_a"].id, "accepted")]


def test_a_provider_cannot_read_or_touch_anothers_offer(scene, make_user):
    offer_a = scene["offer_a"]
    stranger = make_user()
    before = committed_state()
    for person in (scene["pro_b"], stranger):
        r = person.get(f"/api/v1/offers/{offer_a.id}")
        assert r.status_code == 404 and error_of(r)["code"] == "not_found"
        r = person.patch(f"/api/v1/offers/{offer_a.id}", json={"message": "hijacked"})
        assert r.status_code == 404
        r = person.post(f"/api/v1/offers/{offer_a.id}/withdraw")
        assert r.status_code == 404
    assert committed_state() == before
    assert scene["customer"].get(f"/api/v1/offers/{offer_a.id}").status_code == 200
    assert scene["pro_a"].get(f"/api/v1/offers/{offer_a.id}").status_code == 200


def test_service_for_need_filters_by_role(scene):
    _need, role, seen = access.offers_on(scene["customer"].user, scene["need"].id)
    assert role == "customer" and {o.id for o in seen} == {scene["offer_a"].id, scene["offer_b"].id}
    _need, role, seen = access.offers_on(scene["pro_b"].user, scene["need"].id)
    assert role == "offering_provider" and [o.id for o in seen] == [scene["offer_b"].id]


def test_service_viewer_roles(scene, make_provider, make_user):
    need = scene["need"]
    assert access.viewer_role(scene["customer"].user, need) == "customer"
    assert access.viewer_role(scene["pro_a"].user, need) == "offering_provider"
    assert access.viewer_role(make_provider().user, need) == "matched_provider"
    assert access.viewer_role(make_provider(categories=("music",)).user, need) is None
    assert access.viewer_role(make_user().user, need) is None
    assert access.viewer_role(None, need) is None
    lifecycle.accept(scene["customer"].user, scene["offer_a"].id)
    db.session.expire_all()
    assert access.viewer_role(scene["pro_a"].user, need) == "accepted_provider"
    assert access.viewer_role(scene["pro_b"].user, need) == "offering_provider"


def test_provider_cannot_offer_on_their_own_need(make_provider, make_need):
    pro = make_provider()
    need = make_need(pro)
    assert pro.get(f"/api/v1/needs/{need.id}").get_json()["viewer_role"] == "customer"
    before = committed_state()
    r = pro.post(f"/api/v1/needs/{need.id}/offers", json={"message": "Me, myself"})
    assert r.status_code == 403
    assert committed_state() == before


# --- nothing privileged can be set through input --------------------------------------------


def _profile(pro: Any) -> dict[str, Any]:
    return {"handle": pro.provider.handle, "display_name": "Renamed", "categories": ["catering"],
            "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]}, "radius_km": 25, "active": True}


_LATER = (datetime.now(UTC) + timedelta(days=1)).isoformat()

# One entry per endpoint: (actor, method, url, valid body, {forbidden field: value sent}).
Endpoint = tuple[str, str, str, Callable[[dict[str, Any]], dict[str, Any]], dict[str, Any]]
ENDPOINTS: list[Endpoint] = [
    ("customer", "post", "/api/v1/needs", lambda s: need_data(), {
        "status": "completed", "customer_id": 1, "owner": 1, "offer_count": 0,
        "accepted_offer_id": 1, "id": 5, "cancelled_by_id": 1, "created_at": _LATER,
        "customer": {"name": "x"}, "rating": 5}),
    ("pro_a", "patch", "/api/v1/offers/{offer_a}", lambda s: {"message": "Revised"}, {
        "status": "accepted", "need_id": 1, "provider_id": 1, "id": 5,
        "provider": {"handle": "x"}}),
    ("pro_c", "post", "/api/v1/needs/{need}/offers", lambda s: {"message": "Me too"}, {
        "status": "accepted", "id": 5, "need_id": 1, "provider_id": 1}),
    ("pro_a", "put", "/api/v1/me/provider", lambda s: _profile(s["pro_a"]), {
        "reputation": {"count": 100, "mean": 5.0}, "rating": 5, "ratings": [], "score": 5.0,
        "completed_jobs": 99, "id": 5, "user_id": 1, "created_at": _LATER}),
    ("customer", "patch", "/api/v1/me", lambda s: {"name": "Renamed"}, {
        "id": 5, "email": "x@example.com", "provider": None, "reputation": {}}),
    ("anonymous", "post", "/api/v1/users",
     lambda s: {"email": "new@example.com", "password": "long enough pw", "name": "New"},
     {"id": 5, "password_hash": "$argon2id$x"}),
    ("customer", "post", "/api/v1/needs/{need}/cancel", lambda s: {"reason": "Because"}, {
        "status": "completed", "cancelled_by": "provider", "id": 5}),
    ("customer", "post", "/api/v1/needs/{done}/rating", lambda s: {"stars": 4}, {
        "provider_id": 1, "id": 5, "reputation": {"score": 5.0}}),
]


@pytest.fixture
def actors(scene, make_provider, make_offer, make_need, client):
    """The scene plus a third matched provider without an offer and a completed job."""
    customer = scene["customer"]
    done = make_need(customer)
    lifecycle.accept(customer.user, make_offer(done, make_provider()).id)
    lifecycle.complete(customer.user, done.id)
    return {**scene, "pro_c": make_provider(), "done": done, "client": client}


def _url(template: str, s: dict[str, Any]) -> str:
    return template.format(need=s["need"].id, offer_a=s["offer_a"].id, done=s["done"].id)


@pytest.mark.parametrize("actor, method, url, body, forbidden", ENDPOINTS,
                         ids=[f"{e[1]} {e[2]}" for e in ENDPOINTS])
def test_privileged_fields_are_rejected_and_nothing_changes(actors, actor, method, url, body,
                                                            forbidden):
    caller = actors["client"] if actor == "anonymous" else actors[actor]
    before = committed_state()
    for field, value in forbidden.items():
        r = getattr(caller, method)(_url(url, actors), json={**body(actors), field: value})
        assert r.status_code == 422, (field, r.get_json())
        error = error_of(r)
        assert set(error["fields"]) == {field}, error  # the rest of the body was valid
        assert field in error["message"]
    assert committed_state() == before


BODILESS = [
    ("customer", "/api/v1/needs/{need}/complete", {"status": "cancelled"}),
    ("customer", "/api/v1/offers/{offer_a}/accept", {"status": "declined"}),
    ("pro_a", "/api/v1/offers/{offer_a}/withdraw", {"status": "accepted"}),
]


@pytest.mark.parametrize("actor, url, payload", BODILESS, ids=[b[1] for b in BODILESS])
def test_bodiless_actions_reject_fields_too(actors, actor, url, payload):
    if "complete" in url:
        lifecycle.accept(actors["customer"].user, actors["offer_a"].id)
    before = committed_state()
    r = actors[actor].post(_url(url, actors), json=payload)
    assert r.status_code == 422, r.get_json()
    assert "status" in error_of(r)["fields"]
    assert committed_state() == before
    # The same action with an empty body, or none at all, does what it says.
    r = actors[actor].post(_url(url, actors), json={})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == {"complete": "completed", "accept": "accepted",
                                      "withdraw": "withdrawn"}[url.rsplit("/", 1)[1]]


def test_status_cannot_be_set_through_the_service_create(app, make_user):
    customer = make_user()
    need = needs.create(customer.user, need_data(status="completed", offer_count=7,
                                                 accepted_offer_id=3, customer_id=999))
    assert need.status.value == "open" and need.offer_count == 0
    assert need.accepted_offer_id is None and need.customer_id == customer.user.id


def test_offer_count_is_counted_not_trusted(scene):
    r = scene["customer"].get(f"/api/v1/needs/{scene['need'].id}")
    assert r.get_json()["offer_count"] == 2
    offers.withdraw(scene["pro_b"].user, scene["offer_b"].id)
    r = scene["customer"].get(f"/api/v1/needs/{scene['need'].id}")
    assert r.get_json()["offer_count"] == 1


def test_unknown_nested_fields_are_rejected_too(make_user):
    customer = make_user()
    before = committed_state()
    r = customer.post("/api/v1/needs", json=need_data(
        location={"lat": 1.0, "lon": 1.0, "approximate": False}))
    assert r.status_code == 422
    assert "approximate" in error_of(r)["fields"]["location"]
    r = customer.post("/api/v1/needs", json=need_data(
        budget={"amount": 100, "currency": "USD", "minor_units": 2}))
    assert r.status_code == 422
    assert "minor_units" in error_of(r)["fields"]["budget"]
    assert committed_state() == before
