"""The provider feed pages in SQL: a page costs what its size costs, not what the number of open
needs costs, and every page is exactly the slice of the whole feed it should be — the feed
being, by definition, every open need posted to the provider now (each radius covers the other,
measured between the grid cells of the base and of the need,
the category served, not expired, not the provider's own, not from a customer who blocked
them), nearest distance band first (bands from grid-cell centres), then newest. The definition
is written out below as a brute-force check of every need, and compared with the paged feed
over random worlds, band edges, poles and the antimeridian included."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from conftest import AUSTIN, _clean
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, insert, select
from test_feed import at, offset

from marketplace.accounts.models import User
from marketplace.blocks.models import Block
from marketplace.db_types import utcnow
from marketplace.extensions import db
from marketplace.geo import (
    DISTANCE_BANDS,
    band_index,
    cell_distance_km,
    grid_cell_centre,
    haversine_km,
    lat_row,
)
from marketplace.needs.models import Need, NeedStatus
from marketplace.providers import services as providers
from marketplace.providers.models import Provider


@contextmanager
def counting_loads() -> Iterator[list[int]]:
    """How many Need rows the ORM builds while the block runs."""
    loaded: list[int] = []

    def on_load(target: Need, _context: Any) -> None:
        loaded.append(target.id)

    event.listen(Need, "load", on_load)
    try:
        yield loaded
    finally:
        event.remove(Need, "load", on_load)


def walk(person: Any, limit: int) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        args: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = person.get("/api/v1/feed", query_string=args)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000


def test_a_page_builds_only_its_own_needs(make_user: Any, make_provider: Any,
                                          make_need: Any) -> None:
    """With 60 open needs in reach, a page of 5 builds 5 needs, page after page (the feed used
    to build every matching need for every page and cut the page out afterwards)."""
    pro = make_provider(radius_km=25)
    customer = make_user()
    for i in range(60):
        make_need(customer, location=at(offset((i * 0.37) % 24, i * 29)), title=f"Need {i}")
    db.session.remove()
    with counting_loads() as loaded:
        r = pro.get("/api/v1/feed", query_string={"limit": 5})
    assert r.status_code == 200 and len(r.get_json()["items"]) == 5
    assert len(loaded) == 5, f"built {len(loaded)} needs for a page of 5"
    cursor = r.get_json()["next_cursor"]
    with counting_loads() as loaded:
        r = pro.get("/api/v1/feed", query_string={"limit": 5, "cursor": cursor})
    assert len(r.get_json()["items"]) == 5 and len(loaded) == 5


# --- the definition, by brute force ---------------------------------------------------------


def reference_feed(provider: Provider) -> list[int]:
    """Every need checked one by one against the rule, sorted (band, newest first)."""
    if not provider.active:
        return []
    now = utcnow()
    served = {c.id for c in provider.categories}
    blocking = set(db.session.scalars(select(Block.customer_id).where(
        Block.provider_id == provider.id)))
    ranked = []
    for need in db.session.scalars(select(Need)):
        km = haversine_km(*grid_cell_centre(provider.base_lat, provider.base_lon),
                          *grid_cell_centre(need.lat, need.lon))  # cell to cell, like bands
        if (need.status == NeedStatus.OPEN and need.category_id in served
                and need.expires_at > now and need.customer_id is not None
                and need.customer_id != provider.user_id and need.customer_id not in blocking
                and km <= provider.radius_km and km <= need.radius_km):
            band = band_index(cell_distance_km(provider.base_lat, provider.base_lon,
                                               need.lat, need.lon))
            ranked.append((band, -need.id))
    return [-neg_id for _band, neg_id in sorted(ranked)]


EDGES = [upper for upper, _label in DISTANCE_BANDS[:-1]]
distances = st.one_of(
    st.floats(0, 130),
    st.sampled_from(EDGES).flatmap(lambda e: st.floats(e * 0.985, e * 1.015)),
)
bases = st.one_of(
    st.just(AUSTIN),
    st.tuples(st.floats(-85, 85), st.floats(-180, 180)),
    st.tuples(st.sampled_from([89.9, -89.9, 0.0]), st.floats(-180, 180)),  # poles, equator
    st.tuples(st.floats(-60, 60), st.sampled_from([179.99, -179.99])),  # the antimeridian
)
need_specs = st.lists(st.tuples(
    distances, st.floats(0, 360),                       # where, from the base
    st.floats(1, 100),                                   # need radius
    st.sampled_from(["catering", "catering", "cleaning", "plumbing"]),
    st.sampled_from(["open"] * 6 + ["assigned", "cancelled", "expired"]),
    st.booleans(),                                       # already past expires_at
    st.sampled_from(["a", "a", "b", "blocker", "erased", "pro"]),  # whose
), max_size=40)


class World:
    """A provider and a random set of needs around them, written straight into the tables."""

    def __init__(self) -> None:
        self.users: dict[str, int] = {}

    def user(self, name: str) -> int:
        if name not in self.users:
            self.users[name] = db.session.execute(insert(User).values(
                email=f"{name}@example.com", name=name, password_hash="x",
                created_at=utcnow()).returning(User.id)).scalar_one()
        return self.users[name]


@pytest.fixture
def fresh(app: Flask) -> Any:
    """Hypothesis runs many examples in one test: each starts from empty tables."""

    def reset() -> None:
        db.session.remove()
        _clean(app)

    return reset


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(base=bases, radius=st.floats(1, 100), specs=need_specs,
       limit=st.integers(1, 7), categories=st.sampled_from([("catering",),
                                                           ("catering", "cleaning")]))
def test_every_page_is_the_slice_of_the_feed_it_should_be(
        app: Flask, fresh: Any, make_user: Any, base: tuple[float, float], radius: float,
        specs: list[Any], limit: int, categories: tuple[str, ...]) -> None:
    fresh()
    world = World()
    pro = make_user(name="Pro")
    pro.provider = providers.save_profile(pro.user, {
        "handle": "pro-feed", "display_name": "Pro", "bio": "", "categories": list(categories),
        "base": {"lat": base[0], "lon": base[1]}, "radius_km": radius, "active": True})
    world.users["pro"] = pro.user.id
    now = utcnow()
    category_ids = {c.slug: c.id for c in providers.all_categories()}
    for km, bearing, need_radius, category, status, stale, whose in specs:
        lat, lon = offset(km, bearing, origin=base)
        customer = None if whose == "erased" else world.user(whose)
        db.session.add(Need(
            customer_id=customer, category_id=category_ids[category], title="A need",
            description="", lat=lat, lon=lon, lat_row=lat_row(lat), radius_km=need_radius,
            budget_amount=100, budget_currency="USD", status=NeedStatus(status),
            expires_at=now + (timedelta(minutes=-1) if stale else timedelta(hours=1)),
            offer_count=0))
    if "blocker" in world.users:
        db.session.add(Block(customer_id=world.users["blocker"], provider_id=pro.provider.id))
    db.session.commit()
    expected = reference_feed(pro.provider)
    pages = walk(pro, limit)
    assert [i for page in pages for i in page] == expected
    assert all(len(page) == limit for page in pages[:-1])
    assert len(pages[-1]) == (len(expected) - 1) % limit + 1 if expected else pages == [[]]


def test_the_random_worlds_are_not_trivial() -> None:
    """The strategies reach every band and both sides of every band edge."""
    reached = {band_index(e * f) for e in EDGES for f in (0.985, 1.015)}
    assert reached == set(range(len(DISTANCE_BANDS)))
    assert math.isclose(EDGES[-1], 100.0)
