"""The web side of signals: tags as links on the need page and feed cards, tag subscriptions and
direct asks on the provider set-up form, and the "What people nearby want" page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import AUSTIN
from pages import dom

from marketplace.providers import services as providers


@pytest.fixture(autouse=True)
def generous_limit(app: Any) -> Iterator[None]:
    saved = app.config["RATE_LIMIT_TRENDS"]
    app.config["RATE_LIMIT_TRENDS"] = "100000 per hour"
    yield
    app.config["RATE_LIMIT_TRENDS"] = saved


def test_the_need_page_links_each_tag_to_its_trend(make_user: Any, make_need: Any,
                                                    auth: Any) -> None:
    customer = make_user()
    need = make_need(customer, title="A ?Kayak for #Summer", description="ask @some-pro")
    page = dom(auth.sign_in(customer).get(f"/needs/{need.id}"))
    tags = page.find("p", cls="tags")
    links = {a.text(): a.attrs["href"] for a in tags.find_all("a")}
    assert set(links) == {"?kayak", "#summer", "@some-pro"}
    kayak = urlsplit(links["?kayak"])
    assert kayak.path == "/trends"
    assert parse_qs(kayak.query) == {"kind": ["intent"], "tag": ["kayak"]}
    assert links["@some-pro"] == "/p/some-pro"


def test_a_feed_card_shows_tags_and_a_direct_ask(make_user: Any, make_provider: Any,
                                                 make_need: Any, auth: Any) -> None:
    pro = make_provider(handle="asked-pro", base=(32.7767, -96.7970), radius_km=5)
    need = make_need(make_user(), title="Dinner", description="@asked-pro ?chef")
    card = dom(auth.sign_in(pro).get("/feed")).by_id(f"need-{need.id}")
    assert card.find("span", cls="direct").text() == "Asked you directly"
    assert [a.text() for a in card.find("p", cls="tags").find_all("a")] == ["?chef",
                                                                            "@asked-pro"]


def test_the_setup_form_saves_tags_and_direct_asks(make_user: Any, auth: Any) -> None:
    person = make_user()
    web = auth.sign_in(person)
    form = dom(web.get("/provider")).by_id("provider-form")
    for name in ("tags", "direct_asks"):
        control = form.find("input", name=name)
        assert control is not None and form.find("label") is not None, name
    assert form.find("input", name="direct_asks").attrs.get("checked") is not None
    r = web.post("/provider", data={
        "handle": "tagger", "display_name": "Tagger", "categories": ["plumbing"],
        "lat": str(AUSTIN[0]), "lon": str(AUSTIN[1]), "radius_km": "20", "active": "1",
        "tags": "?Kayak  #boats"})
    assert r.status_code == 302, r.get_data(as_text=True)
    provider = providers.provider_of(person.user)
    assert [(t.kind, t.tag) for t in provider.tags] == [("intent", "kayak"), ("topic", "boats")]
    assert provider.direct_asks is False  # the box was not ticked
    again = dom(web.get("/provider")).by_id("provider-form")
    assert again.find("input", name="tags").attrs["value"] == "?kayak #boats"
    assert again.find("input", name="direct_asks").attrs.get("checked") is None


def test_a_wrong_tag_is_an_error_next_to_the_field(make_user: Any, auth: Any) -> None:
    from pages import field_error

    web = auth.sign_in(make_user())
    r = web.post("/provider", data={
        "handle": "tagger2", "display_name": "Tagger", "categories": ["plumbing"],
        "lat": str(AUSTIN[0]), "lon": str(AUSTIN[1]), "radius_km": "20", "tags": "kayak"})
    assert r.status_code == 200
    assert "?intent or #topic" in field_error(r, "tags")


def test_the_trends_page_draws_the_tags_over_the_floor(make_user: Any, make_need: Any,
                                                       make_provider: Any, auth: Any) -> None:
    for _ in range(3):
        make_need(make_user(), title="?kayak wanted #river")
    make_need(make_user(), title="?canoe")  # one person: never shown
    viewer = make_provider()  # near the viewer: their base
    page = dom(auth.sign_in(viewer).get("/trends?kind=intent&tag=Kayak"))
    bars = page.by_id("trends-intents").find_all("g")
    assert [(g.attrs["data-tag"], g.attrs["data-count"]) for g in bars] == [("?kayak", "3")]
    assert "focus" in bars[0].classes
    assert [g.attrs["data-tag"] for g in page.by_id("trends-topics").find_all("g")] == ["#river"]
    assert page.by_id("trends-focus") is None
    assert page.find("script", src="/static/trends.js") is not None
    assert not [n for n in page.iter() if "style" in n.attrs]  # CSP: classes only
    hidden = dom(auth.sign_in(viewer).get("/trends?kind=intent&tag=canoe"))
    assert "Too few people" in hidden.by_id("trends-focus").text()


def test_the_trends_page_asks_for_a_place_when_it_knows_none(make_user: Any,
                                                             auth: Any) -> None:
    web = auth.sign_in(make_user())
    page = dom(web.get("/trends"))
    assert page.by_id("trends-intents") is None
    assert page.find("input", name="place") is not None
    there = dom(web.get("/trends?place=Austin"))
    assert there.find("h2", id="trends-intents-h") is not None


def test_the_trends_page_needs_a_sign_in(client: Any) -> None:
    assert client.get("/trends").status_code == 302


def test_a_bad_point_on_the_trends_page_is_said_not_a_500(make_user: Any, auth: Any) -> None:
    page = dom(auth.sign_in(make_user()).get("/trends?lat=95&lon=east"))
    errors = [p.text() for p in page.by_id("trends-region").find_all("p", cls="error")]
    assert [e.split(":")[0] for e in errors] == ["Latitude", "Longitude"]


def test_suggestions_offer_tags_used_nearby_and_their_category(make_user: Any, make_need: Any,
                                                               auth: Any) -> None:
    for _ in range(3):
        make_need(make_user(), title="?kayak for the river #summer", category="moving")
    make_need(make_user(), title="?kazoo lessons")  # one person: never offered
    web = auth.sign_in(make_user())
    at = {"lat": str(AUSTIN[0]), "lon": str(AUSTIN[1])}
    typing = web.get("/needs/suggestions", query_string={**at, "text": "Need a ?KA"}).get_json()
    assert typing == {"typing": "?KA", "category": None, "tags": [
        {"kind": "intent", "tag": "kayak", "spelled": "?kayak", "count": 3}]}
    written = web.get("/needs/suggestions", query_string={
        **at, "text": "Need a ?kayak soon", "also": "#summer"}).get_json()
    assert written["typing"] is None
    assert written["tags"] == []  # both nearby tags are written already
    assert written["category"] == {"slug": "moving", "name": written["category"]["name"]}
    assert web.get("/needs/suggestions", query_string={
        **at, "text": "#su"}).get_json()["tags"] == [
            {"kind": "topic", "tag": "summer", "spelled": "#summer", "count": 3}]
    far = web.get("/needs/suggestions", query_string={"lat": "32.7767", "lon": "-96.797",
                                                      "text": "?ka"}).get_json()
    assert far["tags"] == []
    assert web.get("/needs/suggestions", query_string={"text": "?ka"}).get_json() == {
        "tags": [], "category": None}


def test_the_need_form_loads_the_suggestions_script(make_user: Any, auth: Any) -> None:
    page = dom(auth.sign_in(make_user()).get("/needs/new"))
    assert page.by_id("tag-suggestions") is not None
    assert page.find("script", src="/static/suggest.js") is not None
