"""GET /api/v1/trends: what people nearby want -- the k floor (distinct customers, per tile),
bucketed counts, the change against the previous window, and that diffing two answers cannot
single out one need."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import AUSTIN, error_of
from sqlalchemy import update

from marketplace.extensions import db
from marketplace.signals import services
from marketplace.signals.models import TrendHit

ROUND_ROCK = (30.5083, -97.6789)  # ~27 km north of Austin: another trend tile


@pytest.fixture(autouse=True)
def generous_limit(app: Any) -> Iterator[None]:
    saved = app.config["RATE_LIMIT_TRENDS"]
    app.config["RATE_LIMIT_TRENDS"] = "100000 per hour"
    yield
    app.config["RATE_LIMIT_TRENDS"] = saved


def post(make_need: Any, customer: Any, text: str, where: tuple[float, float] = AUSTIN,
         times: int = 1) -> None:
    for _ in range(times):
        make_need(customer, title=f"Looking for {text}",
                  location={"lat": where[0], "lon": where[1]})


def trends(viewer: Any, where: tuple[float, float] = AUSTIN, **args: Any) -> dict[str, Any]:
    query = {"lat": where[0], "lon": where[1], "radius_km": 5, "window": "24h", **args}
    r = viewer.get("/api/v1/trends", query_string=query)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def shown(body: dict[str, Any], kind: str = "intents") -> dict[str, int]:
    return {item["tag"]: item["count"] for item in body[kind]}


def test_a_tag_shows_only_once_k_distinct_customers_used_it(make_user: Any,
                                                            make_need: Any) -> None:
    viewer = make_user()
    first, second, third = make_user(), make_user(), make_user()
    post(make_need, first, "a ?Kayak #boats", times=4)
    post(make_need, second, "a ?kayak #boats", times=4)
    # Many needs from two people are still two people.
    assert shown(trends(viewer)) == {} and shown(trends(viewer), "topics") == {}
    post(make_need, third, "a ?KAYAK")
    body = trends(viewer)
    assert body["min_customers"] == 3
    assert body["intents"] == [{"tag": "kayak", "count": 5, "previous": 0, "change": 5}]
    assert body["topics"] == []


def test_the_floor_is_configurable(app: Any, make_user: Any, make_need: Any) -> None:
    app.config["TRENDS_MIN_CUSTOMERS"] = 1
    try:
        post(make_need, make_user(), "?canoe")
        assert shown(trends(make_user())) == {"canoe": 1}
    finally:
        app.config["TRENDS_MIN_CUSTOMERS"] = 3


def test_one_more_need_changes_nothing_until_a_bucket_edge(make_user: Any,
                                                           make_need: Any) -> None:
    viewer = make_user()
    people = [make_user() for _ in range(3)]
    for person in people:
        post(make_need, person, "?kayak", times=2)  # 6 needs: bucket 5
    before = trends(viewer)
    assert shown(before) == {"kayak": 5}
    for count in (7, 8, 9):
        post(make_need, people[0], "?kayak")
        assert trends(viewer) == before, count  # the same answer, to the byte
    post(make_need, people[0], "?kayak")  # 10: the next edge
    assert shown(trends(viewer)) == {"kayak": 10}


def test_ranking_ties_are_alphabetical_so_order_moves_only_with_buckets(
        make_user: Any, make_need: Any) -> None:
    viewer = make_user()
    people = [make_user() for _ in range(3)]
    for person in people:
        post(make_need, person, "?zither ?accordion")
    post(make_need, people[0], "?zither")  # zither 4, accordion 3: both in bucket 3
    assert [i["tag"] for i in trends(viewer)["intents"]] == ["accordion", "zither"]


def test_a_tile_below_the_floor_never_adds_to_a_wider_area(make_user: Any,
                                                           make_need: Any) -> None:
    """Differencing two areas (one with Round Rock's tile, one without) would single out the
    one customer there if their needs counted: they do not."""
    viewer = make_user()
    for _ in range(3):
        post(make_need, make_user(), "?kayak", times=2)
    loner = make_user()
    post(make_need, loner, "?kayak", where=ROUND_ROCK, times=4)
    near = trends(viewer, radius_km=5)
    wide = trends(viewer, radius_km=50)
    assert shown(near) == shown(wide) == {"kayak": 5}
    assert near["intents"] == wide["intents"]
    # Once that tile has k customers of its own, it adds to the wide area only.
    for _ in range(2):
        post(make_need, make_user(), "?kayak", where=ROUND_ROCK)
    assert shown(trends(viewer, radius_km=50)) == {"kayak": 10}
    assert shown(trends(viewer, radius_km=5)) == {"kayak": 5}


def test_the_change_against_the_previous_window(make_user: Any, make_need: Any) -> None:
    viewer = make_user()
    people = [make_user() for _ in range(3)]
    for person in people:
        post(make_need, person, "?kayak #boats", times=4)  # 12: bucket 10
    # Move all of it a day back: yesterday's window.
    db.session.execute(update(TrendHit).values(hour=TrendHit.hour - 24))
    db.session.commit()
    for person in people:
        post(make_need, person, "?kayak")  # 3 today: bucket 3
    body = trends(viewer)
    assert body["intents"] == [{"tag": "kayak", "count": 3, "previous": 10, "change": -7}]
    assert body["topics"] == []  # nothing today
    week = trends(viewer, window="7d")
    assert week["intents"] == [{"tag": "kayak", "count": 10, "previous": 0, "change": 10}]
    assert shown(week, "topics") == {"boats": 10}


def test_windows_are_whole_hours(app: Any) -> None:
    at = datetime(2026, 12, 2, 10, 41, tzinfo=UTC)
    body = services.trends(*AUSTIN, 5, "24h", now=at)
    assert body["since"] == datetime(2026, 12, 1, 11, tzinfo=UTC)
    assert body["until"] == datetime(2026, 12, 2, 11, tzinfo=UTC)
    assert services.trends(*AUSTIN, 5, "7d", now=at)["since"] == at.replace(
        minute=0) + timedelta(hours=1) - timedelta(days=7)


def test_mentions_are_never_trends(app: Any, make_user: Any, make_need: Any) -> None:
    for _ in range(3):
        post(make_need, make_user(), "@somebody")
    body = trends(make_user())
    assert body["intents"] == [] and body["topics"] == []


@pytest.mark.parametrize(("query", "field"), [
    ({"lon": AUSTIN[1]}, "lat"),
    ({"lat": 91, "lon": AUSTIN[1]}, "lat"),
    ({"lat": AUSTIN[0], "lon": AUSTIN[1], "window": "1h"}, "window"),
    ({"lat": AUSTIN[0], "lon": AUSTIN[1], "radius_km": 0}, "radius_km"),
    ({"lat": AUSTIN[0], "lon": "east"}, "lon"),
])
def test_bad_queries_name_the_field(make_user: Any, query: dict[str, Any], field: str) -> None:
    r = make_user().get("/api/v1/trends", query_string=query)
    assert r.status_code == 422
    assert field in error_of(r)["fields"]


def test_trends_need_a_sign_in(client: Any) -> None:
    assert client.get("/api/v1/trends", query_string={"lat": 0, "lon": 0}).status_code == 401


@pytest.mark.parametrize(("count", "edge"), [(0, 0), (2, 0), (3, 3), (4, 3), (5, 5), (9, 5),
                                             (10, 10), (19, 10), (20, 20), (49, 20), (50, 50),
                                             (99, 50), (100, 100), (199, 100), (200, 200),
                                             (499, 200), (500, 500), (1000, 1000),
                                             (2500, 2000), (7000, 5000)])
def test_buckets(count: int, edge: int) -> None:
    assert services.bucket(count, 3) == edge
