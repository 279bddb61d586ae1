"""GET /api/v1/needs/suggestions: tags and a category to offer while a need is typed, from what
is used nearby under the trends rules (the k floor of distinct customers per tile, bucketed
counts), the same answer as the web form's GET /needs/suggestions; bad input is a 422 naming
the field."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import AUSTIN, error_of

FAR = (32.7767, -96.7970)  # Dallas, ~300 km
API = "/api/v1/needs/suggestions"


def suggest(viewer: Any, text: str, where: tuple[float, float] = AUSTIN,
            **args: Any) -> dict[str, Any]:
    r = viewer.get(API, query_string={"lat": where[0], "lon": where[1], "text": text, **args})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def spelled(body: dict[str, Any]) -> list[str]:
    return [t["spelled"] for t in body["tags"]]


def posted(make_need: Any, make_user: Any, title: str, *, people: int,
           category: str = "catering", where: tuple[float, float] = AUSTIN) -> None:
    for _ in range(people):
        make_need(make_user(), title=title, category=category,
                  location={"lat": where[0], "lon": where[1]})


def test_only_tags_at_or_over_the_k_floor_are_suggested(make_user: Any, make_need: Any) -> None:
    posted(make_need, make_user, "A ?kayak for the river", people=3)
    posted(make_need, make_user, "A ?kazoo and #music", people=1)
    keen = make_user()
    for _ in range(5):  # many needs from one person are one person: two people, never shown
        make_need(keen, title="Lessons on the ?kazoo")
    viewer = make_user()
    body = suggest(viewer, "Need a ")
    assert body == {"typing": None, "category": None, "tags": [
        {"kind": "intent", "tag": "kayak", "spelled": "?kayak", "count": 3}]}
    assert spelled(suggest(viewer, "Need a ", where=FAR)) == []  # not used there
    posted(make_need, make_user, "A ?kazoo", people=1)  # a third person: 7 needs, bucket 5
    assert spelled(suggest(viewer, "Need a ")) == ["?kazoo", "?kayak"]  # bucket 5, then 3


def test_the_tag_being_typed_is_completed_by_prefix(make_user: Any, make_need: Any) -> None:
    posted(make_need, make_user, "A ?kayak, a ?kazoo and a #kayaking trip", people=3)
    posted(make_need, make_user, "A ?canoe", people=3)
    viewer = make_user()
    body = suggest(viewer, "Need a ?KA")
    assert body["typing"] == "?KA"
    assert spelled(body) == ["?kayak", "?kazoo"]  # intents only, starting with "ka"
    assert spelled(suggest(viewer, "Something #kay")) == ["#kayaking"]
    assert spelled(suggest(viewer, "Need a ?kaz")) == ["?kazoo"]
    assert spelled(suggest(viewer, "Need a ?x")) == []
    done = suggest(viewer, "Need a ?kayak ")  # a space after it: no longer being typed
    assert done["typing"] is None
    assert spelled(done) == ["?canoe", "#kayaking", "?kazoo"]  # by tag, whatever the kind


def test_tags_already_written_are_not_suggested(make_user: Any, make_need: Any) -> None:
    posted(make_need, make_user, "A ?kayak for #summer and a ?tent", people=3)
    viewer = make_user()
    assert spelled(suggest(viewer, "")) == ["?kayak", "#summer", "?tent"]
    assert spelled(suggest(viewer, "A ?Kayak please")) == ["#summer", "?tent"]
    assert spelled(suggest(viewer, "A ?kayak, please", also="For the #SUMMER")) == ["?tent"]
    assert spelled(suggest(viewer, "Also a ?t", also="A ?tent")) == []


def test_the_category_most_customers_chose_with_the_tags_written(
        make_user: Any, make_need: Any) -> None:
    posted(make_need, make_user, "A ?kayak moved to the lake", people=3, category="moving")
    posted(make_need, make_user, "A ?kayak repaired", people=2, category="plumbing")
    viewer = make_user()
    assert suggest(viewer, "Need a ?kay")["category"] is None  # nothing written yet
    body = suggest(viewer, "Need a ?kayak moved")
    assert body["category"]["slug"] == "moving" and body["category"]["name"]
    assert suggest(viewer, "Need a ?kayak moved", where=FAR)["category"] is None
    assert suggest(viewer, "A ?canoe")["category"] is None  # nobody chose one with it


def test_a_place_query_instead_of_coordinates(make_user: Any, make_need: Any) -> None:
    posted(make_need, make_user, "A ?kayak", people=3)
    viewer = make_user()
    r = viewer.get(API, query_string={"place_query": "Austin, TX", "text": "?k"})
    assert r.status_code == 200, r.get_json()
    assert spelled(r.get_json()) == ["?kayak"]
    unknown = viewer.get(API, query_string={"place_query": "Nowhere At All", "text": "?k"})
    assert unknown.status_code == 422
    assert list(error_of(unknown)["fields"]) == ["place_query"]


def test_the_web_form_gets_the_same_answer(make_user: Any, make_need: Any, auth: Any) -> None:
    posted(make_need, make_user, "A ?kayak moved", people=3, category="moving")
    viewer = make_user()
    web = auth.sign_in(viewer)
    for query in ({"lat": AUSTIN[0], "lon": AUSTIN[1], "text": "?ka"},
                  {"lat": "", "lon": "", "place_query": "Austin, TX", "text": "A ?kayak"}):
        page = web.get("/needs/suggestions", query_string=query)
        assert page.status_code == 200
        r = viewer.get(API, query_string={k: v for k, v in query.items() if v != ""})
        assert r.status_code == 200, r.get_json()
        assert page.get_json() == r.get_json()
    # What the form cannot use yet gets no suggestions there, not an error.
    for bad in ({"text": "?ka"}, {"lat": "95", "lon": "0"}, {"place_query": "Nowhere At All"}):
        page = web.get("/needs/suggestions", query_string=bad)
        assert page.status_code == 200
        assert page.get_json() == {"tags": [], "category": None}


@pytest.mark.parametrize(("query", "fields"), [
    ({"text": "?ka"}, ["lat", "lon"]),
    ({"lat": AUSTIN[0], "text": "?ka"}, ["lon"]),
    ({"lon": AUSTIN[1], "text": "?ka"}, ["lat"]),
    ({"lat": 91, "lon": 0}, ["lat"]),
    ({"lat": 0, "lon": -180.5}, ["lon"]),
    ({"lat": "nan", "lon": 0}, ["lat"]),
    ({"lat": "north", "lon": 0}, ["lat"]),
    ({"lat": 0, "lon": 0, "text": "x" * 5001}, ["text"]),
    ({"lat": 0, "lon": 0, "also": "x" * 5001}, ["also"]),
    ({"lat": 0, "lon": 0, "text": "a\x00b"}, ["text"]),
    ({"place_query": "x" * 201}, ["place_query"]),
])
def test_bad_input_is_a_422_naming_the_field(make_user: Any, query: dict[str, Any],
                                              fields: list[str]) -> None:
    r = make_user().get(API, query_string=query)
    assert r.status_code == 422, r.get_json()
    assert sorted(error_of(r)["fields"]) == fields


def test_suggestions_need_a_token(client: Any) -> None:
    r = client.get(API, query_string={"lat": AUSTIN[0], "lon": AUSTIN[1]})
    assert r.status_code == 401


def test_the_api_and_the_form_spend_one_budget(rate_limits: Any, make_user: Any,
                                               auth: Any) -> None:
    rate_limits(RATE_LIMIT_REACH_PREVIEWS="2 per minute")
    viewer = make_user()
    web = auth.sign_in(viewer)
    at = {"lat": AUSTIN[0], "lon": AUSTIN[1]}
    assert viewer.get(API, query_string=at).status_code == 200
    assert web.get("/needs/suggestions", query_string=at).status_code == 200
    r = viewer.get(API, query_string=at)
    assert r.status_code == 429
    assert r.headers["Retry-After"]
