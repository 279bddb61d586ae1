"""Editing an open need (``PATCH /api/v1/needs/{id}``, ``lifecycle.edit``): only its customer,
only while open, bad input named and nothing changed, ``If-Match`` against its ETag, providers
with an offer told (``need.updated``), a newly @mentioned provider and a subscriber to a newly
written tag sent it (live: tests/test_signals_live.py), and the trend counters the sum of the
needs as they read now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import AUSTIN, committed_rows, committed_state, error_of, need_data
from sqlalchemy import select

from marketplace import lifecycle
from marketplace.extensions import db
from marketplace.needs.models import NeedRecipient
from marketplace.notifications.models import Notification
from marketplace.signals.models import NeedTag, TrendHit

FAR = (32.7767, -96.7970)  # Dallas, ~300 km


def url(need: Any) -> str:
    return f"/api/v1/needs/{need.id}"


def told(person: Any, type_: str) -> list[dict[str, Any]]:
    rows = committed_rows(Notification, user_id=person.user.id, type=type_)
    return [json.loads(r["data"]) if isinstance(r["data"], str) else r["data"] for r in rows]


def test_the_customer_edits_text_budget_and_dates_and_offerers_are_told(
        make_user: Any, make_need: Any, make_offer: Any, make_provider: Any) -> None:
    customer = make_user()
    need = make_need(customer)
    offering, withdrawn, matched_only = make_provider(), make_provider(), make_provider()
    make_offer(need, offering)
    lifecycle_offer = make_offer(need, withdrawn)
    withdrawn.post(f"/api/v1/offers/{lifecycle_offer.id}/withdraw")
    needed_by = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    r = customer.patch(url(need), json={
        "title": "Catering for 30 people", "description": "Now with dessert, call 512 555 0199",
        "budget": {"amount": 55000, "currency": "USD"}, "needed_by": needed_by.isoformat()})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["title"], body["description"], body["budget"]["amount"]) == (
        "Catering for 30 people", "Now with dessert, call 512 555 0199", 55000)
    assert datetime.fromisoformat(body["needed_by"]) == needed_by
    assert body["edited_at"] is not None and r.headers["ETag"]
    assert customer.get(url(need)).get_json() == body
    [payload] = told(offering, "need.updated")
    assert payload["need"]["title"] == "Catering for 30 people"
    assert payload["need"]["budget"] == {"amount": 55000, "currency": "USD"}
    assert "address" not in payload["need"] and "description" not in payload["need"]
    assert told(withdrawn, "need.updated") == [] and told(matched_only, "need.updated") == []
    assert told(customer, "need.updated") == []
    # What a provider reads of the edited text has the phone number masked, as before.
    seen = offering.get(url(need)).get_json()
    assert "512 555 0199" not in seen["description"] and seen["edited_at"] == body["edited_at"]


def test_only_the_customer_edits(make_user: Any, make_need: Any, make_offer: Any,
                                 make_provider: Any) -> None:
    need = make_need()
    pro = make_provider()
    make_offer(need, pro)
    stranger = make_user()
    before = committed_state()
    assert pro.patch(url(need), json={"title": "Mine now"}).status_code == 403
    assert stranger.patch(url(need), json={"title": "Mine now"}).status_code == 404
    assert committed_state() == before


@pytest.mark.parametrize("end", ["accept", "cancel"])
def test_only_while_open(make_user: Any, make_need: Any, make_offer: Any, end: str) -> None:
    customer = make_user()
    need = make_need(customer)
    offer = make_offer(need)
    if end == "accept":
        lifecycle.accept(customer.user, offer.id)
    else:
        lifecycle.cancel(customer.user, need.id, None)
    before = committed_state()
    r = customer.patch(url(need), json={"title": "Too late now"})
    assert r.status_code == 409
    state = "assigned" if end == "accept" else "cancelled"
    assert error_of(r)["message"] == (
        f"This need is {state}; you can only edit a need that is open.")
    assert committed_state() == before


@pytest.mark.parametrize(("patch", "field"), [
    ({"title": "ab"}, "title"),
    ({"title": None}, "title"),
    ({"description": "x" * 5001}, "description"),
    ({"budget": {"amount": 0, "currency": "USD"}}, "budget"),
    ({"budget": {"amount": 100, "currency": "EUR"}}, "budget"),
    ({"needed_by": "2001-01-01T00:00:00Z"}, "needed_by"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_at": (datetime.now(UTC) + timedelta(days=40)).isoformat()}, "expires_at"),
    ({"category": "plumbing"}, "category"),
])
def test_bad_input_names_the_field_and_changes_nothing(make_user: Any, make_need: Any,
                                                       patch: dict[str, Any],
                                                       field: str) -> None:
    customer = make_user()
    need = make_need(customer)
    before = committed_state()
    r = customer.patch(url(need), json=patch)
    assert r.status_code == 422, r.get_json()
    assert field in error_of(r)["fields"]
    assert committed_state() == before


def test_if_match_names_the_version_read(make_user: Any, make_need: Any) -> None:
    customer = make_user()
    need = make_need(customer)
    etag = customer.get(url(need)).headers["ETag"]
    first = customer.patch(url(need), json={"title": "First change"},
                           headers={"If-Match": etag})
    assert first.status_code == 200, first.get_json()
    before = committed_state()
    stale = customer.patch(url(need), json={"title": "Second change"},
                           headers={"If-Match": etag})
    assert stale.status_code == 412
    assert "If-Match" in error_of(stale)["fields"]
    assert committed_state() == before
    current = customer.get(url(need)).headers["ETag"]
    assert current == first.headers["ETag"]
    again = customer.patch(url(need), json={"title": "Second change"},
                           headers={"If-Match": current})
    assert again.status_code == 200 and again.get_json()["title"] == "Second change"


def test_a_mention_added_reaches_that_provider_and_one_removed_stops(
        make_user: Any, make_provider: Any) -> None:
    first = make_provider(categories=("plumbing",), base=FAR, radius_km=5, handle="first-pro")
    later = make_provider(categories=("plumbing",), base=FAR, radius_km=5, handle="later-pro")
    customer = make_user()
    need = customer.post("/api/v1/needs", json=need_data(
        description="Could @first-pro do it?")).get_json()
    path = f"/api/v1/needs/{need['id']}"
    assert later.get(path).status_code == 404
    r = customer.patch(path, json={"description": "Could @later-pro do it instead?"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["mentions"] == ["later-pro"]
    assert [(p["need"]["id"], p["need"]["direct"]) for p in told(later, "need.matched")] == [
        (need["id"], True)]
    assert later.get(path).get_json()["viewer_role"] == "matched_provider"
    assert first.get(path).status_code == 404  # no longer mentioned, never offered
    assert len(told(first, "need.matched")) == 1  # told once, when it was posted
    # Saving again with the same mention tells nobody twice.
    customer.patch(path, json={"title": "Catering for 25 people"})
    assert len(told(later, "need.matched")) == 1
    rows = db.session.scalars(select(NeedRecipient).where(
        NeedRecipient.need_id == need["id"])).all()
    assert [(r.provider_id, r.via) for r in rows] == [(later.provider.id, "mention")]


def trend_counts() -> dict[tuple[str, str], int]:
    return {(r["kind"], r["tag"]): r["needs"] for r in committed_rows(TrendHit)}


def test_trends_count_the_needs_as_they_read_now(make_user: Any, make_need: Any) -> None:
    customer = make_user()
    need = make_need(customer, title="A ?caterer for #wedding", description="#outdoor too")
    make_need(customer, title="Another #wedding")
    assert trend_counts() == {("intent", "caterer"): 1, ("topic", "wedding"): 2,
                              ("topic", "outdoor"): 1}
    r = customer.patch(url(need), json={"description": "#garden and @someone-else"})
    assert r.status_code == 200, r.get_json()
    assert trend_counts() == {("intent", "caterer"): 1, ("topic", "wedding"): 2,
                              ("topic", "garden"): 1}
    customer.patch(url(need), json={"title": "A plain title"})
    assert trend_counts() == {("topic", "wedding"): 1, ("topic", "garden"): 1}
    tags = db.session.scalars(select(NeedTag).where(NeedTag.need_id == need.id)
                              .order_by(NeedTag.position)).all()
    assert [(t.kind, t.tag) for t in tags] == [("topic", "garden"), ("mention", "someone-else")]


def subscribe(person: Any, tags: list[str]) -> None:
    p = person.provider
    r = person.put("/api/v1/me/provider", json={
        "handle": p.handle, "display_name": p.display_name, "bio": "",
        "categories": [c.slug for c in p.categories],
        "base": {"lat": p.base_lat, "lon": p.base_lon}, "radius_km": p.radius_km,
        "active": p.active, "tags": tags})
    assert r.status_code == 200, r.get_json()


def matched_ids(person: Any) -> list[tuple[int, bool]]:
    return [(p["need"]["id"], p["need"]["direct"]) for p in told(person, "need.matched")]


def test_a_tag_added_reaches_its_subscribers_in_reach_once(
        make_user: Any, make_provider: Any) -> None:
    near = make_provider(categories=("plumbing",))
    far = make_provider(categories=("plumbing",), base=FAR, radius_km=100)
    blocked = make_provider(categories=("plumbing",))
    inactive = make_provider(categories=("plumbing",))
    serving = make_provider(categories=("catering",))  # told when it was posted
    topical = make_provider(categories=("plumbing",))
    for pro in (near, far, blocked, inactive, serving):
        subscribe(pro, ["?kayak"])
    subscribe(topical, ["#river"])
    inactive.put("/api/v1/me/provider", json={
        "handle": inactive.provider.handle, "display_name": "Resting", "bio": "",
        "categories": ["plumbing"], "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 25, "active": False, "tags": ["?kayak"]})
    customer = make_user()
    assert customer.put(f"/api/v1/me/blocks/{blocked.provider.handle}").status_code in (200, 204)
    need = customer.post("/api/v1/needs", json=need_data()).get_json()
    path = f"/api/v1/needs/{need['id']}"
    assert matched_ids(near) == [] and near.get(path).status_code == 404
    assert matched_ids(serving) == [(need["id"], False)]

    r = customer.patch(path, json={"description": "And a ?Kayak for the #river"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["intents"] == ["kayak"]
    assert matched_ids(near) == [(need["id"], False)]
    assert matched_ids(topical) == [(need["id"], False)]
    [item] = [i for i in near.get("/api/v1/notifications").get_json()["items"]
              if i["type"] == "need.matched"]
    assert item["data"]["need"]["id"] == need["id"]
    assert item["data"]["need"]["distance_band"]
    assert near.get(path).get_json()["viewer_role"] == "matched_provider"
    assert [n["id"] for n in near.get("/api/v1/feed").get_json()["items"]] == [need["id"]]
    assert matched_ids(far) == [] and far.get(path).status_code == 404
    assert matched_ids(blocked) == [] and blocked.get(path).status_code == 404
    assert matched_ids(inactive) == []
    assert matched_ids(serving) == [(need["id"], False)]  # not twice
    assert matched_ids(customer) == []

    # Saving again, dropping the tag and writing it back: nobody is told twice.
    customer.patch(path, json={"title": "Catering for 25 people"})
    customer.patch(path, json={"description": "No boats after all"})
    customer.patch(path, json={"description": "A ?kayak and the #river again"})
    assert matched_ids(near) == [(need["id"], False)]
    assert matched_ids(topical) == [(need["id"], False)]
    rows = db.session.scalars(select(NeedRecipient).where(
        NeedRecipient.need_id == need["id"])).all()
    assert sorted((r.provider_id, r.via) for r in rows) == sorted(
        [(near.provider.id, "tag"), (topical.provider.id, "tag")])


def test_a_provider_no_longer_mentioned_is_not_told_again_by_a_tag(
        make_user: Any, make_provider: Any) -> None:
    pro = make_provider(categories=("plumbing",), handle="kayak-pro")
    subscribe(pro, ["?kayak"])
    other = make_provider(categories=("plumbing",))
    subscribe(other, ["?kayak"])
    customer = make_user()
    need = customer.post("/api/v1/needs", json=need_data(
        description="Could @kayak-pro do it?")).get_json()
    path = f"/api/v1/needs/{need['id']}"
    assert matched_ids(pro) == [(need["id"], True)]
    r = customer.patch(path, json={"description": "Who has a ?kayak?"})
    assert r.status_code == 200, r.get_json()
    assert matched_ids(pro) == [(need["id"], True)]  # told once, when it was mentioned
    assert pro.get(path).get_json()["viewer_role"] == "matched_provider"  # now by the tag
    assert matched_ids(other) == [(need["id"], False)]


def test_a_provider_with_an_offer_is_told_of_the_edit_not_sent_it_again(
        make_user: Any, make_provider: Any, make_need: Any, make_offer: Any) -> None:
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    make_offer(need, pro)
    subscribe(pro, ["?kayak"])
    pro.put("/api/v1/me/provider", json={  # serves another trade now, subscribed to ?kayak
        "handle": pro.provider.handle, "display_name": "Pro", "bio": "",
        "categories": ["plumbing"], "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 25, "active": True, "tags": ["?kayak"]})
    r = customer.patch(url(need), json={"description": "A ?kayak too"})
    assert r.status_code == 200, r.get_json()
    assert len(told(pro, "need.updated")) == 1
    assert matched_ids(pro) == []  # it is no news to them


def test_a_tag_added_to_a_need_sent_to_favourites_reaches_no_subscriber(
        make_user: Any, make_provider: Any, make_need: Any, make_offer: Any) -> None:
    customer = make_user()
    fav = make_provider()
    make_offer(make_need(customer), fav)
    assert customer.put(f"/api/v1/me/providers/{fav.provider.handle}",
                        json={"favourite": True}).status_code == 200
    subscriber = make_provider(categories=("plumbing",))
    subscribe(subscriber, ["?kayak"])
    need = make_need(customer, audience="favourites")
    r = customer.patch(url(need), json={"description": "A ?kayak too"})
    assert r.status_code == 200, r.get_json()
    assert matched_ids(subscriber) == []
    assert subscriber.get(url(need)).status_code == 404


def test_the_web_edit_page_sends_a_tag_added_to_its_subscribers(
        make_user: Any, make_provider: Any, make_need: Any, auth: Any) -> None:
    near = make_provider(categories=("plumbing",))
    far = make_provider(categories=("plumbing",), base=FAR, radius_km=100)
    subscribe(near, ["?kayak"])
    subscribe(far, ["?kayak"])
    customer = make_user()
    need = make_need(customer)
    web = auth.sign_in(customer)
    r = web.post(f"/needs/{need.id}/edit", data={
        "title": need.title, "description": "Bring a ?kayak", "budget": "400.00"})
    assert r.status_code == 302, r.get_data(as_text=True)
    assert matched_ids(near) == [(need.id, False)]
    assert matched_ids(far) == []
