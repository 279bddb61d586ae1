"""The web app in a real browser (headless Chromium driven by playwright) against a real
server process: two people, two browser contexts, everything live."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from browser import ARTIFACTS, DESKTOP, PHONE, Person, expect, make_provider
from conftest import AUSTIN
from live import Api

pytest.importorskip("playwright.sync_api")
FAR = (32.7767, -96.7970)


def test_the_whole_loop_live_in_two_browsers(chromium: Any, base_url: str) -> None:
    customer = Person(chromium, base_url, Api(base_url, f"cust-{uuid.uuid4().hex[:6]}@example.com",
                                             name="Carmen Customer"),
                      geolocation={"latitude": AUSTIN[0], "longitude": AUSTIN[1]},
                      permissions=["geolocation"])
    near_api = make_provider(base_url, (AUSTIN[0] + 0.02, AUSTIN[1] - 0.02), "Nora Nearby")
    far_api = make_provider(base_url, FAR, "Fred Faraway")
    provider = Person(chromium, base_url, near_api, viewport=DESKTOP)
    faraway = Person(chromium, base_url, far_api)
    people = (customer, provider, faraway)
    title = f"Paella for 12 people {uuid.uuid4().hex[:4]}"
    try:
        for person in (provider, faraway):
            person.page.goto("/feed")
            person.live()

        page = customer.page
        page.goto("/needs/new")
        customer.shot("post-need")
        page.get_by_label("Title").fill(title)
        page.get_by_label("Details").fill("Seafood paella, we have the pans.")
        page.get_by_label("Category").select_option("catering")
        page.get_by_label("Budget").fill("350")
        page.get_by_role("button", name="Use my location").click()
        expect(page.get_by_label("Latitude")).to_have_value(re.compile(r"^30\.2"))
        page.get_by_label("How far may a provider come?").fill("20")
        expect(page.locator("#reach")).to_contain_text("1 provider is in reach")
        page.get_by_label("Exact address").fill("12 Rainey St, Austin")
        page.get_by_role("button", name="Post my need").click()
        expect(page.get_by_role("heading", name=title)).to_be_visible()
        customer.live()

        # The provider in range sees it appear without reloading.
        expect(provider.page.get_by_role("link", name=title)).to_be_visible()
        # The feed shows the need itself: the bell does not count it as unread elsewhere.
        expect(provider.page.locator("#bell-count")).to_be_hidden()
        provider.shot("feed")
        provider.page.get_by_role("link", name=title).click()
        expect(provider.page.get_by_role("heading", name=title)).to_be_visible()
        expect(provider.page.get_by_text("12 Rainey St")).to_have_count(0)
        provider.live()
        provider.page.get_by_label(re.compile("Your price")).fill("320")
        provider.page.get_by_label("Message to the customer").fill("Paella Valenciana, gluten free.")
        provider.page.get_by_role("button", name="Send offer").click()
        expect(provider.page.get_by_role("heading", name="Your offer")).to_be_visible()
        provider.live()

        # The customer sees the offer arrive live.
        offer = page.locator(".offer", has_text="Nora Nearby")
        expect(offer).to_be_visible()
        expect(offer).to_contain_text("$320.00")
        customer.shot("need-with-offer")

        # They talk.
        offer.locator("summary", has_text="Messages").click()
        offer.get_by_label("Write a message").fill("Can you bring a vegan pan too?")
        offer.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_text("Can you bring a vegan pan too?")).to_be_visible()
        customer.live()
        expect(provider.page.get_by_text("Can you bring a vegan pan too?")).to_be_visible()
        provider.page.get_by_label("Write a message").fill("Yes, no extra charge.")
        provider.page.get_by_role("button", name="Send", exact=True).click()
        provider.live()
        expect(page.get_by_text("Yes, no extra charge.")).to_be_visible()

        # Accept: only now does the provider see the address and contact details.
        page.get_by_role("button", name="Accept offer from Nora Nearby").click()
        page.locator("dialog.confirm").get_by_role("button", name="Accept offer").click()
        expect(page.locator(".offer", has_text="Nora Nearby")).to_contain_text("accepted")
        customer.live()
        expect(provider.page.get_by_text("You got the job.")).to_be_visible()
        expect(provider.page.get_by_text("Address: 12 Rainey St, Austin")).to_be_visible()
        provider.shot("job-accepted")

        # Complete and rate.
        page.get_by_role("button", name="Mark the job completed").click()
        page.locator("dialog.confirm").get_by_role("button", name="Mark as done").click()
        page.locator("label[for=star-5]").click()
        page.get_by_label("Quality").select_option("5")
        page.get_by_label("What was it like?").fill("Best paella in Austin.")
        page.get_by_role("button", name="Publish rating").click()
        expect(page.get_by_text("Best paella in Austin.")).to_be_visible()
        customer.shot("need-rated")

        # The provider's public profile shows the new rating.
        handle = near_api.call("GET", "/me").json()["provider"]["handle"]
        page.goto(f"/p/{handle}")
        expect(page.get_by_text("Best paella in Austin.")).to_be_visible()
        customer.shot("provider-profile")

        # The provider out of range never saw it, live or on reload.
        expect(faraway.page.get_by_text(title)).to_have_count(0)
        faraway.page.reload()
        expect(faraway.page.get_by_text(title)).to_have_count(0)
        faraway.shot("feed-empty")

        for person in people:
            assert person.errors == [], person.errors
    finally:
        for person in people:
            person.close()


def test_form_errors_are_shown_next_to_their_fields(chromium: Any, base_url: str) -> None:
    person = Person(chromium, base_url, Api(base_url, f"err-{uuid.uuid4().hex[:6]}@example.com"))
    try:
        page = person.page
        page.goto("/needs/new")
        page.get_by_label("Title").fill("x")
        page.get_by_label("Budget").fill("lots")
        page.get_by_label("…or a place name").fill("Nowhereville Zzyzx")
        page.get_by_role("button", name="Post my need").click()
        expect(page.locator("#e-title")).to_contain_text("3 to 120 characters")
        expect(page.locator("#e-category")).to_contain_text("Choose a category")
        expect(page.locator("#e-budget")).to_contain_text("Enter an amount")
        expect(page.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
        person.shot("post-need-errors")
        page.get_by_label("Title").fill("Fix my sink")
        page.get_by_label("Category").select_option("plumbing")
        page.get_by_label("Budget").fill("80")
        page.get_by_role("button", name="Post my need").click()
        expect(page.locator("#e-place_query")).to_contain_text("No place called")
        assert person.errors == [], person.errors
    finally:
        person.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_screenshots_of_the_main_pages(chromium: Any, base_url: str,
                                       viewport: dict[str, int]) -> None:
    api = make_provider(base_url, AUSTIN, "Sam Screens")
    customer_api = Api(base_url, f"shot-{uuid.uuid4().hex[:6]}@example.com", name="Shay Shots")
    r = customer_api.call("POST", "/needs", json={
        "title": "Office lunch for 15", "category": "catering",
        "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]}, "radius_km": 20,
        "budget": {"amount": 18000, "currency": "USD"}})
    assert r.status_code == 201
    person = Person(chromium, base_url, api, viewport=viewport)
    anonymous = chromium.new_context(viewport=viewport, base_url=base_url).new_page()
    try:
        for path, name in (("/", "home"), ("/needs", "my-needs"), ("/feed", "feed"),
                           ("/jobs", "my-jobs"), ("/provider", "provider-setup"),
                           ("/notifications", "notifications"), ("/account/tokens", "tokens")):
            person.page.goto(path)
            person.shot(name)
        response = person.page.goto("/no-such-page")
        assert response is not None and response.status == 404
        person.shot("not-found")
        # Chromium logs every 404 document as a console error; that one is the point here.
        assert [e for e in person.errors if "404" not in e] == []
        person.errors.clear()
        share = customer_api.call("GET", f"/needs/{r.json()['id']}")
        assert share.status_code == 200
        for path, name in (("/", "home-anonymous"), ("/signup", "signup"), ("/signin", "signin")):
            anonymous.goto(path)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            size = "phone" if viewport["width"] < 600 else "desktop"
            anonymous.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"), full_page=True)
        assert person.errors == [], person.errors
    finally:
        anonymous.context.close()
        person.close()


def test_a_feed_on_screen_greys_out_a_need_the_moment_it_closes(chromium: Any,
                                                               base_url: str) -> None:
    customer = Api(base_url, f"cust-{uuid.uuid4().hex[:6]}@example.com", name="Cleo Customer")
    watcher = Person(chromium, base_url,
                     make_provider(base_url, (AUSTIN[0] + 0.01, AUSTIN[1]), "Wendy Watcher"))
    winner = make_provider(base_url, (AUSTIN[0] - 0.01, AUSTIN[1]), "Will Winner")
    try:
        watcher.page.goto("/feed")
        watcher.live()
        needs = []
        for title in ("Taken lunch", "Cancelled lunch"):
            r = customer.call("POST", "/needs", json={
                "title": f"{title} {uuid.uuid4().hex[:4]}", "category": "catering",
                "location": {"lat": AUSTIN[0], "lon": AUSTIN[1]}, "radius_km": 20,
                "budget": {"amount": 20000, "currency": "USD"}})
            assert r.status_code == 201, r.text
            needs.append(r.json())
        cards = [watcher.page.locator(f"#need-{n['id']}") for n in needs]
        for card in cards:
            expect(card.get_by_role("button", name=re.compile("Take it at"))).to_be_visible()

        offer = winner.call("POST", f"/needs/{needs[0]['id']}/offers", json={}).json()
        r = customer.call("POST", f"/offers/{offer['id']}/accept",
                          json={"revision": offer["revision"]})
        assert r.status_code == 200, r.text
        expect(cards[0]).to_contain_text("Assigned: this need no longer takes offers.")
        expect(cards[0].get_by_role("button", name=re.compile("Take it at"))).to_have_count(0)
        expect(cards[1].get_by_role("button", name=re.compile("Take it at"))).to_be_visible()
        assert customer.call("POST", f"/needs/{needs[1]['id']}/cancel", json={}).status_code == 200
        expect(cards[1]).to_contain_text("Cancelled by the customer.")
        watcher.shot("feed-closed")
        assert watcher.errors == [], watcher.errors
    finally:
        watcher.close()
