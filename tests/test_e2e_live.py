"""Live pages in a real browser when the connection is not perfect: cut, server restarted,
WebSocket refused. Every page says it is reconnecting while down and then catches up on what
it missed, without a reload. Also the keyboard on the star rating."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from browser import ARTIFACTS, Person, expect, make_provider
from conftest import AUSTIN, migrated
from flask import Flask
from live import Api, free_port, server

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.messages import services as messages
from marketplace.offers import services as offers
from marketplace.realtime.events import REPLAY_PAGE

pytest.importorskip("playwright.sync_api")
RECONNECTING = "Reconnecting…"
MESSAGES = REPLAY_PAGE + 50  # the catch-up takes two replay pages


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}@example.com"


def post_need(customer: Api, title: str) -> dict[str, Any]:
    r = customer.call("POST", "/needs", json={
        "title": title, "category": "catering", "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 20, "budget": {"amount": 20000, "currency": "USD"}})
    assert r.status_code == 201, r.text
    return r.json()


def live_status(page: Any) -> Any:
    return page.get_by_role("status").and_(page.locator("#live-status"))


def keep_document(page: Any) -> None:
    """Mark the document, so that a test can tell a reload (or navigation) happened."""
    page.evaluate("window.sameDocument = true")


def same_document(page: Any) -> bool:
    return page.evaluate("window.sameDocument === true")


def record_toasts(page: Any) -> None:
    """Keep the text of every toast the page shows (they go away on their own)."""
    page.evaluate("""() => {
        window.toastLog = [];
        new MutationObserver((changes) => changes.forEach((change) => change.addedNodes
            .forEach((node) => window.toastLog.push(node.textContent))))
            .observe(document.getElementById("toasts"), { childList: true });
    }""")


def toasts(page: Any) -> list[str]:
    return page.evaluate("window.toastLog")


def page_errors(person: Person) -> list[str]:
    """Console errors other than the failed requests a cut connection is bound to log."""
    network = ("Failed to load resource", "WebSocket connection", "net::ERR_")
    return [e for e in person.errors if not any(n in e for n in network)]


def test_the_feed_catches_up_on_a_need_posted_while_it_was_offline(chromium: Any,
                                                                 base_url: str) -> None:
    customer = Api(base_url, unique("cust"), name="Olive Customer")
    provider = Person(chromium, base_url, make_provider(base_url, AUSTIN, "Otto Offline"))
    title = f"Birthday cake for thirty, {uuid.uuid4().hex[:4]}"
    try:
        page = provider.page
        page.goto("/feed")
        provider.live()
        keep_document(page)
        expect(live_status(page)).to_have_text("")
        provider.context.set_offline(True)
        expect(live_status(page)).to_have_text(RECONNECTING, timeout=15_000)
        expect(live_status(page)).to_be_visible()
        provider.shot("feed-reconnecting")

        need = post_need(customer, title)  # the page cannot hear this one live
        provider.context.set_offline(False)

        card = page.locator(f"#need-{need['id']}")
        expect(card.get_by_role("link", name=title)).to_be_visible()
        expect(card).to_have_class(re.compile(r"\bis-new\b"))
        expect(page.locator("#feed-unread")).to_have_text("1 new")
        expect(page.locator("#bell-count")).to_be_hidden()  # the feed shows it: not unread
        expect(live_status(page)).to_have_text("")
        expect(live_status(page)).to_be_hidden()
        assert same_document(page), "caught up without a reload"
        # Caught up, it is live again: the next need arrives as it is posted.
        later = post_need(customer, f"Tea for two {uuid.uuid4().hex[:4]}")
        expect(page.locator(f"#need-{later['id']}")).to_be_visible()
        expect(page.locator("#bell-count")).to_be_hidden()
        assert page_errors(provider) == [], provider.errors
    finally:
        provider.close()


@pytest.fixture
def restartable(tmp_path: Any) -> Iterator[tuple[str, int, Flask]]:
    """A migrated SQLite file, a fixed port to start servers on, and an app on the same file
    (what another process, such as a CLI command, would write with)."""
    url = f"sqlite:///{tmp_path / 'restart.sqlite3'}"
    app = migrated(url)
    yield url, free_port(), app
    with app.app_context():
        db.engine.dispose()


def test_the_need_page_and_my_needs_catch_up_after_the_server_restarts(
        chromium: Any, restartable: tuple[str, int, Flask]) -> None:
    url, port, app = restartable
    first = ExitStack()
    base = first.enter_context(server(url, port=port, EXPIRY_INTERVAL_SECONDS="3600"))
    customer_api = Api(base, unique("cust"), name="Rosa Restart")
    pro = make_provider(base, AUSTIN, "Ravi Returns")
    need = post_need(customer_api, f"Catering while we were away {uuid.uuid4().hex[:4]}")
    customer = Person(chromium, base, customer_api)
    try:
        need_page, my_needs = customer.page, customer.context.new_page()
        need_page.goto(f"/needs/{need['id']}")
        customer.live()
        my_needs.goto("/needs")
        my_needs.wait_for_function("() => window.Nearby.socket && window.Nearby.socket.connected")
        count = my_needs.locator(f'[data-offer-count="{need["id"]}"]')
        expect(count).to_have_text("0")
        for page in (need_page, my_needs):
            keep_document(page)
            record_toasts(page)
            # Socket.IO starts on long-polling and upgrades: a server that dies while the
            # upgrade's probe is out leaves engine.io's polling paused, so the page hears of it
            # only at the ping timeout (~45 s). Stop the server once both pages are upgraded.
            page.wait_for_function("""() => window.Nearby.socket.io.engine.transport.name
                === "websocket" && !window.Nearby.socket.io.engine.upgrading""")
        first.close()  # the server process stops
        # The server process is gone: both pages say so.
        for page in (need_page, my_needs):
            expect(live_status(page)).to_have_text(RECONNECTING, timeout=15_000)
        # While it is down, another process commits an offer and a long thread on it: more
        # notifications than one replay page holds.
        with app.app_context():
            pro_user = db.session.get(User, pro.user["id"])
            offer_id = offers.make(pro_user, need["id"],
                                   {"message": "Made while the server was down"}).id
            for i in range(MESSAGES):
                messages.send(pro_user, offer_id, f"Message {i + 1} of {MESSAGES}")
            db.session.remove()
        with server(url, port=port, EXPIRY_INTERVAL_SECONDS="3600"):
            reconnect = {"timeout": 20_000}  # Socket.IO's back-off: up to ~7.5 s a try
            offer = need_page.locator(".offer", has_text="Ravi Returns")
            expect(offer).to_be_visible(**reconnect)
            expect(offer).to_contain_text("Made while the server was down")
            expect(count).to_have_text("1", **reconnect)
            expect(my_needs.locator(f"#need-{need['id']}")).to_contain_text("1 offer")
            for page in (need_page, my_needs):
                expect(live_status(page)).to_have_text("", **reconnect)
                assert same_document(page), "caught up without a reload"
            last = offer.locator(".bubble", has_text=f"Message {MESSAGES} of {MESSAGES}")
            expect(last).to_have_count(1, **reconnect)
            expect(offer.locator(".bubble")).to_have_count(MESSAGES)
            # The need page shows them itself (its bell skips them); My needs counts them.
            expect(need_page.locator("#bell-count")).to_be_hidden()
            expect(my_needs.locator("#bell-count")).to_have_text(str(MESSAGES + 1))
            # The need page shows it all itself; My needs sums it up in one toast.
            assert toasts(need_page) == []
            assert toasts(my_needs) == [f"{MESSAGES + 1} new notifications"]
            assert page_errors(customer) == [], customer.errors
    finally:
        customer.close()
        first.close()


def test_live_events_arrive_over_long_polling_when_websocket_is_refused(chromium: Any,
                                                                       base_url: str) -> None:
    customer = Api(base_url, unique("cust"), name="Paula Polling")
    provider = Person(chromium, base_url, make_provider(base_url, AUSTIN, "Percy Proxy"))
    refused: list[str] = []

    def refuse(ws: Any) -> None:
        refused.append(ws.url)
        ws.close()

    try:
        page = provider.page
        page.route_web_socket(re.compile(r"/socket\.io/"), refuse)
        page.goto("/feed")
        provider.live()
        title = f"Lunch over polling {uuid.uuid4().hex[:4]}"
        need = post_need(customer, title)
        expect(page.locator(f"#need-{need['id']}").get_by_role("link", name=title)).to_be_visible()
        expect(live_status(page)).to_have_text("")
        assert refused, "the page tried WebSocket"
        assert page.evaluate("window.Nearby.socket.io.engine.transport.name") == "polling"
        assert page_errors(provider) == [], provider.errors
    finally:
        provider.close()


def test_the_star_rating_follows_the_arrow_keys(chromium: Any, base_url: str) -> None:
    customer_api = Api(base_url, unique("cust"), name="Stella Stars")
    pro = make_provider(base_url, AUSTIN, "Kim Keys")
    need = post_need(customer_api, f"Keyboard catering {uuid.uuid4().hex[:4]}")
    offer = pro.call("POST", f"/needs/{need['id']}/offers", json={}).json()
    assert customer_api.call("POST", f"/offers/{offer['id']}/accept",
                             json={"revision": offer["revision"]}).status_code == 200
    assert customer_api.call("POST", f"/needs/{need['id']}/complete", json={}).status_code == 200
    customer = Person(chromium, base_url, customer_api)
    try:
        page = customer.page
        page.goto(f"/needs/{need['id']}")
        stars = page.get_by_role("group", name="Stars").get_by_role("radio")
        names = [f"{n} star{'' if n == 1 else 's'}" for n in range(1, 6)]
        expect(stars).to_have_count(5)
        for i, name in enumerate(names):  # a screen reader hears them in order
            expect(stars.nth(i)).to_have_accessible_name(name)

        def chosen(n: int) -> None:
            expect(stars.nth(n - 1)).to_be_checked()
            expect(stars.nth(n - 1)).to_be_focused()

        stars.nth(2).focus()
        page.keyboard.press("Space")
        chosen(3)
        for key, n in (("ArrowRight", 4), ("ArrowUp", 5), ("ArrowUp", 5), ("ArrowRight", 5),
                       ("ArrowLeft", 4), ("ArrowDown", 3), ("ArrowDown", 2), ("ArrowLeft", 1),
                       ("ArrowDown", 1), ("ArrowUp", 2), ("ArrowRight", 3), ("ArrowRight", 4)):
            page.keyboard.press(key)
            chosen(n)
        lit = page.locator(".star-input label").evaluate_all(
            "labels => labels.map(l => getComputedStyle(l).color)")
        assert len(set(lit[:4])) == 1 and lit[4] != lit[0], lit  # four stars lit, one not
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.locator("#rate").screenshot(path=str(ARTIFACTS / "rating-keyboard.png"))
        page.get_by_role("button", name="Publish rating").click()
        expect(page.locator("#rating .stars")).to_have_attribute("aria-label",
                                                                 "4 out of 5 stars")
        assert customer.errors == [], customer.errors
    finally:
        customer.close()


def test_a_page_whose_session_ended_says_live_updates_stopped(chromium: Any,
                                                              base_url: str) -> None:
    person = Person(chromium, base_url, Api(base_url, unique("gone"), name="Gus Gone"))
    try:
        page = person.page
        page.goto("/needs")
        person.live()
        person.context.set_offline(True)
        expect(live_status(page)).to_have_text(RECONNECTING, timeout=15_000)
        person.context.clear_cookies()  # signed out elsewhere: the server will refuse it
        person.context.set_offline(False)
        expect(live_status(page)).to_have_text(
            "Live updates stopped. Reload the page to see what is new.")
        assert page.evaluate("window.Nearby.socket.active") is False, "it stopped trying"
        assert page_errors(person) == [], person.errors
    finally:
        person.close()
