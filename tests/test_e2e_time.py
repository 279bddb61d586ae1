"""Times typed into the web forms, in a real browser set to a time zone, are stored at that
zone's hour on the day chosen — east and west of UTC, at half-hour offsets, and across a DST
change between today (December) and the date typed (June 2031).

The expected UTC values are written out by hand, not computed with the code under test."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import pytest
from browser import DESKTOP, Person, expect, make_provider
from conftest import AUSTIN
from live import Api

pytest.importorskip("playwright.sync_api")

NEEDED_BY, AVAILABLE, REVISED = "2031-06-14T18:30", "2031-06-14T17:00", "2031-06-15T09:15"

# zone -> the UTC instants of NEEDED_BY, AVAILABLE and REVISED typed in that zone.
ZONES = {
    # CDT (-5) in June; CST (-6) today.
    "America/Chicago": ("2031-06-14T23:30", "2031-06-14T22:00", "2031-06-15T14:15"),
    # IST (+5:30) all year.
    "Asia/Kolkata": ("2031-06-14T13:00", "2031-06-14T11:30", "2031-06-15T03:45"),
    # CEST (+2) in June; CET (+1) today.
    "Europe/Berlin": ("2031-06-14T16:30", "2031-06-14T15:00", "2031-06-15T07:15"),
    # ACST (+9:30) in the southern winter; ACDT (+10:30) today.
    "Australia/Adelaide": ("2031-06-14T09:00", "2031-06-14T07:30", "2031-06-14T23:45"),
}
ALIASES = {"Asia/Kolkata": "Asia/Calcutta"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text + "+00:00")


@pytest.mark.parametrize("zone", list(ZONES))
def test_times_are_stored_at_the_hour_typed_in_the_browsers_zone(chromium: Any, base_url: str,
                                                                 zone: str) -> None:
    needed_utc, available_utc, revised_utc = (utc(t) for t in ZONES[zone])
    customer = Person(chromium, base_url,
                      Api(base_url, f"tz-{uuid.uuid4().hex[:6]}@example.com", name="Tess Zone"),
                      timezone_id=zone)
    pro_api = make_provider(base_url, (AUSTIN[0] + 0.01, AUSTIN[1]), "Theo Times")
    provider = Person(chromium, base_url, pro_api, viewport=DESKTOP, timezone_id=zone)
    try:
        # Chromium's ICU may name a zone by its older alias (Asia/Calcutta): the server takes both.
        assert customer.page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") \
            in (zone, ALIASES.get(zone))
        page = customer.page
        page.goto("/needs/new")
        page.get_by_label("Title").fill(f"Dinner at {zone}")
        page.get_by_label("Category").select_option("catering")
        page.get_by_label("Budget").fill("300")
        page.get_by_label("…or a place name").fill("Austin, TX")
        page.get_by_label("Needed by").fill(NEEDED_BY)
        page.get_by_role("button", name="Post my need").click()
        expect(page.get_by_role("heading", name=f"Dinner at {zone}")).to_be_visible()
        need_id = int(re.search(r"/needs/(\d+)", page.url).group(1))  # type: ignore[union-attr]
        need = customer.api.call("GET", f"/needs/{need_id}").json()
        assert datetime.fromisoformat(need["needed_by"]) == needed_utc, (zone, need["needed_by"])

        # An offer from the need page...
        page = provider.page
        page.goto(f"/needs/{need_id}")
        page.get_by_label(re.compile("Your price")).fill("280")
        page.get_by_label("When you can do it").fill(AVAILABLE)
        page.get_by_role("button", name="Send offer").click()
        expect(page.get_by_role("heading", name="Your offer")).to_be_visible()
        offer = pro_api.call("GET", "/offers").json()["items"][0]
        assert datetime.fromisoformat(offer["available_at"]) == available_utc, (zone, offer)

        # ...revised from the feed card.
        page.goto("/feed")
        card = page.locator(f"#need-{need_id}")
        card.get_by_text("Revise your offer").click()
        card.get_by_label("When you can do it").fill(REVISED)
        card.get_by_role("button", name="Save changes").click()
        expect(page.get_by_text("Offer revised.")).to_be_visible()
        offer = pro_api.call("GET", f"/offers/{offer['id']}").json()
        assert datetime.fromisoformat(offer["available_at"]) == revised_utc, (zone, offer)
        assert offer["revision"] == 2 and offer["price"]["amount"] == 28000

        for person in (customer, provider):
            assert person.errors == [], person.errors
    finally:
        customer.close()
        provider.close()
