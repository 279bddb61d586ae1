"""Tag subscriptions and @mentions delivered live: a real server process, real Socket.IO
clients (tests/live.py), as tests/test_realtime.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import AUSTIN, migrated, migrated_sqlite, throwaway_pg_database
from live import Api, Listener, server

FAR = (32.7767, -96.7970)  # Dallas: ~300 km from Austin


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, _app = migrated_sqlite(tmp_path_factory, "signals-live")
    with server(url, EXPIRY_INTERVAL_SECONDS="3600") as base:
        yield base


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def each_backend_url(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server process on each database backend."""
    if request.param == "sqlite":
        url, _app = migrated_sqlite(tmp_path_factory, "signals-live-edit")
        with server(url, EXPIRY_INTERVAL_SECONDS="3600") as base:
            yield base
        return
    with throwaway_pg_database("mkt_signals_live") as url:
        migrated(url)
        with server(url, EXPIRY_INTERVAL_SECONDS="3600") as base:
            yield base


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def provider(base: str, *, where: tuple[float, float] = AUSTIN, radius: float = 25,
             tags: list[str] = (), category: str = "plumbing") -> tuple[Api, str]:
    api = Api(base, unique("pro"))
    handle = "p" + uuid.uuid4().hex[:10]
    r = api.call("PUT", "/me/provider", json={
        "handle": handle, "display_name": "Live Pro", "categories": [category],
        "base": {"lat": where[0], "lon": where[1]}, "radius_km": radius, "active": True,
        "tags": list(tags)})
    assert r.status_code == 200, r.text
    return api, handle


def post_need(customer: Api, title: str, *, where: tuple[float, float] = AUSTIN,
              category: str = "catering", description: str = "") -> dict[str, Any]:
    r = customer.call("POST", "/needs", json={
        "title": title, "description": description, "category": category,
        "location": {"lat": where[0], "lon": where[1]}, "radius_km": 30,
        "budget": {"amount": 10000, "currency": "USD"}})
    assert r.status_code == 201, r.text
    return r.json()


def matched(need_id: int) -> Any:
    return lambda e: e["type"] == "need.matched" and e["data"]["need"]["id"] == need_id


def test_a_subscribed_provider_in_range_hears_of_an_intent_outside_their_categories(
        live_url: str) -> None:
    customer = Api(live_url, unique("cust"))
    near, _ = provider(live_url, tags=["?Kayak"])
    far, _ = provider(live_url, where=FAR, radius=100, tags=["?kayak"])
    listeners = {"near": Listener(live_url, auth={"token": near.token}),
                 "far": Listener(live_url, auth={"token": far.token})}
    try:
        need = post_need(customer, "Renting a ?kayak on Saturday")
        event = listeners["near"].until(matched(need["id"]))[-1]
        assert event["data"]["need"]["direct"] is False
        # A sentinel that does reach the far provider (their category, their town): anything
        # about the first need would have come before it.
        sentinel = post_need(customer, "Sentinel", where=FAR, category="plumbing")
        before = listeners["far"].until(matched(sentinel["id"]))
        assert [e for e in before if e["data"].get("need", {}).get("id") == need["id"]] == []
    finally:
        for listener in listeners.values():
            listener.close()


def test_a_mentioned_provider_far_away_hears_of_it_as_a_direct_ask(live_url: str) -> None:
    customer = Api(live_url, unique("cust"))
    far, handle = provider(live_url, where=FAR, radius=5)
    listener = Listener(live_url, auth={"token": far.token})
    try:
        need = post_need(customer, "Catering", description=f"Could @{handle} do it?")
        event = listener.until(matched(need["id"]))[-1]
        assert event["data"]["need"]["direct"] is True
    finally:
        listener.close()


def test_a_tag_added_by_an_edit_reaches_a_subscriber_in_range_live_once(
        each_backend_url: str) -> None:
    base = each_backend_url
    customer = Api(base, unique("cust"))
    near, _ = provider(base, tags=["?kayak"])
    far, _ = provider(base, where=FAR, radius=100, tags=["?kayak"])
    blocked, blocked_handle = provider(base, tags=["?kayak"])
    assert customer.call("PUT", f"/me/blocks/{blocked_handle}").status_code in (200, 204)
    listeners = {"near": Listener(base, auth={"token": near.token}),
                 "far": Listener(base, auth={"token": far.token}),
                 "blocked": Listener(base, auth={"token": blocked.token})}
    try:
        need = post_need(customer, "Catering on Saturday")
        r = customer.call("PATCH", f"/needs/{need['id']}",
                          json={"description": "And a ?Kayak to get there"})
        assert r.status_code == 200, r.text
        event = listeners["near"].until(matched(need["id"]))[-1]
        assert event["data"]["need"]["direct"] is False
        assert event["data"]["need"]["title"] == "Catering on Saturday"
        listed = near.call("GET", "/notifications", params={"after": event["id"] - 1}).json()
        assert [(i["id"], i["data"]) for i in listed["items"]] == [(event["id"], event["data"])]
        # Saved again: nothing more. Sentinels that reach each of them (another customer's,
        # their trade, their town) come after anything about the need would have.
        customer.call("PATCH", f"/needs/{need['id']}", json={"title": "Catering, Saturday"})
        other = Api(base, unique("cust"))
        here = post_need(other, "Sentinel", category="plumbing")
        there = post_need(other, "Sentinel", where=FAR, category="plumbing")
        for name, sentinel in (("near", here), ("blocked", here), ("far", there)):
            before = listeners[name].until(matched(sentinel["id"]))
            assert [e for e in before
                    if e["data"].get("need", {}).get("id") == need["id"]] == [], name
    finally:
        for listener in listeners.values():
            listener.close()
