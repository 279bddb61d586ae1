"""Tag subscriptions and @mentions: who a need is posted to beside the providers of its
category (in-process; the live delivery is tests/test_signals_live.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import AUSTIN, error_of, need_data
from sqlalchemy import func, select

from marketplace.extensions import db
from marketplace.needs.models import Need
from marketplace.notifications.models import Notification
from marketplace.providers import services as providers
from marketplace.providers.matching import providers_for_tags
from marketplace.providers.models import ProviderTagCoverage

FAR = (32.7767, -96.7970)  # Dallas, ~300 km


def matched_payloads(person: Any) -> list[dict[str, Any]]:
    import json

    rows = db.session.scalars(select(Notification).where(
        Notification.user_id == person.user.id, Notification.type == "need.matched"))
    return [json.loads(r.data)["need"] if isinstance(r.data, str) else r.data["need"]
            for r in rows]


def subscribe(person: Any, tags: list[str], **changes: Any) -> Any:
    p = person.provider
    data = {"handle": p.handle, "display_name": p.display_name, "bio": "",
            "categories": [c.slug for c in p.categories],
            "base": {"lat": p.base_lat, "lon": p.base_lon}, "radius_km": p.radius_km,
            "active": True, "tags": tags, **changes}
    return person.put("/api/v1/me/provider", json=data)


def feed_ids(person: Any) -> list[int]:
    return [n["id"] for n in person.get("/api/v1/feed").get_json()["items"]]


def test_a_provider_subscribes_to_tags_through_the_api(make_provider: Any) -> None:
    pro = make_provider(categories=("plumbing",))
    r = subscribe(pro, ["?Kayak", "#Boats", "?kayak"])
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["tags"] == ["?kayak", "#boats"]
    assert r.get_json()["direct_asks"] is True
    assert db.session.scalar(select(func.count()).select_from(ProviderTagCoverage)) == 2
    bad = subscribe(pro, ["kayak", "@anna"])
    assert bad.status_code == 422
    assert "tags" in error_of(bad)["fields"]


def test_a_subscribed_provider_in_range_is_matched_for_an_intent_outside_their_categories(
        make_user: Any, make_provider: Any) -> None:
    near = make_provider(categories=("plumbing",))
    far = make_provider(categories=("plumbing",), base=FAR, radius_km=100)
    unsubscribed = make_provider(categories=("plumbing",))
    subscribe(near, ["?kayak"])
    subscribe(far, ["?kayak"])
    customer = make_user()
    r = customer.post("/api/v1/needs", json=need_data(title="Renting a ?Kayak this weekend"))
    need = r.get_json()
    assert [n["id"] for n in matched_payloads(near)] == [need["id"]]
    assert matched_payloads(near)[0]["direct"] is False
    assert matched_payloads(far) == [] and matched_payloads(unsubscribed) == []
    assert near.get(f"/api/v1/needs/{need['id']}").status_code == 200
    assert far.get(f"/api/v1/needs/{need['id']}").status_code == 404
    assert unsubscribed.get(f"/api/v1/needs/{need['id']}").status_code == 404
    assert feed_ids(near) == [need["id"]]
    assert feed_ids(far) == []


def test_tag_matching_follows_the_cell_rule_and_is_each_provider_once(
        make_provider: Any) -> None:
    near = make_provider(categories=("plumbing",))
    subscribe(near, ["?kayak", "#boats"])
    matches = providers_for_tags([("intent", "kayak"), ("topic", "boats")], *AUSTIN, 20)
    assert [m.provider_id for m in matches] == [near.provider.id]
    assert providers_for_tags([("intent", "kayak")], *FAR, 20) == []
    assert providers_for_tags([("intent", "canoe")], *AUSTIN, 20) == []


def test_a_provider_of_the_category_and_the_tag_is_told_once(make_user: Any,
                                                             make_provider: Any) -> None:
    pro = make_provider(categories=("catering",))
    subscribe(pro, ["?kayak"])
    need = make_user().post("/api/v1/needs", json=need_data(title="Food and a ?kayak")).get_json()
    assert [n["id"] for n in matched_payloads(pro)] == [need["id"]]
    assert feed_ids(pro) == [need["id"]]


def test_a_mentioned_provider_gets_the_need_whatever_the_distance_and_category(
        make_user: Any, make_provider: Any) -> None:
    far = make_provider(categories=("plumbing",), base=FAR, radius_km=5, handle="far-away")
    customer = make_user()
    need = customer.post("/api/v1/needs", json=need_data(
        title="Catering", description="Could @Far-Away do it?")).get_json()
    assert need["mentions"] == ["far-away"]
    payloads = matched_payloads(far)
    assert [(n["id"], n["direct"]) for n in payloads] == [(need["id"], True)]
    seen = far.get(f"/api/v1/needs/{need['id']}").get_json()
    assert (seen["viewer_role"], seen["direct"]) == ("matched_provider", True)
    assert feed_ids(far) == [need["id"]]
    assert far.get("/api/v1/feed").get_json()["items"][0]["direct"] is True


def test_a_mention_is_not_sent_when_blocked_opted_out_or_inactive(make_user: Any,
                                                                  make_provider: Any) -> None:
    customer = make_user()
    blocked = make_provider(base=FAR, handle="blocked-pro")
    opted_out = make_provider(base=FAR, handle="quiet-pro")
    inactive = make_provider(base=FAR, handle="resting-pro", active=False)
    assert customer.put("/api/v1/me/blocks/blocked-pro").status_code == 200
    assert subscribe(opted_out, [], direct_asks=False).get_json()["direct_asks"] is False
    need = customer.post("/api/v1/needs", json=need_data(
        description="@blocked-pro @quiet-pro @resting-pro")).get_json()
    for pro in (blocked, opted_out, inactive):
        assert matched_payloads(pro) == []
        assert pro.get(f"/api/v1/needs/{need['id']}").status_code == 404
        assert feed_ids(pro) == []


@pytest.fixture
def mention_limit(app: Any) -> Iterator[Any]:
    saved = app.config["RATE_LIMIT_MENTIONS"]

    def set_limit(limit: str) -> None:
        app.config["RATE_LIMIT_MENTIONS"] = limit

    yield set_limit
    app.config["RATE_LIMIT_MENTIONS"] = saved


def test_mentions_are_rate_limited_and_a_refused_need_is_not_posted(
        make_user: Any, make_provider: Any, mention_limit: Any) -> None:
    mention_limit("3 per hour")
    make_provider(base=FAR, handle="far-one")
    customer = make_user()
    assert customer.post("/api/v1/needs", json=need_data(
        description="@far-one @nobody")).status_code == 201
    r = customer.post("/api/v1/needs", json=need_data(description="@far-one @someone"))
    assert r.status_code == 429, r.get_json()
    assert error_of(r)["status"] == 429
    assert db.session.scalar(select(func.count()).select_from(Need)) == 1
    # A need without mentions is not limited by them.
    assert customer.post("/api/v1/needs", json=need_data()).status_code == 201


def test_too_many_mentions_in_one_need_is_a_field_error(make_user: Any) -> None:
    r = make_user().post("/api/v1/needs", json=need_data(
        description=" ".join(f"@pro-{i}" for i in range(6))))
    assert r.status_code == 422
    assert "description" in error_of(r)["fields"]


def test_saving_a_profile_keeps_subscriptions_in_the_index_only_while_active(
        make_provider: Any) -> None:
    pro = make_provider(categories=("plumbing",))
    subscribe(pro, ["?kayak"], active=False)
    assert db.session.scalar(select(func.count()).select_from(ProviderTagCoverage)) == 0
    subscribe(pro, ["?kayak"])
    assert db.session.scalar(select(func.count()).select_from(ProviderTagCoverage)) == 1
    assert [t.tag for t in providers.provider_of(pro.user).tags] == ["kayak"]
