"""The trends page in a real browser: the chart redraws on its own when new needs change the
answer (static/trends.js), with no reload and no console error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from browser import Person, expect, make_provider
from conftest import AUSTIN, migrated_sqlite
from live import Api, server

pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def trends_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url, _app = migrated_sqlite(tmp_path_factory, "trends-browser")
    with server(url, EXPIRY_INTERVAL_SECONDS="3600", TRENDS_MIN_CUSTOMERS="2",
                TRENDS_REFRESH_SECONDS="1", RATE_LIMIT_TRENDS="100000 per hour") as base:
        yield base


def post(base: str, title: str) -> None:
    customer = Api(base, f"cust-{uuid.uuid4().hex[:6]}@example.com")
    r = customer.call("POST", "/needs", json={
        "title": title, "category": "catering", "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]},
        "radius_km": 20, "budget": {"amount": 20000, "currency": "USD"}})
    assert r.status_code == 201, r.text


def test_the_chart_redraws_when_new_needs_change_the_ranking(chromium: Any,
                                                             trends_url: str) -> None:
    viewer = Person(chromium, trends_url, make_provider(trends_url, AUSTIN, "Trend Watcher"))
    try:
        page = viewer.page
        page.goto("/trends?kind=intent&tag=kayak")
        expect(page.locator("#trends-focus")).to_contain_text("Too few people")
        page.evaluate("() => { window.sameDocument = true; }")
        post(trends_url, "A ?kayak please")
        post(trends_url, "Any ?Kayak for rent?")  # the second person: over the floor
        bar = page.locator('#trends-intents g[data-tag="?kayak"]')
        expect(bar).to_have_count(1, timeout=15000)
        expect(bar).to_have_class("focus")
        expect(page.locator("#trends-focus")).to_have_count(0)
        assert page.evaluate("() => window.sameDocument === true")  # swapped, not reloaded
        assert viewer.errors == []
    finally:
        viewer.close()
