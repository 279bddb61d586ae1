"""Provider web pages: set-up, the feed, my jobs, and the public profile (Flask test client).

A form sent back with errors answers 200 like every HTML form of the app (browsers log 4xx
documents as console errors); what matters is each error shown next to its field."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import AUSTIN
from pages import Node, dom, field_error
from sqlalchemy import func, select

from marketplace import lifecycle
from marketplace.extensions import db
from marketplace.offers import reputation
from marketplace.offers import services as offers
from marketplace.offers.models import Offer
from marketplace.providers import services as providers
from marketplace.providers.models import Provider
from marketplace.ratings import services as ratings
from marketplace.ratings.models import Rating

# --- helpers --------------------------------------------------------------------------------


def offset(km: float, bearing_deg: float = 0.0, origin: tuple[float, float] = AUSTIN
           ) -> tuple[float, float]:
    lat, lon = map(math.radians, origin)
    d, b = km / 6371.0088, math.radians(bearing_deg)
    lat2 = math.asin(math.sin(lat) * math.cos(d) + math.cos(lat) * math.sin(d) * math.cos(b))
    lon2 = lon + math.atan2(math.sin(b) * math.sin(d) * math.cos(lat),
                            math.cos(d) - math.sin(lat) * math.sin(lat2))
    return math.degrees(lat2), math.degrees(lon2)


def at(point: tuple[float, float]) -> dict[str, float]:
    return {"lat": point[0], "lon": point[1]}


def setup_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "handle": "best-caterer", "display_name": "Best Caterer", "bio": "Buffets.",
        "categories": ["catering", "events"], "place_query": "", "lat": "30.27",
        "lon": "-97.74", "radius_km": "30", "active": "1",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def provider_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Provider)) or 0


# --- login and the provider profile being required ------------------------------------------


@pytest.mark.parametrize("path", ["/provider", "/feed", "/jobs"])
def test_provider_pages_need_a_signed_in_user(client, path):
    r = client.get(path)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/signin?next=")


@pytest.mark.parametrize("path", ["/feed", "/jobs"])
def test_feed_and_jobs_send_a_user_without_a_profile_to_setup(make_user, auth, path):
    web = auth.sign_in(make_user())
    r = web.get(path)
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert location.path == "/provider" and parse_qs(location.query) == {"next": [path]}
    page = dom(web.get(r.headers["Location"]))
    assert "Set up your provider profile first" in page.find(cls="flashes").text()
    assert page.find("input", name="next").attrs["value"] == path


def test_nav_shows_provider_pages_only_to_providers(make_user, make_provider, auth):
    person = make_user()
    web = auth.sign_in(person)
    nav = dom(web.get("/")).find("nav", cls="main-nav")
    hrefs = {a.attrs["href"] for a in nav.find_all("a")}
    assert "/provider" in hrefs and "/feed" not in hrefs
    make_provider(person, handle="navtest")
    nav = dom(web.get("/")).find("nav", cls="main-nav")
    hrefs = {a.attrs["href"] for a in nav.find_all("a")}
    assert {"/feed", "/jobs"} <= hrefs
    assert dom(web.get("/")).find("a", href="/p/navtest") is not None


# --- set-up -----------------------------------------------------------------------------------


def test_setup_page_has_every_field_labelled(make_user, auth):
    page = dom(auth.sign_in(make_user(name="Ana Cook")).get("/provider"))
    form = page.by_id("provider-form")
    assert form.find("input", name="csrf_token") is not None
    # no locale told: en_US, so the radius box is in miles (tests/test_radius_units.py)
    for name in ("handle", "display_name", "bio", "place_query", "lat", "lon", "radius_mi"):
        control = form.find(name=name)
        assert control is not None, name
        assert form.find("label", for_=control.attrs["id"]) is not None, name
    assert form.find("input", name="display_name").attrs["value"] == "Ana Cook"
    boxes = form.find_all("input", name="categories")
    assert len(boxes) == 20 and all(b.parent.tag == "label" for b in boxes)
    assert not any("checked" in b.attrs for b in boxes)
    assert form.find("input", name="active").attrs.get("checked") is not None
    assert page.by_id("use-location").attrs["type"] == "button"
    assert page.find("script", src="/static/providers.js") is not None
    assert not [k for n in page.iter() for k in n.attrs if k.startswith("on")]  # no inline JS


def test_setup_preselects_the_category_from_the_link(make_user, auth):
    page = dom(auth.sign_in(make_user()).get("/provider?category=plumbing"))
    checked = {b.attrs["value"] for b in page.find_all("input", name="categories")
               if "checked" in b.attrs}
    assert checked == {"plumbing"}


def test_setup_prefills_an_existing_profile_and_adds_the_linked_category(make_user,
                                                                          make_provider, auth):
    person = make_provider(categories=("catering",), handle="ana-cooks", radius_km=12)
    person.patch("/api/v1/me", json={"distance_unit": "km"})
    page = dom(auth.sign_in(person).get("/provider?category=events"))
    assert page.find("input", name="handle").attrs["value"] == "ana-cooks"
    assert page.find("input", name="radius_km").attrs["value"] == "12"
    assert page.find("input", name="lat").attrs["value"] == f"{AUSTIN[0]:g}"
    checked = {b.attrs["value"] for b in page.find_all("input", name="categories")
               if "checked" in b.attrs}
    assert checked == {"catering", "events"}


def test_setup_shows_every_error_next_to_its_field(make_user, auth):
    web = auth.sign_in(make_user())
    r = web.post("/provider", data=setup_form(handle="No Good!", display_name="  ",
                                              categories=None, lat="95", lon="-97.7",
                                              radius_km="500", bio="x" * 2001))
    assert r.status_code == 200
    page = dom(r)
    assert "3-30 lower-case" in field_error(page, "handle")
    assert field_error(page, "display_name")
    assert field_error(page, "bio") == "Keep your introduction to 2000 characters or fewer."
    assert field_error(page, "categories") == "Choose at least one category."
    assert "90" in field_error(page, "lat")  # base.lat of the schema, shown at the lat input
    assert field_error(page, "lon") is None
    assert "100" in field_error(page, "radius_km")
    assert field_error(page, "place_query") is None
    # What was typed stays in the form.
    assert page.find("input", name="handle").attrs["value"] == "No Good!"
    assert page.find("input", name="lat").attrs["value"] == "95"
    assert page.by_id("coords").attrs.get("open") is not None
    assert provider_count() == 0


def test_setup_without_any_location_asks_for_one(make_user, auth):
    r = auth.sign_in(make_user()).post("/provider", data=setup_form(lat="", lon=""))
    assert r.status_code == 200
    page = dom(r)
    assert "Use your location" in field_error(page, "place_query")
    assert field_error(page, "handle") is None
    assert provider_count() == 0


def test_setup_with_half_the_coordinates_says_which_is_missing(make_user, auth):
    r = auth.sign_in(make_user()).post("/provider", data=setup_form(lat="30.2", lon=""))
    assert r.status_code == 200
    page = dom(r)
    assert field_error(page, "lon") == "Enter both latitude and longitude."
    assert field_error(page, "lat") is None


def test_setup_non_numeric_coordinates_and_radius(make_user, auth):
    r = auth.sign_in(make_user()).post("/provider", data=setup_form(lat="north", lon="nan",
                                                              radius_km="far"))
    assert r.status_code == 200
    page = dom(r)
    assert field_error(page, "lat") and field_error(page, "lon") and field_error(page, "radius_km")


def test_setup_unknown_place_name_is_an_error_at_the_place_field(make_user, auth):
    r = auth.sign_in(make_user()).post("/provider", data=setup_form(place_query="Xyzzyville, Nowhere"))
    assert r.status_code == 200
    assert "No place called" in field_error(dom(r), "place_query")
    assert provider_count() == 0


def test_setup_taken_handle_is_an_error_at_the_handle(make_user, make_provider, auth):
    make_provider(handle="best-caterer")
    r = auth.sign_in(make_user()).post("/provider", data=setup_form())
    assert r.status_code == 200
    assert field_error(dom(r), "handle") == "That handle is taken."
    assert provider_count() == 1


def test_setup_unknown_category_is_refused_and_nothing_is_left_behind(make_user, auth):
    person = make_user()
    web = auth.sign_in(person)
    r = web.post("/provider", data=setup_form(categories=["catering", "dragon-taming"]))
    assert r.status_code == 200
    assert "dragon-taming" in field_error(dom(r), "categories")
    assert provider_count() == 0
    assert providers.provider_of(person.user) is None
    assert web.get("/feed").status_code == 302  # still no profile


def test_setup_with_coordinates_creates_the_profile_and_goes_to_the_feed(make_user, auth):
    person = make_user()
    web = auth.sign_in(person)
    r = web.post("/provider", data=setup_form(handle="  Best-Caterer ", lat="30.2711",
                                              lon="-97.7437", active=None))
    assert r.status_code == 302 and r.headers["Location"] == "/feed"
    provider = providers.provider_of(person.user)
    assert provider.handle == "best-caterer"  # trimmed and lower-cased
    assert (provider.base_lat, provider.base_lon) == (30.2711, -97.7437)
    assert provider.radius_km == 30 and provider.active is False
    assert [c.slug for c in provider.categories] == ["catering", "events"]
    page = dom(web.get("/feed"))
    flash = page.find(cls="flashes").text()
    assert "set up as a provider" in flash and "paused" in flash
    assert "You are paused" in page.find(cls="notice").text()


def test_setup_with_a_place_name_resolves_it_on_the_server(make_user, auth):
    person = make_user()
    web = auth.sign_in(person)
    r = web.post("/provider", data=setup_form(place_query="Austin, TX", lat="1", lon="2"))
    assert r.status_code == 302
    provider = providers.provider_of(person.user)
    assert abs(provider.base_lat - AUSTIN[0]) < 0.1 and abs(provider.base_lon - AUSTIN[1]) < 0.1
    assert "Austin, TX, US" in dom(web.get("/feed")).find(cls="flashes").text()


def test_setup_updates_an_existing_profile(make_provider, auth):
    person = make_provider(handle="old-handle")
    web = auth.sign_in(person)
    r = web.post("/provider", data=setup_form(handle="new-handle", categories=["plumbing"]))
    assert r.status_code == 302
    db.session.expire_all()
    provider = providers.provider_of(person.user)
    assert provider.handle == "new-handle" and [c.slug for c in provider.categories] == ["plumbing"]
    assert provider_count() == 1


@pytest.mark.parametrize(("target", "expected"), [
    ("/needs/7", "/needs/7"),
    ("https://evil.example/x", "/feed"),
    ("//evil.example/x", "/feed"),
    ("/\\evil.example", "/feed"),
])
def test_setup_goes_back_to_next_only_within_the_site(make_user, auth, target, expected):
    web = auth.sign_in(make_user())
    r = web.post("/provider", data={**setup_form(), "next": target})
    assert r.status_code == 302 and r.headers["Location"] == expected


def test_setup_next_in_the_query_string_is_kept_in_the_form(make_user, auth):
    web = auth.sign_in(make_user())
    page = dom(web.get("/provider?category=catering&next=/needs/3"))
    assert page.find("input", name="next").attrs["value"] == "/needs/3"
    r = web.post("/provider?category=catering&next=/needs/3", data=setup_form())
    assert r.headers["Location"] == "/needs/3"


# --- feed -----------------------------------------------------------------------------------


@pytest.fixture
def feed_world(make_user, make_provider, make_need):
    """A caterer in Austin (25 km) and needs in and out of their reach."""
    pro = make_provider(make_user(name="Pat Provider"), categories=("catering",), radius_km=25,
                        handle="pat")
    customer = make_user(name="Carla Customer", email="carla@example.com", phone="+1 512 555 0100")
    near = make_need(customer, title="Tacos for 30", location=at(offset(3, 45)),
                     place="East Austin", address="12 Secret Lane")
    far = make_need(customer, title="Far away party", location=at(offset(60, 0)),
                    radius_km=100)
    other = make_need(customer, title="Fix my sink", category="plumbing")
    own = make_need(pro, title="My own catering need")
    closed = make_need(customer, title="Cancelled lunch")
    lifecycle.cancel(customer.user, closed.id, None)
    return {"pro": pro, "customer": customer, "near": near, "far": far, "other": other,
            "own": own, "closed": closed}


def test_feed_shows_only_matching_open_needs(feed_world, auth):
    r = auth.sign_in(feed_world["pro"]).get("/feed")
    assert r.status_code == 200
    page = dom(r)
    cards = page.by_id("feed-list").find_all("li", cls="feed-card")
    assert [c.attrs["id"] for c in cards] == [f"need-{feed_world['near'].id}"]
    assert page.by_id("feed-empty").attrs.get("hidden") is not None
    html = r.get_data(as_text=True)
    for key in ("far", "other", "own", "closed"):
        assert feed_world[key].title not in html


def test_feed_card_shows_the_need_with_approximate_location_only(feed_world, auth):
    near = feed_world["near"]
    r = auth.sign_in(feed_world["pro"]).get("/feed")
    html = r.get_data(as_text=True)
    card = dom(r).by_id(f"need-{near.id}")
    text = card.text()
    assert "Tacos for 30" in text and "Catering" in text
    assert "$400.00" in text
    # the place label is the geocoder's name of the cell (never "East Austin" as typed)
    assert near.place != "East Austin"
    assert near.place in text and "(approximate)" in text
    assert "1-3 mi from you" in text  # the 2-5 km band, for a US reader
    assert "0 offers" in text and "Open until" in text
    assert card.find("a", href=f"/needs/{near.id}") is not None
    # Never the address, the customer, or the true point.
    for secret in ("12 Secret Lane", "carla@example.com", "Carla", "555 0100",
                   f"{near.lat:.4f}", f"{near.lon:.4f}"):
        assert secret not in html, secret


def test_feed_card_without_a_place_name_names_the_grid_cell_s_town(make_user, make_provider,
                                                                   make_need, auth):
    pro = make_provider()
    need = make_need(location=at(offset(2, 90)), place=None)
    from marketplace.geo import grid_cell_centre

    cell = grid_cell_centre(need.lat, need.lon)
    text = dom(auth.sign_in(pro).get("/feed")).by_id(f"need-{need.id}").text()
    assert "near Austin, TX (approximate)" in text
    assert f"{cell.lat:.2f}" not in text and f"{need.lat:.2f}" not in text


def test_feed_card_offers_take_it_and_an_offer_form(feed_world, auth):
    near = feed_world["near"]
    card = dom(auth.sign_in(feed_world["pro"]).get("/feed")).by_id(f"need-{near.id}")
    forms = card.find_all("form")
    assert {f.attrs["action"] for f in forms} == {f"/needs/{near.id}/offers"}
    take = next(f for f in forms if f.find("input", name="take"))
    assert take.find("input", name="take").attrs["value"] == "1"
    assert take.find("input", name="next").attrs["value"] == f"/feed?acted={near.id}"
    assert take.find("button").text() == "Take it at $400.00"
    offer_form = next(f for f in forms if f.find("input", name="price"))
    assert offer_form.find("input", name="price").attrs["value"] == "400.00"
    for name in ("price", "message", "available_at"):
        control = offer_form.find(name=name)
        assert offer_form.find("label", for_=control.attrs["id"]) is not None
    for form in forms:
        assert form.find("input", name="csrf_token") is not None


def test_take_it_from_the_feed_makes_the_offer_and_comes_back_to_it(feed_world, auth):
    near = feed_world["near"]
    web = auth.sign_in(feed_world["pro"])
    r = web.post(f"/needs/{near.id}/offers", data={"take": "1", "next": f"/feed?acted={near.id}"})
    assert r.status_code == 302
    assert r.headers["Location"] == f"/feed?acted={near.id}#my-offer"
    offer = db.session.scalar(select(Offer).where(Offer.need_id == near.id))
    assert offer.price_amount == 40000
    card = dom(web.get(f"/feed?acted={near.id}")).by_id(f"need-{near.id}")
    assert card.find(id="my-offer") is not None  # the redirect's #my-offer lands on this card


def test_feed_shows_your_offer_with_revise_and_withdraw(feed_world, make_offer, auth):
    near = feed_world["near"]
    offer = make_offer(near, feed_world["pro"], amount=38050, message="Vegan too")
    web = auth.sign_in(feed_world["pro"])
    card = dom(web.get("/feed")).by_id(f"need-{near.id}")
    text = card.text()
    assert "Your offer" in text and "$380.50" in text and "Vegan too" in text
    assert "1 offer " in text + " "
    assert card.find("span", cls="pending") is not None
    assert card.find("input", name="take") is None
    revise = card.find("form", action=f"/offers/{offer.id}/revise")
    assert revise.find("input", name="price").attrs["value"] == "380.50"
    assert revise.find("input", name="next").attrs["value"] == f"/feed?acted={near.id}"
    withdraw = card.find("form", action=f"/offers/{offer.id}/withdraw")
    assert withdraw.find("input", name="next").attrs["value"] == "/feed"
    # And they work from here.
    r = web.post(f"/offers/{offer.id}/revise", data={"price": "390", "message": "Vegan too",
                                                      "next": f"/feed?acted={near.id}"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/feed?acted=")
    r = web.post(f"/offers/{offer.id}/withdraw", data={"next": "/feed"})
    assert r.status_code == 302 and r.headers["Location"] == "/feed"
    card = dom(web.get("/feed")).by_id(f"need-{near.id}")
    assert card.find("span", cls="withdrawn") is not None
    assert card.find("form") is None  # a withdrawn offer is final


def test_feed_of_a_paused_provider_is_empty_and_says_why(make_provider, make_need, auth):
    pro = make_provider(active=False)
    make_need()
    page = dom(auth.sign_in(pro).get("/feed"))
    assert page.by_id("feed-list").find("li") is None
    assert page.by_id("feed-empty").attrs.get("hidden") is None
    assert "You are paused" in page.text()


def test_feed_page_has_the_live_hooks(feed_world, auth):
    page = dom(auth.sign_in(feed_world["pro"]).get("/feed"))
    assert page.by_id("feed-list").attrs.get("data-live-feed") is not None
    badge = page.by_id("feed-unread")
    assert badge.tag == "button" and badge.attrs.get("hidden") is not None
    assert badge.parent.tag == "h1"
    assert page.by_id("feed-status").attrs["role"] == "status"
    card = page.by_id(f"need-{feed_world['near'].id}")
    assert card.find(cls="new-flag").attrs.get("hidden") is not None
    assert page.find("script", src="/static/providers.js") is not None


def test_a_new_need_is_in_the_announced_cards(feed_world, make_need, auth):
    """What providers.js does on need.matched: fetch the cards of the announced needs (the
    list's data-announced-url) and take each card by id."""
    web = auth.sign_in(feed_world["pro"])
    fresh = make_need(feed_world["customer"], title="Brunch for 12", location=at(offset(1, 180)))
    url = dom(web.get("/feed")).by_id("feed-list").attrs["data-announced-url"]
    page = dom(web.get(f"{url}?need={fresh.id}"))
    assert page.by_id(f"need-{fresh.id}") is not None


def _card_ids(response: Any) -> list[int]:
    return [int(c.attrs["id"].removeprefix("need-"))
            for c in dom(response).by_id("feed-list").find_all("li", cls="feed-card")]


def test_the_feed_page_pages_nearest_first_with_a_more_link(make_user, make_provider, make_need,
                                                            auth):
    """The page shows the first FEED_PAGE needs of the feed and links to the rest; walking the
    links shows every need once, in the API's order."""
    from marketplace.web.feed import FEED_PAGE

    pro = make_provider(radius_km=25)
    customer = make_user()
    for i in range(FEED_PAGE + 5):
        make_need(customer, location=at(offset((i * 0.7) % 24, i * 37)), title=f"Need no {i}")
    web = auth.sign_in(pro)
    first = web.get("/feed")
    page = dom(first)
    more = page.by_id("feed-more")
    assert len(_card_ids(first)) == FEED_PAGE and more.attrs["rel"] == "next"
    second = web.get(more.attrs["href"])
    assert dom(second).by_id("feed-more") is None
    assert "Back to the nearest" in dom(second).text()
    api = pro.get("/api/v1/feed", query_string={"limit": 100}).get_json()
    assert _card_ids(first) + _card_ids(second) == [item["id"] for item in api["items"]]


def test_a_mangled_more_link_starts_the_feed_again(make_provider, auth):
    r = auth.sign_in(make_provider()).get("/feed?cursor=forged")
    assert r.status_code == 302 and r.headers["Location"] == "/feed"


def test_a_far_new_need_is_announced_even_when_the_first_page_is_full(make_user, make_provider,
                                                                      make_need, auth):
    """The first page is the nearest band: a need posted farther out is not on it, but the
    announced-cards request the live page makes still renders it."""
    from marketplace.web.feed import FEED_PAGE

    pro = make_provider(radius_km=25)
    customer = make_user()
    for i in range(FEED_PAGE):
        make_need(customer, location=at(offset(0.5, i * 13)), title=f"Near no {i}")
    far = make_need(customer, title="Far but in reach", location=at(offset(20, 90)), radius_km=30)
    web = auth.sign_in(pro)
    assert far.id not in _card_ids(web.get("/feed"))
    assert _card_ids(web.get(f"/feed?need={far.id}")) == [far.id]


def test_announced_cards_show_only_needs_posted_to_this_provider(feed_world, make_user,
                                                                 make_provider, make_need,
                                                                 auth):
    """Asking for needs by id reveals nothing the feed would not show: another category, out
    of reach, closed, one's own, a blocker's, unknown ids — no card, no title."""
    pro = feed_world["pro"]
    blocker = make_user()
    blocked_need = make_need(blocker, title="From a blocker")
    r = blocker.put(f"/api/v1/me/blocks/{pro.provider.handle}")
    assert r.status_code == 200, r.get_json()
    hidden = [feed_world[k] for k in ("far", "other", "own", "closed")] + [blocked_need]
    query = "&".join(f"need={n.id}" for n in hidden) + "&need=999999&need=0"
    r = auth.sign_in(pro).get(f"/feed?{query}")
    assert r.status_code == 200 and _card_ids(r) == []
    html = r.get_data(as_text=True)
    for need in hidden:
        assert need.title not in html
    assert _card_ids(auth.sign_in(pro).get(f"/feed?need={feed_world['near'].id}&{query}")) == [
        feed_world["near"].id]


# --- my jobs ----------------------------------------------------------------------------------


@pytest.fixture
def jobs_world(make_user, make_provider, make_need, make_offer):
    pro = make_provider(make_user(name="Pat Provider"), handle="pat")
    rival = make_provider()
    customer = make_user(name="Carla Customer", email="carla@example.com",
                         phone="+1 512 555 0100")
    pending = make_need(customer, title="Pending party", address="1 Pending St")
    make_offer(pending, pro, amount=30000)
    accepted = make_need(customer, title="Accepted lunch", address="2 Accepted Ave")
    won = make_offer(accepted, pro, amount=35000)
    lifecycle.accept(customer.user, won.id)
    declined = make_need(customer, title="Declined dinner", address="3 Declined Rd")
    make_offer(declined, pro)
    lifecycle.accept(customer.user, make_offer(declined, rival).id)
    withdrawn = make_need(customer, title="Withdrawn wedding", address="4 Withdrawn Way")
    offers.withdraw(pro.user, make_offer(withdrawn, pro).id)
    done = make_need(customer, title="Completed picnic", address="5 Done Blvd")
    lifecycle.accept(customer.user, make_offer(done, pro).id)
    lifecycle.complete(customer.user, done.id)
    lifecycle.rate(customer.user, done.id, {"stars": 4, "comment": "Lovely"})
    return {"pro": pro, "customer": customer}


def test_jobs_tabs_group_offers_by_status(jobs_world, auth):
    web = auth.sign_in(jobs_world["pro"])
    page = dom(web.get("/jobs"))
    tabs = {a.attrs["href"]: a for a in page.find("nav", cls="tabs").find_all("a")}
    assert [t.text() for t in tabs.values()] == ["Pending 1", "Accepted 1", "Completed 1",
                                                 "Declined/Withdrawn 2"]
    assert tabs["/jobs?tab=accepted"].attrs["aria-current"] == "true"  # jobs in progress first
    titles = {
        tab: [h.text() for h in dom(web.get(f"/jobs?tab={tab}")).find_all("h2", cls="job-title")]
        for tab in ("pending", "accepted", "completed", "closed")
    }
    assert titles == {"pending": ["Pending party"], "accepted": ["Accepted lunch"],
                      "completed": ["Completed picnic"],
                      "closed": ["Withdrawn wedding", "Declined dinner"]}


def test_jobs_reveal_address_and_contact_only_for_the_accepted_job(jobs_world, auth):
    web = auth.sign_in(jobs_world["pro"])
    accepted = web.get("/jobs?tab=accepted").get_data(as_text=True)
    assert "2 Accepted Ave" in accepted
    assert "Carla Customer" in accepted
    assert 'href="mailto:carla@example.com"' in accepted
    assert 'href="tel:+1 512 555 0100"' in accepted
    for tab in ("pending", "closed"):
        html = web.get(f"/jobs?tab={tab}").get_data(as_text=True)
        assert "carla@example.com" not in html and "555 0100" not in html, tab
        assert "Carla" not in html, tab
        for street in ("1 Pending St", "2 Accepted Ave", "3 Declined Rd", "4 Withdrawn Way"):
            assert street not in html, (tab, street)
    closed = dom(web.get("/jobs?tab=closed"))
    assert sorted(p.text() for p in closed.find_all("span", cls="pill")) == ["declined", "withdrawn"]


def test_jobs_say_once_that_a_place_is_approximate(jobs_world, auth):
    web = auth.sign_in(jobs_world["pro"])
    for tab in ("pending", "closed"):
        jobs = dom(web.get(f"/jobs?tab={tab}")).by_id("jobs")
        for job in jobs.find_all("li", cls="job"):
            place = next(s.text() for s in job.find_all("span")
                         if s.find("span", cls="pin") is not None)
            assert place.lower().count("approximate") + place.count("about 0.6 mi") == 1, place
            assert place == "near Austin, TX (within about 0.6 mi)", place


def test_jobs_pending_tab_can_withdraw(jobs_world, auth):
    web = auth.sign_in(jobs_world["pro"])
    page = dom(web.get("/jobs?tab=pending"))
    form = page.by_id("jobs").find("form")
    assert form.attrs["action"].endswith("/withdraw")
    assert form.find("input", name="next").attrs["value"] == "/jobs?tab=pending"
    r = web.post(form.attrs["action"], data={"next": "/jobs?tab=pending"})
    assert r.status_code == 302 and r.headers["Location"] == "/jobs?tab=pending"
    assert "No pending offers" in dom(web.get("/jobs?tab=pending")).text()


def test_jobs_completed_tab_shows_the_rating(jobs_world, auth):
    page = dom(auth.sign_in(jobs_world["pro"]).get("/jobs?tab=completed"))
    text = page.by_id("jobs").text()
    assert "Rated 4 out of 5" in text and "Lovely" in text
    assert [p.text() for p in page.by_id("jobs").find_all("span", cls="pill")] == ["completed"]


def test_jobs_unknown_tab_falls_back_and_empty_states(make_provider, auth):
    page = dom(auth.sign_in(make_provider()).get("/jobs?tab=bogus"))
    assert page.find("a", href="/jobs?tab=pending").attrs["aria-current"] == "true"
    assert "No pending offers" in page.find(cls="empty").text()


def test_jobs_show_only_the_providers_own_offers(jobs_world, make_provider, auth):
    other = make_provider()
    page = dom(auth.sign_in(other).get("/jobs?tab=closed"))
    assert page.find("h2", cls="job-title") is None


# --- public profile -------------------------------------------------------------------------


def bars(page: Node) -> dict[int, tuple[int, float]]:
    svg = page.by_id("histogram")
    return {int(r.attrs["data-stars"]): (int(r.attrs["data-count"]), float(r.attrs["width"]))
            for r in svg.find_all("rect", cls="h-bar")}


def test_profile_is_public_and_shows_reputation(make_user, make_provider, client, make_job):
    pro = make_provider(make_user(name="Pat"), handle="pat-cooks", categories=("catering",
                                                                             "events"))
    for stars in (5, 5, 4, 1):
        make_job(pro=pro, stars=stars, quality=4, punctuality=5)
    r = client.get("/p/pat-cooks")
    assert r.status_code == 200
    page = dom(r)
    assert page.find("h1").text() == "Pro Pat"
    text = page.text()
    assert "@pat-cooks" in text and "member since" in text
    assert "Catering" in text and "Event planning" in text
    assert "(approximate)" in text and "within 16 mi" in text
    rep = reputation.for_providers([pro.provider.id])[pro.provider.id]
    # One number people read (the mean of the stars, with the count), the ranking score
    # explained on tap; the same badge as on the offer card.
    badge = page.by_id("rep-profile")
    assert badge.find("p", cls="rep-line").text() == f"★ {rep['mean']:.1f} out of 5 · 4 ratings"
    assert f"{rep['score']:.2f}" in badge.find("details", cls="rep-why").text()
    facts = page.find("dl", cls="rep-facts").text()
    assert "Completed jobs 4" in facts
    assert "Completion rate 100%" in facts
    subs = page.find("dl", cls="sub-scores").text()
    assert "Quality 4.0" in subs and "Punctuality 5.0" in subs and "Communication —" in subs
    assert page.find("span", cls="new") is None  # four ratings: not new
    assert len(page.by_id("ratings").find_all("li", cls="rating")) == 4
    assert f"{pro.provider.base_lat:.4f}" not in r.get_data(as_text=True)


def test_profile_histogram_svg_reflects_the_counts(make_provider, client, make_job):
    pro = make_provider(handle="histo")
    for stars in (5, 5, 4, 1):
        make_job(pro=pro, stars=stars)
    page = dom(client.get("/p/histo"))
    assert bars(page) == {5: (2, 220.0), 4: (1, 110.0), 3: (0, 0.0), 2: (0, 0.0), 1: (1, 110.0)}
    svg = page.by_id("histogram")
    assert svg.attrs["role"] == "img"
    assert svg.attrs["aria-label"] == ("Star ratings: 5 stars: 2, 4 stars: 1, 3 stars: 0, "
                                       "2 stars: 0, 1 star: 1.")
    assert svg.find("title").text() == svg.attrs["aria-label"]
    table = page.by_id("histogram-table")
    assert "sr-only" in table.classes
    rows = [tuple(c.text() for c in tr.find_all() if c.tag in ("th", "td"))
            for tr in table.find("tbody").find_all("tr")]
    assert rows == [("5 stars", "2"), ("4 stars", "1"), ("3 stars", "0"), ("2 stars", "0"),
                    ("1 star", "1")]


def test_profile_of_a_new_provider_is_labelled_new(make_provider, client):
    make_provider(handle="newbie")
    page = dom(client.get("/p/newbie"))
    assert page.find("span", cls="new").text() == "New"
    # no chart of five empty bars and three dashes: "no ratings yet" says it all
    assert page.by_id("histogram") is None and page.find("dl", cls="sub-scores") is None
    assert "No ratings yet" in page.text()


def test_profile_handle_is_case_insensitive_and_unknown_is_404(make_provider, client):
    make_provider(handle="casey")
    assert client.get("/p/CASEY").status_code == 200
    r = client.get("/p/nobody-here")
    assert r.status_code == 404
    assert "No provider with handle" in r.get_data(as_text=True)


def test_reply_form_only_for_the_owner_and_only_without_a_reply(make_user, make_provider,
                                                               auth, client, make_job):
    pro = make_provider(handle="owner")
    first = make_job(pro=pro, stars=5).rating
    second = make_job(pro=pro, stars=3).rating
    ratings.reply(pro.user, first.id, "Thank you!")
    action = f"/p/owner/ratings/{second.id}/reply"
    for web in (client, auth.sign_in(make_user())):
        page = dom(web.get("/p/owner"))
        assert page.find("form", cls="reply-form") is None
        assert "Thank you!" in page.by_id(f"rating-{first.id}").text()
    page = dom(auth.sign_in(pro).get("/p/owner"))
    forms = page.find_all("form", cls="reply-form")
    assert [f.attrs["action"] for f in forms] == [action]
    assert page.by_id(f"rating-{second.id}").find("form") is not None
    assert page.by_id(f"rating-{first.id}").find("form") is None
    textarea = forms[0].find("textarea", name="body")
    assert forms[0].find("label", for_=textarea.attrs["id"]) is not None


def test_reply_posts_and_shows_on_the_profile(make_provider, auth, make_job):
    pro = make_provider(handle="replier")
    rating = make_job(pro=pro, stars=4).rating
    web = auth.sign_in(pro)
    r = web.post(f"/p/replier/ratings/{rating.id}/reply", data={"body": "  Glad you liked it  "})
    assert r.status_code == 302
    assert r.headers["Location"] == f"/p/replier#rating-{rating.id}"
    db.session.expire_all()
    assert db.session.get(Rating, rating.id).reply == "Glad you liked it"
    page = dom(web.get("/p/replier"))
    assert "Your reply is published." in page.find(cls="flashes").text()
    item = page.by_id(f"rating-{rating.id}")
    assert "Glad you liked it" in item.text() and item.find("form") is None


def test_reply_errors_are_shown(make_provider, auth, make_job):
    pro = make_provider(handle="strict")
    rating = make_job(pro=pro, stars=2).rating
    web = auth.sign_in(pro)
    r = web.post(f"/p/strict/ratings/{rating.id}/reply", data={"body": "   "})
    assert r.status_code == 200
    item = dom(r).by_id(f"rating-{rating.id}")
    assert field_error(item, "body")
    r = web.post(f"/p/strict/ratings/{rating.id}/reply", data={"body": "x" * 2001})
    assert r.status_code == 200
    assert field_error(dom(r), "body") == "Write your message (up to 2000 characters)."
    ratings.reply(pro.user, rating.id, "First reply")
    r = web.post(f"/p/strict/ratings/{rating.id}/reply", data={"body": "Second reply"})
    assert r.status_code == 200
    alert = dom(r).by_id(f"rating-{rating.id}").find(cls="alert")
    assert alert.text() == "You already replied to this rating."


def test_reply_by_someone_else_is_refused(make_provider, auth, client, make_job):
    pro = make_provider(handle="mine")
    other = make_provider(handle="theirs")
    rating = make_job(pro=pro, stars=5).rating
    r = client.post(f"/p/mine/ratings/{rating.id}/reply", data={"body": "hi"})
    assert r.status_code == 302 and r.headers["Location"].startswith("/signin")
    r = auth.sign_in(other).post(f"/p/mine/ratings/{rating.id}/reply", data={"body": "hi"})
    assert r.status_code == 403
    # A rating of another provider, addressed through your own handle, is simply not there.
    r = auth.sign_in(other).post(f"/p/theirs/ratings/{rating.id}/reply", data={"body": "hi"})
    assert r.status_code == 404
    assert auth.sign_in(pro).post("/p/mine/ratings/999999/reply", data={"body": "hi"}).status_code \
        == 404
    db.session.expire_all()
    assert db.session.get(Rating, rating.id).reply is None


def test_ratings_list_pages_with_a_cursor(make_provider, client, monkeypatch, make_job):
    from marketplace.web import providers as views

    monkeypatch.setattr(views, "RATINGS_PER_PAGE", 2)
    pro = make_provider(handle="pager")
    for stars in (1, 2, 3):
        make_job(pro=pro, stars=stars)
    page = dom(client.get("/p/pager"))
    assert len(page.by_id("ratings").find_all("li")) == 2
    more = next(a.attrs["href"] for a in page.find_all("a") if "cursor=" in a.attrs["href"])
    assert more.startswith("/p/pager?cursor=")
    page = dom(client.get(more.split("#")[0]))
    assert len(page.by_id("ratings").find_all("li")) == 1
    assert not any("cursor=" in a.attrs.get("href", "") for a in page.find_all("a"))
