"""Provider profiles: PUT /me/provider rules, the seeded category list, public profiles."""

from __future__ import annotations

import string
from typing import Any

import pytest
from conftest import AUSTIN, committed_state, error_of
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from marketplace.errors import Conflict, Invalid, NotFound
from marketplace.extensions import db
from marketplace.geo import grid_cell_centre, in_reach
from marketplace.providers import services as providers
from marketplace.providers.models import Provider, ProviderCoverage
from marketplace.providers.schemas import ProviderInSchema

SEEDED = {
    "catering", "cleaning", "plumbing", "electrical", "handyman", "moving", "gardening",
    "painting", "tutoring", "childcare", "petcare", "photography", "music", "beauty", "fitness",
    "it-support", "car-rental", "car-repair", "events", "tailoring",
}


def profile(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "handle": "best-caterer",
        "display_name": "Best Caterer",
        "bio": "Buffets for any crowd.",
        "categories": ["catering", "events"],
        "base": {"lat": AUSTIN[0] + 0.0031, "lon": AUSTIN[1] - 0.0027},
        "radius_km": 30,
        "active": True,
    }
    data.update(overrides)
    return data


# --- categories -----------------------------------------------------------------------------


def test_categories_are_the_seeded_list(client):
    r = client.get("/api/v1/categories")
    assert r.status_code == 200
    cats = r.get_json()["items"]
    assert r.get_json()["next_cursor"] is None and "Link" not in r.headers  # one page
    assert {c["slug"] for c in cats} == SEEDED
    names = [c["name"] for c in cats]
    assert names == sorted(names)


# --- creating and replacing a profile -------------------------------------------------------


def test_put_creates_the_profile_with_the_exact_base(make_user):
    person = make_user()
    data = profile()
    r = person.put("/api/v1/me/provider", json=data)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["handle"] == "best-caterer"
    assert body["display_name"] == "Best Caterer" and body["bio"] == "Buffets for any crowd."
    assert body["categories"] == ["catering", "events"]
    assert body["base"] == data["base"]
    assert body["radius_km"] == 30 and body["active"] is True
    assert "reputation" not in body and "user_id" not in body
    row = db.session.get(Provider, body["id"])
    assert row.user_id == person.user.id


def test_put_again_replaces_the_profile_and_keeps_its_id(make_user):
    person = make_user()
    first = person.put("/api/v1/me/provider", json=profile()).get_json()
    r = person.put("/api/v1/me/provider", json=profile(
        handle="renamed", display_name="Renamed", bio="", categories=["plumbing"],
        base={"lat": 40.0, "lon": -75.0}, radius_km=5, active=False))
    assert r.status_code == 200, r.get_json()
    second = r.get_json()
    assert second["id"] == first["id"]
    assert second["handle"] == "renamed" and second["categories"] == ["plumbing"]
    assert second["base"] == {"lat": 40.0, "lon": -75.0} and second["active"] is False
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Provider)) == 1
    assert person.client.get("/api/v1/providers/best-caterer").status_code == 404
    assert person.client.get("/api/v1/providers/renamed").status_code == 200


def test_keeping_your_own_handle_is_not_a_conflict(make_user):
    person = make_user()
    person.put("/api/v1/me/provider", json=profile())
    r = person.put("/api/v1/me/provider", json=profile(display_name="New name"))
    assert r.status_code == 200
    assert r.get_json()["display_name"] == "New name"


def test_missing_optional_fields_take_defaults(make_user):
    person = make_user()
    data = profile()
    del data["bio"], data["active"]
    body = person.put("/api/v1/me/provider", json=data).get_json()
    assert body["bio"] == "" and body["active"] is True


def test_duplicate_categories_are_stored_once(make_user):
    person = make_user()
    r = person.put("/api/v1/me/provider", json=profile(categories=["catering", "catering"]))
    assert r.status_code == 200
    assert r.get_json()["categories"] == ["catering"]


def test_handle_taken_by_someone_else_is_409_naming_handle(make_user):
    owner, other = make_user(), make_user()
    owner.put("/api/v1/me/provider", json=profile())
    before = committed_state()
    r = other.put("/api/v1/me/provider", json=profile(display_name="Copycat"))
    assert r.status_code == 409
    error = error_of(r)
    assert error["code"] == "conflict" and "handle" in error["fields"]
    assert committed_state() == before
    assert other.get("/api/v1/me").get_json()["provider"] is None


def test_put_me_provider_requires_a_token(client):
    r = client.put("/api/v1/me/provider", json=profile())
    assert r.status_code == 401
    error_of(r)


@pytest.mark.parametrize("handle", [
    "ab", "a" * 31, "-abc", "abc-", "Abc", "ABC", "has space", "under_score", "dot.ted",
    "café", "", "ab/c",
])
def test_bad_handles_are_422_naming_handle(make_user, handle):
    person = make_user()
    r = person.put("/api/v1/me/provider", json=profile(handle=handle))
    assert r.status_code == 422
    assert "handle" in error_of(r)["fields"]
    assert person.get("/api/v1/me").get_json()["provider"] is None


@pytest.mark.parametrize("handle", ["abc", "a" * 30, "a-b", "9lives", "a--b", "x1-y2-z3"])
def test_good_handles_are_accepted(make_user, handle):
    person = make_user()
    r = person.put("/api/v1/me/provider", json=profile(handle=handle))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["handle"] == handle


HANDLE_CHARS = string.ascii_lowercase + string.digits + "-"


def _is_valid_handle(handle: str) -> bool:
    """The rule as the brief states it, written independently of the implementation."""
    return (3 <= len(handle) <= 30 and all(c in HANDLE_CHARS for c in handle)
            and handle[0] != "-" and handle[-1] != "-")


@given(st.one_of(
    st.text(alphabet=HANDLE_CHARS, max_size=33),
    st.text(alphabet=HANDLE_CHARS + "ABZ_. é/\t", max_size=33),
))
def test_handle_rule_is_exactly_3_to_30_of_a_z_0_9_dash_not_at_the_ends(handle):
    errors = ProviderInSchema().validate(profile(handle=handle))
    assert ("handle" not in errors) == _is_valid_handle(handle), (handle, errors)


def test_handle_with_a_trailing_newline_is_rejected(make_user):
    person = make_user()
    r = person.put("/api/v1/me/provider", json=profile(handle="abc\n"))
    assert r.status_code == 422
    assert "handle" in error_of(r)["fields"]


@pytest.mark.parametrize("overrides, field", [
    ({"categories": ["catering", "space-travel"]}, "categories"),
    ({"categories": ["CATERING"]}, "categories"),
    ({"categories": []}, "categories"),
    ({"categories": "catering"}, "categories"),
    ({"radius_km": 0}, "radius_km"),
    ({"radius_km": 0.99}, "radius_km"),
    ({"radius_km": 100.01}, "radius_km"),
    ({"radius_km": -5}, "radius_km"),
    ({"radius_km": "far"}, "radius_km"),
    ({"base": {"lat": 90.5, "lon": 0}}, "base"),
    ({"base": {"lat": -91, "lon": 0}}, "base"),
    ({"base": {"lat": 0, "lon": 180.5}}, "base"),
    ({"base": {"lat": 0, "lon": -181}}, "base"),
    ({"base": {"lat": 0}}, "base"),
    ({"base": {"lat": 0, "lon": 0, "exact": True}}, "base"),
    ({"display_name": ""}, "display_name"),
    ({"display_name": "d" * 81}, "display_name"),
    ({"bio": "b" * 2001}, "bio"),
    ({"active": "maybe"}, "active"),
])
def test_invalid_profile_is_422_naming_the_field_and_changes_nothing(make_user, overrides, field):
    person = make_user()
    before = committed_state()
    r = person.put("/api/v1/me/provider", json=profile(**overrides))
    assert r.status_code == 422, r.get_json()
    assert field in error_of(r)["fields"]
    assert committed_state() == before


def test_unknown_category_on_an_existing_profile_changes_nothing(make_user):
    person = make_user()
    person.put("/api/v1/me/provider", json=profile())
    before = committed_state()
    r = person.put("/api/v1/me/provider",
                   json=profile(handle="new-handle", categories=["nonsense"]))
    assert r.status_code == 422
    assert "categories" in error_of(r)["fields"]
    assert committed_state() == before


@pytest.mark.parametrize("radius", [1, 100, 1.0, 99.5])
def test_radius_bounds_are_inclusive(make_user, radius):
    person = make_user()
    r = person.put("/api/v1/me/provider", json=profile(radius_km=radius))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["radius_km"] == radius


@pytest.mark.parametrize("lat, lon", [(90, 180), (-90, -180), (0, 0)])
def test_extreme_coordinates_are_accepted(make_user, lat, lon):
    person = make_user()
    r = person.put("/api/v1/me/provider", json=profile(base={"lat": lat, "lon": lon}))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["base"] == {"lat": lat, "lon": lon}


@pytest.mark.parametrize("field, raw", [
    ("radius_km", '"base": {"lat": 1, "lon": 1}, "radius_km": NaN'),
    ("radius_km", '"base": {"lat": 1, "lon": 1}, "radius_km": Infinity'),
    ("base", '"base": {"lat": NaN, "lon": 1}, "radius_km": 5'),
])
def test_non_finite_numbers_are_rejected(make_user, field, raw):
    person = make_user()
    body = '{"handle": "nan-pro", "display_name": "N", "categories": ["catering"], ' + raw + "}"
    r = person.put("/api/v1/me/provider", data=body, content_type="application/json")
    assert r.status_code == 422
    assert field in error_of(r)["fields"]
    assert person.get("/api/v1/me").get_json()["provider"] is None


# --- active toggle and the matching index ---------------------------------------------------


def test_active_toggle_controls_whether_needs_reach_the_provider(make_provider, make_need):
    pro = make_provider()
    need = make_need()
    assert pro.get(f"/api/v1/needs/{need.id}").status_code == 200
    off = profile(handle=pro.provider.handle, categories=["catering"],
                  base={"lat": AUSTIN[0], "lon": AUSTIN[1]}, active=False)
    assert pro.put("/api/v1/me/provider", json=off).get_json()["active"] is False
    assert pro.get(f"/api/v1/needs/{need.id}").status_code == 404
    assert pro.get("/api/v1/feed").get_json()["items"] == []
    on = {**off, "active": True}
    assert pro.put("/api/v1/me/provider", json=on).get_json()["active"] is True
    assert pro.get(f"/api/v1/needs/{need.id}").status_code == 200
    assert [n["id"] for n in pro.get("/api/v1/feed").get_json()["items"]] == [need.id]


def test_coverage_rows_follow_the_profile(app, make_user):
    person = make_user()
    provider = providers.save_profile(person.user, profile())

    def coverage() -> set[int]:
        with db.engine.connect() as conn:
            return set(conn.scalars(select(ProviderCoverage.category_id)
                                    .where(ProviderCoverage.provider_id == provider.id)))

    assert coverage() == {c.id for c in provider.categories} and len(coverage()) == 2
    providers.save_profile(person.user, profile(categories=["plumbing"]))
    assert coverage() == {providers.category_by_slug("plumbing").id}
    providers.save_profile(person.user, profile(categories=["plumbing"], active=False))
    assert coverage() == set()


def test_changing_categories_changes_which_needs_are_visible(make_provider, make_need):
    pro = make_provider(categories=("catering",))
    catering, plumbing = make_need(), make_need(category="plumbing")
    assert pro.get(f"/api/v1/needs/{catering.id}").status_code == 200
    assert pro.get(f"/api/v1/needs/{plumbing.id}").status_code == 404
    make_provider(pro, categories=("plumbing",), handle=pro.provider.handle)
    assert pro.get(f"/api/v1/needs/{catering.id}").status_code == 404
    assert pro.get(f"/api/v1/needs/{plumbing.id}").status_code == 200


# --- service level --------------------------------------------------------------------------


def test_service_save_profile_refuses_a_taken_handle(app, make_user):
    a, b = make_user(), make_user()
    providers.save_profile(a.user, profile())
    with pytest.raises(Conflict) as exc:
        providers.save_profile(b.user, profile())
    assert "handle" in exc.value.fields
    db.session.rollback()
    assert providers.provider_of(b.user) is None


def test_service_unknown_categories_name_the_field(app, make_user):
    with pytest.raises(Invalid) as exc:
        providers.categories_by_slugs(["catering", "nope", "nada"])
    assert "categories" in exc.value.fields and len(exc.value.fields["categories"]) == 2
    with pytest.raises(Invalid) as exc:
        providers.category_by_slug("nope")
    assert "category" in exc.value.fields


def test_service_save_profile_with_unknown_category_leaves_nothing_behind(app, make_user):
    person = make_user()
    with pytest.raises(Invalid):
        providers.save_profile(person.user, profile(categories=["nope"]))
    assert providers.provider_of(person.user) is None


def test_service_by_handle(app, make_provider):
    pro = make_provider(handle="look-me-up")
    assert providers.by_handle("look-me-up").id == pro.provider.id
    assert providers.by_handle("LOOK-ME-UP").id == pro.provider.id
    with pytest.raises(NotFound):
        providers.by_handle("nobody-here")


def test_service_reaches_needs_both_radii(app, make_provider):
    pro = make_provider(radius_km=10).provider
    north_5km = AUSTIN[0] + 5 / 111.195
    north_15km = AUSTIN[0] + 15 / 111.195
    base = (grid_cell_centre(pro.base_lat, pro.base_lon), pro.radius_km)
    assert in_reach(*base, grid_cell_centre(north_5km, AUSTIN[1]), 20)
    assert not in_reach(*base, grid_cell_centre(north_5km, AUSTIN[1]), 4)
    assert not in_reach(*base, grid_cell_centre(north_15km, AUSTIN[1]), 20)


# --- the public profile ---------------------------------------------------------------------


def test_public_profile_needs_no_token_and_shows_only_an_approximate_area(client, make_provider):
    base = (AUSTIN[0] + 0.0031, AUSTIN[1] - 0.0027)
    pro = make_provider(base=base, handle="public-pro", categories=("catering", "events"))
    r = client.get("/api/v1/providers/public-pro")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    cell = grid_cell_centre(*base)
    assert body["service_area"] == {"lat": cell.lat, "lon": cell.lon, "approximate": True}
    assert (body["service_area"]["lat"], body["service_area"]["lon"]) != base
    assert body["handle"] == "public-pro"
    assert body["display_name"] == pro.provider.display_name
    assert body["categories"] == ["catering", "events"]
    assert body["active"] is True and body["radius_km"] == 25
    assert body["reputation"]["count"] == 0 and body["reputation"]["is_new"] is True
    text = r.get_data(as_text=True)
    assert "base" not in body and "id" not in body
    assert pro.user.email not in text
    assert str(base[0]) not in text and str(base[1]) not in text


def test_public_profile_area_is_the_same_for_every_point_in_a_cell(client, make_provider):
    a = (AUSTIN[0] + 0.0001, AUSTIN[1] + 0.0001)
    b = (AUSTIN[0] + 0.0002, AUSTIN[1] + 0.0003)
    assert grid_cell_centre(*a) == grid_cell_centre(*b)
    make_provider(base=a, handle="pro-a")
    make_provider(base=b, handle="pro-b")
    area_a = client.get("/api/v1/providers/pro-a").get_json()["service_area"]
    area_b = client.get("/api/v1/providers/pro-b").get_json()["service_area"]
    assert area_a == area_b


def test_public_profile_of_unknown_handle_is_404(client):
    r = client.get("/api/v1/providers/no-such-pro")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


def test_public_profile_of_an_inactive_provider_says_so(client, make_provider):
    make_provider(handle="resting", active=False)
    body = client.get("/api/v1/providers/resting").get_json()
    assert body["active"] is False
