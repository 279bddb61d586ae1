"""A customer's block: the provider is never matched to, told about, or shown their needs."""

from __future__ import annotations

import json
from typing import Any

from conftest import error_of
from sqlalchemy import func, select

from marketplace import lifecycle
from marketplace.extensions import db
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedStatus
from marketplace.notifications.models import Notification
from marketplace.offers.models import Offer, OfferStatus


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
    assert [p["handle"] for p in alice.get("/api/v1/me/blocks").get_json()["items"]] == \
        [blocked.provider.handle]
    # Someone else's needs still reach the provider.
    bob_need = make_need(make_user())
    assert blocked.get(f"/api/v1/needs/{bob_need.id}").status_code == 200


def test_unblocking_restores_matching(make_user: Any, make_provider: Any, make_need: Any) -> None:
    alice = make_user()
    pro = make_provider()
    lifecycle.block(alice.user, pro.provider.handle)
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


# --- a block ends every open dealing between the two ------------------------------------------


def test_blocking_ends_every_open_offer_and_thread_at_once(
        auth: Any, make_user: Any, make_provider: Any, make_need: Any, make_offer: Any) -> None:
    from marketplace.messages import services as messages

    alice = make_user(name="Alice Zed", phone="+15125550199")
    pest, other = make_provider(), make_provider()
    open_need = make_need(alice, max_offers=2)
    pending = make_offer(open_need, pest)
    others = make_offer(open_need, other)
    messages.send(pest.user, pending.id, "Did you see my offer?")
    assigned_need = make_need(alice)
    hired = make_offer(assigned_need, pest)
    lifecycle.accept(alice.user, hired.id)
    done_need = make_need(alice)
    done = make_offer(done_need, pest)
    lifecycle.accept(alice.user, done.id)
    lifecycle.complete(alice.user, done_need.id)
    before = {n.id for n in db.session.scalars(select(Notification).where(
        Notification.user_id == pest.user.id))}

    assert alice.put(f"/api/v1/me/blocks/{pest.provider.handle}").status_code == 200

    # Everything the blocked provider tries is refused as if it were not there.
    for offer in (pending, hired, done):
        for method, path, body in (
                ("post", f"/api/v1/offers/{offer.id}/messages", {"body": "Hello?"}),
                ("get", f"/api/v1/offers/{offer.id}/messages", None),
                ("get", f"/api/v1/offers/{offer.id}", None),
                ("patch", f"/api/v1/offers/{offer.id}", {"price": {"amount": 1,
                                                                     "currency": "USD"}}),
                ("post", f"/api/v1/offers/{offer.id}/withdraw", None),
                ("get", f"/api/v1/needs/{offer.need_id}", None),
                ("get", f"/api/v1/needs/{offer.need_id}/offers", None)):
            r = getattr(pest, method)(path, json=body)
            assert r.status_code == 404, (method, path, r.get_json())
    web = auth.sign_in(pest)
    for offer in (pending, hired, done):
        assert web.get(f"/needs/{offer.need_id}").status_code == 404
        assert web.post(f"/offers/{offer.id}/messages", data={"body": "x"}).status_code == 404
    jobs = "".join(web.get(f"/jobs?tab={tab}").get_data(as_text=True)
                   for tab in ("pending", "accepted", "completed", "closed"))
    assert alice.user.email not in jobs and "5550199" not in jobs and "Zed" not in jobs

    # The open offer is declined (a slot freed), the assigned job cancelled by the customer.
    db.session.expire_all()
    assert db.session.get(Offer, pending.id).status == OfferStatus.DECLINED
    assert db.session.get(Offer, others.id).status == OfferStatus.PENDING
    assert db.session.get(Need, open_need.id).offer_count == 1
    assert db.session.get(Need, open_need.id).status == NeedStatus.OPEN
    cancelled = db.session.get(Need, assigned_need.id)
    assert cancelled.status == NeedStatus.CANCELLED
    assert cancelled.cancelled_by_id == alice.user.id
    assert db.session.get(Need, done_need.id).status == NeedStatus.COMPLETED

    # The customer sees why; the provider is told it was declined and cancelled, not why.
    seen = alice.get(f"/api/v1/offers/{pending.id}").get_json()
    assert seen["status"] == "declined" and seen["decline_reason"] == "You blocked this provider."
    listed = {o["id"]: o for o in alice.get(f"/api/v1/needs/{open_need.id}/offers")
              .get_json()["items"]}
    assert listed[pending.id]["decline_reason"] == "You blocked this provider."
    assert listed[others.id]["decline_reason"] is None
    told = {(n.type, n.data.get("offer_id") or n.data["need"]["id"]) for n in db.session.scalars(
        select(Notification).where(Notification.user_id == pest.user.id,
                                   Notification.id.not_in(before)))}
    assert told == {("offer.declined", pending.id), ("need.cancelled", assigned_need.id)}
    mine = {o["id"]: o for o in pest.get("/api/v1/offers").get_json()["items"]}
    assert mine[pending.id]["status"] == "declined"
    assert "block" not in json.dumps(mine).lower()
    assert "block" not in json.dumps([n.data for n in db.session.scalars(
        select(Notification).where(Notification.user_id == pest.user.id))]).lower()

    # Neither side can write in any of their threads any more.
    for offer in (pending, hired, done):
        r = alice.post(f"/api/v1/offers/{offer.id}/messages", json={"body": "Stop"})
        assert r.status_code == 409, r.get_json()

    # Blocking again is the same as once: nothing more happens.
    count = db.session.scalar(select(func.count()).select_from(Notification))
    assert alice.put(f"/api/v1/me/blocks/{pest.provider.handle}").status_code == 200
    assert db.session.scalar(select(func.count()).select_from(Notification)) == count
