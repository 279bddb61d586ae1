"""Radius boxes in the reader's unit (marketplace/web/radius.py): a reader of miles types, reads
back and is refused in miles, while what is stored (and what the API carries) stays km; a
reader of kilometres sees the forms as they always were."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import AUSTIN
from pages import dom, field_errors, value_of
from sqlalchemy import select

from marketplace.extensions import db
from marketplace.needs.models import Need
from marketplace.providers.models import Provider
from marketplace.web.radius import KM_PER_MILE

NEED = {"title": "Paella for 12", "description": "Seafood", "category": "catering",
        "budget": "350.50", "currency": "USD", "place_query": "Austin, TX", "expires_in": "48"}
SETUP = {"handle": "best-caterer", "display_name": "Best Caterer", "bio": "Buffets.",
         "categories": ["catering"], "place_query": "", "lat": "30.27", "lon": "-97.74",
         "active": "1"}


def reader(make_user: Any, unit: str) -> Any:
    person = make_user()
    assert person.patch("/api/v1/me", json={"distance_unit": unit}).status_code == 200
    return person


def radius_box(page: Any, name: str) -> tuple[str, dict[str, str]]:
    """The label text and the attributes of the radius input named ``name``."""
    doc = dom(page)
    control = doc.find("input", name=name)
    assert control is not None, f"no input {name}"
    label = doc.find("label", for_=control.attrs["id"])
    assert label is not None
    return label.text(), control.attrs


# --- post a need ------------------------------------------------------------------------------


def test_a_reader_of_miles_types_10_miles_and_the_need_reaches_16_km(make_user: Any,
                                                                     auth: Any) -> None:
    person = reader(make_user, "mi")
    web = auth.sign_in(person)
    form = web.get("/needs/new")
    label, box = radius_box(form, "radius_mi")
    assert label == "How far may a provider come? (mi)"
    assert (box["min"], box["max"], box["value"]) == ("1", "62", "10")
    assert dom(form).find("input", name="radius_km") is None
    r = web.post("/needs/new", data={**NEED, "radius_mi": "10"})
    assert r.status_code == 302, field_errors(r)
    need = db.session.scalar(select(Need))
    assert need.radius_km == pytest.approx(16.09344)
    page = web.get(f"/needs/{need.id}")
    assert "providers within 10 mi" in dom(page).text()
    area = [s for s in _shapes(page, "need-map") if s.get("style") == "area"]
    assert [s["radius_m"] for s in area] == [16093]  # the map draws what was typed
    api = person.get(f"/api/v1/needs/{need.id}").get_json()
    assert api["radius_km"] == pytest.approx(16.09344)


def _shapes(page: Any, map_id: str) -> list[dict[str, Any]]:
    node = dom(page).by_id(map_id)
    assert node is not None, f"no #{map_id} on the page"
    return json.loads(node.attrs["data-map"])["shapes"]


@pytest.mark.parametrize(("typed", "error"), [
    ("63", "Choose a distance from 1 to 62 miles."),
    ("0.5", "Choose a distance from 1 to 62 miles."),
    ("", "Say how far a provider may come, in miles."),
    ("far", "Enter a number of miles, like 10."),
    ("nan", "Choose a distance from 1 to 62 miles."),
])
def test_a_reader_of_miles_is_refused_in_miles(make_user: Any, auth: Any, typed: str,
                                               error: str) -> None:
    web = auth.sign_in(reader(make_user, "mi"))
    r = web.post("/needs/new", data={**NEED, "radius_mi": typed})
    assert r.status_code == 200
    assert field_errors(r)["radius_mi"] == error
    assert value_of(r, "radius_mi") == typed  # what they typed, to correct
    summary = dom(r).find("div", cls="error-summary").text()
    assert f"How far: {error}" in summary and "km" not in summary
    assert db.session.scalar(select(Need)) is None


def test_a_reader_of_km_posts_as_before(make_user: Any, auth: Any) -> None:
    web = auth.sign_in(reader(make_user, "km"))
    label, box = radius_box(web.get("/needs/new"), "radius_km")
    assert label == "How far may a provider come? (km)"
    assert (box["min"], box["max"], box["value"]) == ("1", "100", "15")
    r = web.post("/needs/new", data={**NEED, "radius_km": "500"})
    assert field_errors(r)["radius_km"] == "Choose a distance from 1 to 100 km."
    r = web.post("/needs/new", data={**NEED, "radius_km": "10"})
    assert r.status_code == 302
    need = db.session.scalar(select(Need))
    assert need.radius_km == 10
    assert "providers within 10 km" in dom(web.get(f"/needs/{need.id}")).text()


def test_the_reach_preview_reads_the_box_in_its_unit(make_user: Any, make_provider: Any,
                                                     auth: Any) -> None:
    make_provider(base=(AUSTIN[0] + 0.125, AUSTIN[1]), radius_km=100)  # ~14 km north
    web = auth.sign_in(reader(make_user, "mi"))
    where = {"category": "catering", "lat": AUSTIN[0], "lon": AUSTIN[1]}
    assert web.get("/needs/reach", query_string={**where, "radius_mi": 10}).get_json()[
        "count"] == 1  # 16 km
    assert web.get("/needs/reach", query_string={**where, "radius_km": 10}).get_json()[
        "count"] == 0
    assert web.get("/needs/reach", query_string={**where, "radius_mi": 63}).get_json()[
        "count"] is None


def test_a_form_typed_in_miles_is_read_in_miles_after_the_reader_switches(make_user: Any,
                                                                           auth: Any) -> None:
    person = reader(make_user, "km")  # the box's name says its unit, not the account
    r = auth.sign_in(person).post("/needs/new", data={**NEED, "radius_mi": "10"})
    assert r.status_code == 302
    assert db.session.scalar(select(Need)).radius_km == pytest.approx(16.09344)


# --- provider set-up --------------------------------------------------------------------------


def test_a_provider_who_reads_miles_sets_up_in_miles(make_user: Any, auth: Any) -> None:
    web = auth.sign_in(reader(make_user, "mi"))
    label, box = radius_box(web.get("/provider"), "radius_mi")
    assert label == "How far you travel (mi)"
    assert (box["min"], box["max"], box["value"]) == ("1", "62", "15")
    r = web.post("/provider", data={**SETUP, "radius_mi": "10"})
    assert r.status_code == 302, field_errors(r)
    assert db.session.scalar(select(Provider)).radius_km == pytest.approx(16.09344)
    page = web.get("/provider")
    assert value_of(page, "radius_mi") == "10"  # not 9.99 or 16.09
    area = [s for s in _shapes(web.get("/p/best-caterer"), "area-map") if s.get("style") == "area"]
    assert [s["radius_m"] for s in area] == [16093]
    r = web.post("/provider", data={**SETUP, "radius_mi": "70"})
    assert field_errors(r) == {"radius_mi": "Choose a distance from 1 to 62 miles."}
    r = web.post("/provider", data={**SETUP, "radius_mi": ""})
    assert field_errors(r) == {"radius_mi": "Say how far you travel, 1-62 miles."}
    assert db.session.scalar(select(Provider)).radius_km == pytest.approx(16.09344)


def test_a_provider_who_reads_km_sets_up_as_before(make_user: Any, auth: Any) -> None:
    web = auth.sign_in(reader(make_user, "km"))
    label, box = radius_box(web.get("/provider"), "radius_km")
    assert label == "How far you travel (km)"
    assert (box["min"], box["max"], box["value"]) == ("1", "100", "25")
    r = web.post("/provider", data={**SETUP, "radius_km": ""})
    assert field_errors(r) == {"radius_km": "Say how far you travel, 1-100 km."}
    r = web.post("/provider", data={**SETUP, "radius_km": "10"})
    assert r.status_code == 302
    assert db.session.scalar(select(Provider)).radius_km == 10
    assert value_of(web.get("/provider"), "radius_km") == "10"


def test_miles_limits_stay_inside_the_km_limits() -> None:
    from marketplace.web.radius import Radius

    box = Radius("mi", 1, 62)
    assert box.to_km(box.low) >= 1 and box.to_km(box.high) <= 100
    assert box.shown(62 * KM_PER_MILE) == "62" and box.shown(25) == "15.5"
    assert Radius("km", 1, 100).shown(12.5) == "12.5"


def test_a_radius_shown_rounded_and_left_alone_keeps_its_km(make_provider: Any,
                                                            auth: Any) -> None:
    pro = make_provider(radius_km=30)
    assert pro.patch("/api/v1/me", json={"distance_unit": "mi"}).status_code == 200
    web = auth.sign_in(pro)
    assert value_of(web.get("/provider"), "radius_mi") == "18.6"
    form = {**SETUP, "handle": pro.provider.handle}
    assert web.post("/provider", data={**form, "radius_mi": "18.6"}).status_code == 302
    assert db.session.get(Provider, pro.provider.id).radius_km == 30  # not 29.93
    assert web.post("/provider", data={**form, "radius_mi": "18.5"}).status_code == 302
    assert db.session.get(Provider, pro.provider.id).radius_km == pytest.approx(18.5 * KM_PER_MILE)


# --- trends -----------------------------------------------------------------------------------


def test_the_trends_radius_picker_is_in_the_readers_unit(make_user: Any, auth: Any) -> None:
    web = auth.sign_in(reader(make_user, "mi"))
    page = dom(web.get("/trends?place=Austin"))
    picker = page.by_id("t-radius")
    assert picker.attrs["name"] == "radius_mi"
    options = [(o.attrs["value"], o.text(), "selected" in o.attrs)
               for o in picker.find_all("option")]
    assert options == [("3", "3 mi", False), ("5", "5 mi", True), ("15", "15 mi", False),
                       ("30", "30 mi", False)]
    chosen = dom(web.get("/trends?place=Austin&radius_mi=15")).by_id("t-radius")
    assert [o.attrs["value"] for o in chosen.find_all("option") if "selected" in o.attrs] == ["15"]
    refused = dom(web.get("/trends?place=Austin&radius_mi=100")).by_id("trends-region").text()
    assert "Within: Choose a distance from 1 to 62 miles." in refused
    km = auth.sign_in(reader(make_user, "km"))
    picker = dom(km.get("/trends?place=Austin")).by_id("t-radius")
    assert picker.attrs["name"] == "radius_km"
    assert [(o.text(), "selected" in o.attrs) for o in picker.find_all("option")] == [
        ("5 km", False), ("10 km", True), ("25 km", False), ("50 km", False)]
