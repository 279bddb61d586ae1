"""Maps in a real browser at phone size (390x844), against a real server whose tiles come from
the local tile server (conftest.map_tiles): a tap on the form's map sets the need's place, a
provider sees the need's cell as a circle and never a pin, the shapes are drawn when no tile
loads, and axe-core finds nothing serious on a map with a pin or with no tiles (the pages with
maps, tiles loaded, are in test_e2e_webapp's every-page axe run)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from browser import PHONE, Person, expect, make_provider
from conftest import AUSTIN
from live import Api
from test_e2e_webapp import axe, post_need

pytest.importorskip("playwright.sync_api")


def _uid() -> str:
    return uuid.uuid4().hex[:6]


def test_a_tap_on_the_form_map_sets_the_place(chromium: Any, base_url: str,
                                              map_tiles: Any) -> None:
    customer = Person(chromium, base_url, Api(base_url, f"mp-{_uid()}@example.com"),
                      viewport=PHONE)
    try:
        page = customer.page
        page.goto("/needs/new")
        place = page.get_by_label("…or a place name")
        place.fill("78701")
        picker = page.locator("#pick-map")
        # The ZIP code's town comes into view (zoom 12), its tiles from the local server.
        expect(picker.locator("img.leaflet-tile-loaded[src*='/12/']").first).to_be_attached(
            timeout=15000)  # a debounced preview, then the server: slow on a busy machine
        assert any(path.endswith(".png") for path in map_tiles.served)
        box = picker.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(picker.locator(".leaflet-marker-icon")).to_have_count(1)
        expect(page.locator("#location-status")).to_contain_text("the point you picked")
        lat = float(page.locator("#f-lat").input_value())
        lon = float(page.locator("#f-lon").input_value())
        assert abs(lat - 30.2672) < 0.05 and abs(lon + 97.7423) < 0.05, (lat, lon)
        assert place.input_value() == ""  # the picked point, not the text, places the need
        expect(page.locator("#reach")).to_contain_text("in reach")
        assert axe(page) == []
        page.get_by_label("Title").fill("Fix a fence")
        page.locator("#f-category").select_option("catering")
        page.get_by_label("Budget").fill("150")
        page.get_by_role("button", name="Post my need").click()
        expect(page.locator("#need-map .leaflet-marker-icon")).to_have_count(1)
        assert customer.errors == []
    finally:
        customer.close()


CIRCLES = """sel => { const radii = [];
  document.querySelector(sel).nearbyMap.eachLayer(
    l => { if (l.getRadius) radii.push(Math.round(l.getRadius())); });
  return radii; }"""


def test_a_reader_of_miles_types_the_reach_in_miles_and_the_map_draws_it(
        chromium: Any, base_url: str, map_tiles: Any) -> None:
    api = Api(base_url, f"mi-{_uid()}@example.com")
    assert api.call("PATCH", "/me", json={"distance_unit": "mi"}).status_code == 200
    customer = Person(chromium, base_url, api, viewport=PHONE)
    try:
        page = customer.page
        page.goto("/needs/new")
        reach = page.get_by_label("How far may a provider come? (mi)")
        expect(reach).to_have_value("10")
        assert (reach.get_attribute("min"), reach.get_attribute("max")) == ("1", "62")
        picker = page.locator("#pick-map")
        page.wait_for_function("() => document.querySelector('#pick-map').nearbyMap")
        page.get_by_label("…or a place name").fill("78701")  # Austin comes into view
        expect(picker.locator("img.leaflet-tile-loaded[src*='/12/']").first).to_be_attached(
            timeout=15000)
        picker.scroll_into_view_if_needed()
        box = picker.bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(picker.locator(".leaflet-marker-icon")).to_have_count(1)
        reach.fill("3")
        page.wait_for_function(f"() => ({CIRCLES})('#pick-map').includes(4828)")  # 3 mi
        reach.fill("10")
        page.wait_for_function(f"() => ({CIRCLES})('#pick-map').includes(16093)")
        expect(page.locator("#reach")).to_contain_text("in reach")
        page.get_by_label("Title").fill("Fix a fence")
        page.locator("#f-category").select_option("catering")
        page.get_by_label("Budget").fill("150")
        page.get_by_role("button", name="Post my need").click()
        expect(page.locator(".meta", has_text="providers within")).to_contain_text(
            "providers within 10 mi")
        page.wait_for_function("() => document.querySelector('#need-map').nearbyMap")
        assert page.evaluate(f"({CIRCLES})('#need-map')") == [16093]
        need_id = page.url.rsplit("/", 1)[-1]
        stored = api.call("GET", f"/needs/{need_id}").json()["radius_km"]
        assert abs(stored - 16.09344) < 1e-6, stored
        assert customer.errors == []
    finally:
        customer.close()


def test_a_provider_sees_a_circle_even_with_the_tile_server_down(chromium: Any,
                                                                 base_url: str) -> None:
    customer = Api(base_url, f"mc-{_uid()}@example.com", name="Mia Customer")
    need = post_need(customer, f"Paella for twelve, {_uid()}")
    dana = make_provider(base_url, (AUSTIN[0] + 0.01, AUSTIN[1]), "Dana Maps")
    pro = Person(chromium, base_url, dana, viewport=PHONE)
    try:
        page = pro.page
        # Every tile request fails, as if the tile server were down.
        page.route("**/*.png", lambda route: route.abort()
                   if "/static/" not in route.request.url else route.continue_())
        page.goto(f"/needs/{need['id']}")
        expect(page.locator("#need-map path.map-cell")).to_have_count(1)
        assert page.locator(".leaflet-marker-icon").count() == 0
        page.goto("/feed")
        expect(page.locator("#feed-map path.map-area")).to_have_count(1)
        cards = page.locator(".feed-card").count()
        assert cards >= 1 and page.locator("#feed-map path.map-cell").count() == cards
        assert page.locator(".leaflet-marker-icon").count() == 0
        assert page.locator(".leaflet-tile-loaded").count() == 0
        assert axe(page) == []
        handle = dana.call("GET", "/me").json()["provider"]["handle"]
        page.goto(f"/p/{handle}")
        expect(page.locator("#area-map path.map-area")).to_have_count(1)
        assert [e for e in pro.errors if "ERR_FAILED" not in e] == []
    finally:
        pro.close()
