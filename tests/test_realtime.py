"""Live delivery end to end: real server processes, real Socket.IO clients, real Redis."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
from conftest import AUSTIN, migrated, migrated_sqlite, throwaway_pg_database
from live import Api, Listener, server

FAR = (32.7767, -96.7970)  # Dallas: ~300 km from Austin


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, _app = migrated_sqlite(tmp_path_factory, "live")
    with server(url, EXPIRY_INTERVAL_SECONDS="3600") as base:
        yield base


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def provider(base: str, *, category: str = "catering", where: tuple[float, float] = AUSTIN,
             radius: float = 25) -> Api:
    api = Api(base, unique("pro"))
    r = api.call("PUT", "/me/provider", json={
        "handle": "p" + uuid.uuid4().hex[:10], "display_name": "Live Pro",
        "categories": [category], "base": {"lat": where[0], "lon": where[1]},
        "radius_km": radius, "active": True})
    assert r.status_code == 200, r.text
    return api


def post_need(customer: Api, *, category: str = "catering",
              where: tuple[float, float] = AUSTIN, title: str = "Live need") -> dict[str, Any]:
    r = customer.call("POST", "/needs", json={
        "title": title, "category": category, "location": {"lat": where[0], "lon": where[1]},
        "radius_km": 30, "budget": {"amount": 10000, "currency": "USD"}})
    assert r.status_code == 201, r.text
    return r.json()


def matched(need_id: int) -> Any:
    return lambda e: e["type"] == "need.matched" and e["data"]["need"]["id"] == need_id


def test_matching_provider_gets_need_live_others_do_not(live_url: str) -> None:
    customer = Api(live_url, unique("cust"))
    near = provider(live_url)
    far = provider(live_url, where=FAR)
    other_trade = provider(live_url, category="plumbing")
    listeners = {name: Listener(live_url, auth={"token": api.token})
                 for name, api in (("near", near), ("far", far), ("other", other_trade))}
    try:
        need = post_need(customer)
        event = listeners["near"].until(matched(need["id"]))[-1]
        assert set(event) == {"id", "seq", "type", "created_at", "text", "data"}
        assert event["data"]["need"]["location"]["approximate"] is True
        assert "address" not in event["data"]["need"]
        # Sentinels that *do* reach the others; anything about the first need would come first.
        far_need = post_need(customer, where=FAR, title="Sentinel far")
        plumbing_need = post_need(customer, category="plumbing", title="Sentinel plumbing")
        before_far = listeners["far"].until(matched(far_need["id"]))
        before_other = listeners["other"].until(matched(plumbing_need["id"]))
        assert [e for e in before_far + before_other
                if e["data"].get("need", {}).get("id") == need["id"]] == []
    finally:
        for listener in listeners.values():
            listener.close()


def test_customer_sees_offer_arrive_live(live_url: str) -> None:
    customer = Api(live_url, unique("cust"))
    pro = provider(live_url)
    listener = Listener(live_url, auth={"token": customer.token})
    try:
        need = post_need(customer)
        r = pro.call("POST", f"/needs/{need['id']}/offers",
                     json={"price": {"amount": 9000, "currency": "USD"}, "message": "Me!"})
        assert r.status_code == 201, r.text
        event = listener.until(lambda e: e["type"] == "offer.received")[-1]
        assert event["data"]["offer"]["id"] == r.json()["id"]
        assert event["data"]["offer"]["price"] == {"amount": 9000, "currency": "USD"}
    finally:
        listener.close()


def test_an_open_feed_hears_at_once_that_a_need_closed(live_url: str) -> None:
    customer = Api(live_url, unique("cust"))
    pro = provider(live_url)
    listener = Listener(live_url, auth={"token": pro.token})
    try:
        taken, dropped = post_need(customer), post_need(customer)
        other = provider(live_url)
        r = other.call("POST", f"/needs/{taken['id']}/offers", json={})
        assert r.status_code == 201, r.text
        r = customer.call("POST", f"/offers/{r.json()['id']}/accept", json={"revision": 1})
        assert r.status_code == 200, r.text
        assert listener.closed.get(timeout=10) == {"need_id": taken["id"], "status": "assigned"}
        assert customer.call("POST", f"/needs/{dropped['id']}/cancel", json={}).status_code == 200
        assert listener.closed.get(timeout=10) == {"need_id": dropped["id"],
                                                   "status": "cancelled"}
    finally:
        listener.close()


def test_offline_provider_gets_all_missed_events_once_in_order(live_url: str) -> None:
    customer = Api(live_url, unique("cust"))
    pro = provider(live_url)
    first = Listener(live_url, auth={"token": pro.token})
    warmup = post_need(customer, title="Seen live")
    last_seen = first.until(matched(warmup["id"]))[-1]["id"]
    first.close()
    missed = [post_need(customer, title=f"Missed {i}")["id"] for i in range(50)]
    again = Listener(live_url, auth={"token": pro.token, "last_id": last_seen})
    try:
        replayed = again.until(matched(missed[-1]), timeout=20)
        sentinel = post_need(customer, title="After reconnect")
        tail = again.until(matched(sentinel["id"]))
    finally:
        again.close()
    events = replayed + tail
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(ids) == len(set(ids)), "in order, exactly once"
    assert [e["data"]["need"]["id"] for e in replayed] == missed
    assert all(e["id"] > last_seen for e in events)


def test_rest_catch_up_matches_socket_stream(live_url: str) -> None:
    customer = Api(live_url, unique("cust"))
    pro = provider(live_url)
    listener = Listener(live_url, auth={"token": pro.token})
    try:
        need = post_need(customer)
        live_event = listener.until(matched(need["id"]))[-1]
    finally:
        listener.close()
    r = pro.call("GET", "/notifications", params={"after": live_event["id"] - 1})
    assert r.status_code == 200
    item = r.json()["items"][0]
    assert item["id"] == live_event["id"] and item["data"] == live_event["data"]
    assert r.json()["unread_count"] == 1  # a new provider: that need, unread


def test_unauthenticated_and_bad_tokens_are_refused(live_url: str) -> None:
    for auth in (None, {"token": "mkt_not-a-token"}, {"token": 42}):
        client = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(live_url, auth=auth, transports=["websocket"], wait_timeout=5)
        assert not client.connected
    pro = provider(live_url)
    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(live_url, auth={"token": pro.token, "last_id": "abc"},
                       transports=["websocket"], wait_timeout=5)


def test_web_session_cookie_authenticates_the_socket(live_url: str) -> None:
    customer = Api(live_url, unique("cust"))
    pro = Api(live_url, unique("webpro"))
    pro.call("PUT", "/me/provider", json={
        "handle": "w" + uuid.uuid4().hex[:10], "display_name": "Web Pro",
        "categories": ["catering"], "base": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 25})
    browser = pro.sign_in_to_pages()
    cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
    listener = Listener(live_url, headers={"Cookie": cookie})
    try:
        need = post_need(customer)
        assert listener.until(matched(need["id"]))[-1]["type"] == "need.matched"
    finally:
        listener.close()


@pytest.fixture(scope="module")
def shared_pg_url() -> Iterator[str]:
    with throwaway_pg_database("mkt_live") as url:
        migrated(url)
        yield url


def test_event_crosses_processes_through_redis(redis_url: str, shared_pg_url: str) -> None:
    env = {"REDIS_URL": redis_url, "SOCKETIO_CHANNEL": f"test-{uuid.uuid4().hex}",
           "EXPIRY_INTERVAL_SECONDS": "3600"}
    with server(shared_pg_url, **env) as process_a, server(shared_pg_url, **env) as process_b:
        customer = Api(process_b, unique("cust"))
        pro = provider(process_b)
        listener = Listener(process_a, auth={"token": pro.token})
        try:
            need = post_need(customer)  # handled by process B
            event = listener.until(matched(need["id"]))[-1]
            assert event["data"]["need"]["title"] == "Live need"
        finally:
            listener.close()


def test_a_process_is_subscribed_before_anyone_connects(redis_url: str,
                                                      shared_pg_url: str) -> None:
    """Events another process publishes reach this one from its start, not from its first
    connection on (python-socketio subscribes then: what was published meanwhile was lost
    to its first clients)."""
    import redis

    channel = f"test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url)
    try:
        with server(shared_pg_url, REDIS_URL=redis_url, SOCKETIO_CHANNEL=channel,
                    EXPIRY_INTERVAL_SECONDS="3600"):
            # serving, and no Socket.IO connection yet: the process waited for its
            # subscription to be live before it began to serve
            assert dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) == 1
    finally:
        client.close()


def test_a_live_connection_of_the_erased_user_is_closed(live_url: str) -> None:
    person = Api(live_url, "leaver-live@example.com")
    stays = Api(live_url, "stays-live@example.com")
    gone: queue.Queue[bool] = queue.Queue()
    listener = Listener(live_url, auth={"token": person.token})
    other = Listener(live_url, auth={"token": stays.token})
    listener.client.on("disconnect", lambda *a: gone.put(True))
    try:
        r = person.call("DELETE", "/me", json={"password": person.password})
        assert r.status_code == 204, r.text
        assert gone.get(timeout=10) is True
        assert not listener.client.connected
        assert other.client.connected
        # And it cannot come back with the old token.
        with pytest.raises(socketio.exceptions.ConnectionError):
            Listener(live_url, auth={"token": person.token})
    finally:
        other.close()
        if listener.client.connected:
            listener.close()
