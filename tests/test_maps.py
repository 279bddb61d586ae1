"""Places as people read them: US ZIP codes offline, a street address kept private when it
cannot be placed, the town of a grid cell instead of coordinates, and maps that draw no more
than the reader may see (Flask test client; the browser side is tests/test_maps_browser.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pages import dom, field_error, value_of
from sqlalchemy import func, select

from marketplace import lifecycle
from marketplace.app import tile_origin
from marketplace.extensions import db
from marketplace.geo import grid_cell_centre
from marketplace.needs.models import Need

# A true point inside Austin that is not its cell's centre.
POINT = (30.27234, -97.75102)


def shapes(page: Any, map_id: str) -> list[dict[str, Any]]:
    node = dom(page).by_id(map_id)
    assert node is not None, f"no #{map_id} on the page"
    return json.loads(node.attrs["data-map"])["shapes"]


def written(value: float) -> list[str]:
    """Ways a coordinate could be written into a page."""
    return [repr(value), f"{value:.5f}", f"{value:.4f}"]


# --- ZIP codes ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["78701", " 78701-1234 ", "78701, US"])
def test_a_us_zip_code_is_found_offline(make_user, query):
    r = make_user().get("/api/v1/geocode", query_string={"q": query})
    assert r.status_code == 200, r.get_json()
    [place] = r.get_json()["items"]
    assert (place["label"], place["source"]) == ("Austin, TX 78701, US", "zipcodes")
    assert (place["lat"], place["lon"]) == (30.2672, -97.7423)


def test_an_unknown_zip_code_is_a_422_naming_the_field(make_user):
    r = make_user().get("/api/v1/geocode", query_string={"q": "00000"})
    assert r.status_code == 422
    assert r.get_json()["error"]["fields"] == {
        "q": ["No US ZIP code '00000' was found. Check the digits, or type a town."]}


def test_a_need_is_posted_at_a_zip_code_through_the_api_and_the_form(make_user, auth):
    alice = make_user()
    r = alice.post("/api/v1/needs", json={
        "title": "Move a sofa", "category": "catering", "radius_km": 10,
        "budget": {"amount": 5000, "currency": "USD"}, "location": {"query": "10001"}})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["place"] == "New York, NY 10001, US"
    web = auth.sign_in(alice)
    r = web.post("/needs/new", data={
        "title": "Paint a fence", "category": "catering", "budget": "120", "currency": "USD",
        "place_query": "78701", "radius_km": "10", "expires_in": "48"})
    assert r.status_code == 302, field_error(r, "place_query")
    need = db.session.scalars(select(Need).where(Need.title == "Paint a fence")).one()
    assert (need.lat, need.lon, need.place) == (30.2672, -97.7423, "Austin, TX 78701, US")


def test_a_street_address_no_geocoder_can_place_is_kept_as_the_private_address(make_user, auth):
    web = auth.sign_in(make_user())
    r = web.post("/needs/new", data={
        "title": "Fix a tap", "category": "catering", "budget": "80", "currency": "USD",
        "place_query": "1100 Congress Ave, Austin", "radius_km": "10", "expires_in": "48"})
    assert r.status_code == 200
    assert field_error(r, "place_query") == (
        "We could not find \u201c1100 Congress Ave, Austin\u201d on the map, so it is kept below "
        "as your private address. Now say roughly where it is: tap the map, use your location, "
        "or type a town or ZIP code.")
    assert value_of(r, "address") == "1100 Congress Ave, Austin"
    assert value_of(r, "place_query") == ""
    assert db.session.scalar(select(func.count()).select_from(Need)) == 0


# --- place names and maps -------------------------------------------------------------------


def test_a_provider_reads_the_town_and_sees_the_cell_never_the_point(
        make_user, make_provider, make_need, auth):
    pro = make_provider()
    need = make_need(location={"lat": POINT[0], "lon": POINT[1]}, place=None)
    cell = grid_cell_centre(*POINT)
    web = auth.sign_in(pro)
    for path, map_id in ((f"/needs/{need.id}", "need-map"), ("/feed", "feed-map")):
        page = web.get(path)
        html = page.get_data(as_text=True)
        assert "near Austin, TX" in dom(page).by_id("live-need" if map_id == "need-map"
                                                    else f"need-{need.id}").text()
        for value in (*written(POINT[0]), *written(POINT[1])):
            assert value not in html, (path, value)
        drawn = [s for s in shapes(page, map_id) if s["style"] == "cell"]
        assert [(s["kind"], s["lat"], s["lon"]) for s in drawn] == [("circle", cell.lat,
                                                                      cell.lon)]
        assert all(s["kind"] != "pin" for s in shapes(page, map_id))


def test_the_customer_and_then_the_accepted_provider_see_the_pin(
        make_user, make_provider, make_need, make_offer, auth):
    alice, pro = make_user(), make_provider()
    need = make_need(alice, location={"lat": POINT[0], "lon": POINT[1]})
    mine = shapes(auth.sign_in(alice).get(f"/needs/{need.id}"), "need-map")
    assert [(s["kind"], s["lat"], s["lon"]) for s in mine if s["kind"] == "pin"] == [
        ("pin", *POINT)]
    assert [s["radius_m"] for s in mine if s["kind"] == "circle"] == [20000]
    offer = make_offer(need, pro)
    web = auth.sign_in(pro)
    assert all(s["kind"] == "circle" for s in shapes(web.get(f"/needs/{need.id}"), "need-map"))
    lifecycle.accept(alice.user, offer.id)
    assert [(s["kind"], s["lat"], s["lon"]) for s in shapes(web.get(f"/needs/{need.id}"),
                                                             "need-map")] == [("pin", *POINT)]


def test_the_profile_and_share_page_name_the_town(make_user, make_provider, make_need, auth):
    pro = make_provider(base=POINT, radius_km=30)
    page = auth.sign_in(make_user()).get(f"/p/{pro.provider.handle}")
    assert "Works within 19 mi of Austin, TX (approximate)" in dom(page).text()
    cell = grid_cell_centre(*POINT)
    assert [(s["kind"], s["lat"], s["lon"], s["radius_m"]) for s in shapes(page, "area-map")] \
        == [("circle", cell.lat, cell.lon, 30000)]
    for value in (*written(POINT[0]), *written(POINT[1])):
        assert value not in page.get_data(as_text=True)
    need = make_need(place=None)
    shared = auth.client().get(f"/s/{need.share_token}")
    assert "Near Austin, TX (the exact place" in dom(shared).text()


def test_a_cell_far_from_any_town_is_an_area_not_coordinates(make_provider, make_need, auth):
    pro = make_provider(base=(0.5, -30.5), radius_km=100)  # the mid-Atlantic
    need = make_need(location={"lat": 0.5, "lon": -30.5}, place=None)
    text = dom(auth.sign_in(pro).get("/feed")).by_id(f"need-{need.id}").text()
    assert "an area of about 1 km (approximate)" in text and "30.5" not in text


def test_the_tile_host_and_only_it_may_serve_images(client, map_tiles):
    csp = client.get("/").headers["Content-Security-Policy"]
    img = next(d for d in csp.split(";") if d.strip().startswith("img-src")).split()[1:]
    assert img == ["'self'", "data:", map_tiles.url.split("/{z}")[0]]
    assert tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png") \
        == "https://*.tile.example.org"


def test_pages_with_maps_name_their_tiles_and_attribution(make_user, auth, app):
    page = auth.sign_in(make_user()).get("/needs/new")
    node = dom(page).by_id("pick-map")
    assert node.attrs["data-tiles"] == app.config["MAP_TILE_URL"]
    assert "OpenStreetMap" in node.attrs["data-attribution"]
    assert "hidden" not in node.attrs and node.attrs["aria-label"].startswith("Map:")
    assert json.loads(node.attrs["data-map"]) == {"shapes": [], "pick": {
        "lat": "f-lat", "lon": "f-lon", "place": "f-place_query", "status": "location-status",
        "radius": "f-radius_mi"}}  # no locale told: miles


# --- miles or kilometres --------------------------------------------------------------------


@pytest.mark.parametrize(("locale", "unit"), [("en_US", "mi"), ("en_GB", "mi"), ("de_DE", "km"),
                                              ("fr", "km"), ("en", "mi"), (None, "mi"), ("xx-nope", "mi")])
def test_the_unit_follows_the_locale(locale, unit):
    from marketplace.web.i18n import unit_of_locale

    assert unit_of_locale(locale) == unit


def test_the_unit_is_chosen_on_the_account_through_the_api(make_user):
    person = make_user()
    assert person.get("/api/v1/me").get_json()["distance_unit"] is None
    r = person.patch("/api/v1/me", json={"distance_unit": "km"})
    assert (r.status_code, r.get_json()["distance_unit"]) == (200, "km")
    r = person.patch("/api/v1/me", json={"distance_unit": "yards"})
    assert r.status_code == 422
    assert list(r.get_json()["error"]["fields"]) == ["distance_unit"]
    assert person.get("/api/v1/me").get_json()["distance_unit"] == "km"
    r = person.patch("/api/v1/me", json={"distance_unit": None})
    assert r.get_json()["distance_unit"] is None


def test_distances_on_pages_follow_the_account_s_unit(make_user, make_provider, make_need, auth):
    pro = make_provider(base=POINT, radius_km=30)
    need = make_need(location={"lat": POINT[0], "lon": POINT[1]}, place=None)
    web = auth.sign_in(pro)  # no locale told: en_US, miles
    profile = f"/p/{pro.provider.handle}"
    assert "Works within 19 mi of Austin, TX" in dom(web.get(profile)).text()
    card = dom(web.get("/feed")).by_id(f"need-{need.id}").text()
    assert "under 1 mi from you" in card and "km" not in card
    page = web.get("/account/preferences")
    assert dom(page).find("option", value="").text() == "As my language does (miles)"
    r = web.post("/account/preferences", data={"distance_unit": "km"})
    assert (r.status_code, r.headers["Location"]) == (302, "/account/preferences")
    assert "Works within 30 km of Austin, TX" in dom(web.get(profile)).text()
    card = dom(web.get("/feed")).by_id(f"need-{need.id}").text()
    assert "under 2 km from you" in card and " mi" not in card
    assert pro.get("/api/v1/me").get_json()["distance_unit"] == "km"
