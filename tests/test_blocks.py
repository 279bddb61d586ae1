"""A customer's block: the provider is never matched to, told about, or shown their needs."""

from __future__ import annotations

from typing import Any

from conftest import error_of
from sqlalchemy import select

from marketplace.blocks import services as blocks
from marketplace.extensions import db
from marketplace.needs import services as needs
from marketplace.notifications.models import Notification


def told(person: Any) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(
        Notification.user_id == person.user.id, Notification.type == "need.matched")))


def test_blocked_provider_is_not_matched_notified_or_shown(make_user: Any, make_provider: Any,
                                                           make_need: Any) -> None:
    alice = make_user()
    blocked, other = make_provider(), make_provider()
    r = alice.put(f"/api/v1/me/blocks/{blocked.provider.handle}")
    assert r.status_code == 200 and r.get_json()["handle"] == blocked.provider.handle
    assert alice.put(f"/api/v1/me/blocks/{blocked.provider.handle}").status_code == 200
    need = make_need(alice)
    assert told(blocked) == [] and len(told(other)) == 1
    assert blocked.get(f"/api/v1/needs/{need.id}").status_code == 404
    r = blocked.post(f"/api/v1/needs/{need.id}/offers", json={})
    assert r.status_code == 404
    assert [n["id"] for n in blocked.get("/api/v1/feed").get_json()["items"]] == []
    assert [n["id"] for n in other.get("/api/v1/feed").get_json()["items"]] == [need.id]
    assert [p["handle"] for p in alice.get("/api/v1/me/blocks").get_json()] == \
        [blocked.provider.handle]
    # Someone else's needs still reach the provider.
    bob_need = make_need(make_user())
    assert blocked.get(f"/api/v1/needs/{bob_need.id}").status_code == 200


def test_unblocking_restores_matching(make_user: Any, make_provider: Any, make_need: Any) -> None:
    alice = make_user()
    pro = make_provider()
    blocks.block(alice.user, pro.provider.handle)
    assert alice.delete(f"/api/v1/me/blocks/{pro.provider.handle}").status_code == 204
    need = make_need(alice)
    assert len(told(pro)) == 1
    assert needs.matches(pro.provider, need)


def test_block_errors(make_user: Any, make_provider: Any) -> None:
    me = make_provider()
    assert error_of(me.put(f"/api/v1/me/blocks/{me.provider.handle}"))["status"] == 403
    assert error_of(me.put("/api/v1/me/blocks/nobody-here"))["status"] == 404
    r = me.put(f"/api/v1/me/blocks/{make_provider().provider.handle}", json={"why": "x"})
    assert "why" in error_of(r)["fields"]
