"""Contact only on acceptance over real Socket.IO: a real server process, real clients, the
events a provider gets live and what a reconnection from ``last_id=0`` replays."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import AUSTIN, migrated_sqlite
from live import Api, Listener, server
from test_contact_privacy import DESCRIPTION, MESSAGE, NAME, PHONE, TITLE, leaks


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, _app = migrated_sqlite(tmp_path_factory, "contact")
    with server(url, EXPIRY_INTERVAL_SECONDS="3600") as base:
        yield base


def provider(base: str) -> Api:
    api = Api(base, f"pro-{uuid.uuid4().hex[:8]}@example.com", name="Live Pro")
    r = api.call("PUT", "/me/provider", json={
        "handle": "p" + uuid.uuid4().hex[:10], "display_name": "Live Pro",
        "categories": ["catering"], "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 25, "active": True})
    assert r.status_code == 200, r.text
    return api


def is_message(offer_id: int) -> Any:
    return lambda e: e["type"] == "message.received" and e["data"]["offer_id"] == offer_id


def test_socket_events_live_and_replayed_carry_no_contact_until_acceptance(live_url: str):
    email = f"cora.marlowe.{uuid.uuid4().hex[:6]}@example.org"
    customer = Api(live_url, email, name=NAME)
    assert customer.call("PATCH", "/me", json={"phone": PHONE}).status_code == 200
    chosen, other = provider(live_url), provider(live_url)
    live = {name: Listener(live_url, auth={"token": api.token})
            for name, api in (("chosen", chosen), ("other", other))}
    try:
        r = customer.call("POST", "/needs", json={
            "title": TITLE, "description": DESCRIPTION, "category": "catering",
            "location": {"lat": 30.2712345, "lon": -97.7398765}, "radius_km": 30,
            "address": "742 Evergreen Terrace", "place": "742 Evergreen Terrace",
            "budget": {"amount": 10000, "currency": "USD"}})
        assert r.status_code == 201, r.text
        need_id = r.json()["id"]
        offers = {}
        for name, api in (("chosen", chosen), ("other", other)):
            r = api.call("POST", f"/needs/{need_id}/offers", json={})
            assert r.status_code == 201, r.text
            offers[name] = r.json()["id"]
            r = customer.call("POST", f"/offers/{offers[name]}/messages", json={"body": MESSAGE})
            assert r.status_code == 201, r.text
        got = {f"{name}, live": live[name].until(is_message(offers[name])) for name in live}
        for name, api in (("chosen", chosen), ("other", other)):
            again = Listener(live_url, auth={"token": api.token, "last_id": 0})
            try:
                got[f"{name}, replayed"] = again.until(is_message(offers[name]))
            finally:
                again.close()
        found = {label: leaks(json.dumps(events)) + [email] * (email in json.dumps(events))
                 for label, events in got.items()}
        assert {label: f for label, f in found.items() if f} == {}
        assert all("[phone hidden until you accept]" in json.dumps(events)
                   for events in got.values())

        r = customer.call("POST", f"/offers/{offers['chosen']}/accept", json={"revision": 1})
        assert r.status_code == 200, r.text
        r = customer.call("POST", f"/offers/{offers['chosen']}/messages",
                          json={"body": "Now call me: 512-555-0147"})
        assert r.status_code == 201, r.text
        after = live["chosen"].until(is_message(offers["chosen"]))
        assert after[-1]["data"]["body"] == "Now call me: 512-555-0147"
        declined = live["other"].until(lambda e: e["type"] == "offer.declined")
        assert leaks(json.dumps(declined)) == []
    finally:
        for listener in live.values():
            listener.close()
