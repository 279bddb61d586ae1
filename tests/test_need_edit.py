"""Editing an open need (``PATCH /api/v1/needs/{id}``, ``lifecycle.edit``): only its customer,
only while open, bad input named and nothing changed, ``If-Match`` against its ETag, providers
with an offer told (``need.updated``), a newly @mentioned provider sent it, and the trend
counters the sum of the needs as they read now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import committed_rows, committed_state, error_of, need_data
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
