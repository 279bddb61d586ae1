"""The web app's live client follows the delivery protocol (docs/events.md, "Delivery without
loss"): a notification that never came live (a gap in its seqs) is fetched by a replay, without
a reload, and the page's resume point is its last contiguous seq; a `resync` after Redis was
away brings what the page missed with no later event to reveal it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from browser import Person, expect, make_provider
from conftest import AUSTIN, message_data, migrated, migrated_sqlite, throwaway_pg_database
from flask import Flask
from live import Api, server
from live import LiveServer as Server
from test_delivery import Redis

from marketplace.extensions import db
from marketplace.notifications.outbox import notify

pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Flask]]:
    """A server process, and an app on the same database: what it commits is stored but never
    emitted live (no server process hears of it), as if the live path had lost it."""
    url, app = migrated_sqlite(tmp_path_factory, "webgap")
    with server(url, EXPIRY_INTERVAL_SECONDS="3600") as base:
        yield base, app
    with app.app_context():
        db.engine.dispose()


def post_need(customer: Api, title: str) -> None:
    r = customer.call("POST", "/needs", json={
        "title": title, "category": "catering", "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 20, "budget": {"amount": 20000, "currency": "USD"}})
    assert r.status_code == 201, r.text


def last_seq(page: Any) -> Any:
    return page.evaluate("() => document.body.dataset.lastSeq")


def test_the_page_fills_a_gap_in_its_seqs_with_a_replay(chromium: Any,
                                                        world: tuple[str, Flask]) -> None:
    base, app = world
    customer = Api(base, f"gap-cust-{uuid.uuid4().hex[:6]}@example.com")
    provider = Person(chromium, base, make_provider(base, AUSTIN, "Gail Gap"))
    try:
        page = provider.page
        page.goto("/feed")
        provider.live()
        assert last_seq(page) == "0"
        received: list[Any] = []
        page.expose_function("recordNotification", lambda note: received.append(note))
        page.evaluate("""() => document.addEventListener("mkt:notification",
            (e) => window.recordNotification({id: e.detail.id, seq: e.detail.seq}))""")
        post_need(customer, "Lunch for ten")  # seq 1, live
        page.wait_for_function("() => document.body.dataset.lastSeq === '1'")
        with app.app_context():  # seq 2: stored, never emitted
            notify([provider.api.user["id"]], "message.received",
                   message_data("Lost on the way"))
            db.session.commit()
            db.session.remove()
        post_need(customer, "Dinner for two")  # seq 3, live: the page sees 2 missing
        page.wait_for_function("() => document.body.dataset.lastSeq === '3'", timeout=10_000)
        # the feed shows the two needs itself; the bell counts only the message it does not
        expect(page.locator("#bell-count")).to_have_text("1")
        assert sorted(n["seq"] for n in received) == [1, 2, 3], received
        assert len({n["id"] for n in received}) == 3, "each one handed to the page once"
        # A reload renders the same resume point the client had reached.
        page.reload()
        provider.live()
        assert last_seq(page) == "3"
    finally:
        provider.close()


def test_the_page_catches_up_on_resync_after_redis_was_away(chromium: Any) -> None:
    """The page is on process A; while Redis is down a need is posted through B, so nothing
    reaches the page and nothing after it reveals a gap. When Redis is back the page is told
    to resync, replays, and shows it, without a reload."""
    queue = Redis()
    queue.start()
    try:
        with throwaway_pg_database("mkt_webresync") as url:
            migrated(url)
            env = {"REDIS_URL": queue.url, "SOCKETIO_CHANNEL": f"web-{uuid.uuid4().hex}",
                   "EXPIRY_INTERVAL_SECONDS": "3600"}
            a, b = Server(url, **env), Server(url, **env)
            try:
                a.start()
                b.start()
                customer = Api(b.base, f"rs-cust-{uuid.uuid4().hex[:6]}@example.com")
                provider = Person(chromium, a.base, make_provider(a.base, AUSTIN, "Rita Resync"))
                try:
                    page = provider.page
                    page.goto("/feed")
                    provider.live()
                    page.evaluate("window.sameDocument = true")
                    page.evaluate("""() => { window.reconnected = 0; document.addEventListener(
                        "mkt:reconnected", () => { window.reconnected += 1; }); }""")
                    post_need(customer, "Heard live")  # through B, over Redis
                    page.wait_for_function("() => document.body.dataset.lastSeq === '1'")
                    queue.kill()
                    post_need(customer, "Lost while Redis was away")  # B cannot publish it
                    queue.start()
                    page.wait_for_function("() => document.body.dataset.lastSeq === '2'",
                                           timeout=20_000)
                    expect(page.get_by_role("link", name="Lost while Redis was away")).to_be_visible()
                    # (the feed shows both needs itself: nothing for the bell to count)
                    expect(page.locator("#bell-count")).to_be_hidden()
                    assert page.evaluate("window.sameDocument === true"), "no reload"
                    page.wait_for_function("() => window.reconnected >= 1")  # pages re-read
                finally:
                    provider.close()
            finally:
                a.close()
                b.close()
    finally:
        queue.kill()
