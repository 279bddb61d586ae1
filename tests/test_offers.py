"""Offers: making one (one per provider per need, at the budget or at a price, only when the need
was posted to you and still takes offers), the cap, revising, withdrawing, accepting (exactly one
wins, backed by the database), and listing in the customer's chosen order — through the services
and through the API."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import AUSTIN, error_of
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from marketplace import lifecycle
from marketplace.errors import Conflict, Forbidden, Invalid, NotFound
from marketplace.extensions import db
from marketplace.needs.models import Need, NeedStatus
from marketplace.notifications.models import Notification
from marketplace.offers import schemas as offer_schemas
from marketplace.offers import services as offers
from marketplace.offers.models import Offer, OfferStatus

KM_PER_DEG_LAT = 111.195
ACCEPT_RAW = text("UPDATE offers SET status = 'accepted' WHERE id = :id")


def north(km: float) -> tuple[float, float]:
    """A point ``km`` due north of the default need location."""
    return (AUSTIN[0] + km / KM_PER_DEG_LAT, AUSTIN[1])


def committed(model: Any, id_: int) -> Any:
    """One row as committed, read through a separate connection."""
    table = model.__table__
    with db.engine.connect() as conn:
        return conn.execute(select(table).where(table.c.id == id_)).mappings().one()


def offer_rows(need_id: int) -> list[Any]:
    table = Offer.__table__
    with db.engine.connect() as conn:
        return list(conn.execute(select(table).where(table.c.need_id == need_id)
                                 .order_by(table.c.id)).mappings())


def count_offers() -> int:
    with db.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Offer)) or 0


def set_expires_at(need_id: int, when: datetime) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(Need).where(Need.id == need_id).values(expires_at=when))
    db.session.expire_all()


def notifications_of_type(type_: str) -> list[tuple[int, str, int]]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(Notification.user_id, Notification.type, Notification.data)
                            .where(Notification.type == type_))
        return [(user_id, t, data["offer_id"]) for user_id, t, data in rows]


def url(need: Any) -> str:
    return f"/api/v1/needs/{need.id}/offers"


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


# --- making an offer ------------------------------------------------------------------------


def test_provider_makes_an_offer_through_the_api(make_user, make_provider, make_need):
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    r = pro.post(url(need), json={"price": usd(35000), "message": "  Can do it  ",
                                  "available_at": "2031-05-01T10:00:00Z"})
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["status"] == "pending"
    assert body["need_id"] == need.id
    assert body["price"] == usd(35000)
    assert body["message"] == "Can do it"
    assert datetime.fromisoformat(body["available_at"]) == datetime(2031, 5, 1, 10, tzinfo=UTC)
    assert body["provider"]["handle"] == pro.provider.handle
    assert body["provider"]["reputation"]["count"] == 0
    assert body["distance_band"] == "under 2 km"
    row = committed(Offer, body["id"])
    assert (row["provider_id"], row["price_amount"], row["price_currency"]) == (
        pro.provider.id, 35000, "USD")
    assert row["status"] == OfferStatus.PENDING
    assert committed(Need, need.id)["offer_count"] == 1


def test_omitting_the_price_takes_the_need_at_its_budget(make_user, make_provider, make_need):
    need = make_need(budget={"amount": 12345, "currency": "EUR"})
    r = make_provider().post(url(need), json={"message": "Your price is fine"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["price"] == {"amount": 12345, "currency": "EUR"}
    # and at service level
    offer = offers.make(make_provider().user, need.id, {"message": "me too"})
    assert (offer.price_amount, offer.price_currency) == (12345, "EUR")


def test_a_second_offer_by_the_same_provider_is_409_and_changes_nothing(make_provider, make_need):
    need = make_need()
    pro = make_provider()
    first = pro.post(url(need), json={"price": usd(30000)})
    assert first.status_code == 201
    again = pro.post(url(need), json={"price": usd(20000)})
    assert again.status_code == 409
    assert error_of(again)["code"] == "conflict"
    rows = offer_rows(need.id)
    assert len(rows) == 1 and rows[0]["price_amount"] == 30000
    assert committed(Need, need.id)["offer_count"] == 1
    with pytest.raises(Conflict):
        offers.make(pro.user, need.id, {"message": "third try"})


def test_the_database_refuses_a_duplicate_offer_row(make_provider, make_need, make_offer, backend):
    need = make_need()
    pro = make_provider()
    make_offer(need, pro)
    now = datetime.now(UTC)
    with pytest.raises(IntegrityError) as exc, db.engine.begin() as conn:
        conn.execute(insert(Offer).values(
            need_id=need.id, provider_id=pro.provider.id, price_amount=1, price_currency="USD",
            message="sneaky", status=OfferStatus.PENDING, created_at=now, updated_at=now))
    if backend == "postgresql":
        assert "uq_offers_need_provider" in str(exc.value)
    assert len(offer_rows(need.id)) == 1


def test_price_currency_must_match_the_need(make_provider, make_need):
    need = make_need()  # USD
    pro = make_provider()
    for currency in ("EUR", "GBP", "JPY"):
        r = pro.post(url(need), json={"price": {"amount": 30000, "currency": currency}})
        assert r.status_code == 422
        error = error_of(r)
        assert error["fields"] == {"price": {"currency": ["Must be USD."]}}
        assert error["message"] == "This need is priced in USD; offer in the same currency."
    assert offer_rows(need.id) == []
    assert committed(Need, need.id)["offer_count"] == 0


def test_malformed_prices_are_422_naming_the_field(make_provider, make_need):
    need = make_need()
    pro = make_provider()
    for price, field in (
        ({"amount": 300.5, "currency": "USD"}, "amount"),
        ({"amount": "300", "currency": "USD"}, "amount"),
        ({"amount": True, "currency": "USD"}, "amount"),
        ({"amount": -1, "currency": "USD"}, "amount"),
        ({"amount": 100, "currency": "usd"}, "currency"),
        ({"amount": 100}, "currency"),
    ):
        r = pro.post(url(need), json={"price": price})
        assert r.status_code == 422, price
        assert field in error_of(r)["fields"]["price"], price
    assert offer_rows(need.id) == []
    assert committed(Need, need.id)["offer_count"] == 0


def test_unknown_fields_such_as_status_are_rejected(make_provider, make_need):
    need = make_need()
    r = make_provider().post(url(need), json={"price": usd(100), "status": "accepted"})
    assert r.status_code == 422
    assert "status" in error_of(r)["fields"]
    assert offer_rows(need.id) == []


def test_a_provider_cannot_offer_on_their_own_need(make_provider, make_need):
    pro = make_provider()
    need = make_need(pro)
    r = pro.post(url(need), json={"price": usd(100)})
    assert r.status_code == 403
    error_of(r)
    with pytest.raises(Forbidden):
        offers.make(pro.user, need.id, {})
    assert offer_rows(need.id) == []
    assert committed(Need, need.id)["offer_count"] == 0


def test_a_user_without_a_provider_profile_gets_403(make_user, make_need):
    need = make_need()
    someone = make_user()
    r = someone.post(url(need), json={"price": usd(100)})
    assert r.status_code == 403
    assert "provider" in error_of(r)["message"].lower()
    assert offer_rows(need.id) == []


def test_a_provider_the_need_was_not_posted_to_gets_404(make_provider, make_need):
    need = make_need()  # radius 20 km around AUSTIN, catering
    for case, provider_kw in {
        "outside the need's radius": {"base": north(60), "radius_km": 100},
        "outside the provider's radius": {"base": north(15), "radius_km": 10},
        "far away": {"base": north(300), "radius_km": 100},
        "another category": {"categories": ("plumbing",)},
        "inactive": {"active": False},
    }.items():
        pro = make_provider(**provider_kw)
        r = pro.post(url(need), json={"price": usd(100)})
        assert r.status_code == 404, case
        error_of(r)
        with pytest.raises(NotFound):
            offers.make(pro.user, need.id, {})
    assert offer_rows(need.id) == []
    assert committed(Need, need.id)["offer_count"] == 0


def test_offer_on_a_missing_need_is_404(make_provider):
    assert make_provider().post("/api/v1/needs/999999/offers", json={}).status_code == 404


def _cancelled(need, customer, make_offer):
    lifecycle.cancel(customer.user, need.id, None)


def _assigned(need, customer, make_offer):
    lifecycle.accept(customer.user, make_offer(need).id)


def _completed(need, customer, make_offer):
    _assigned(need, customer, make_offer)
    lifecycle.complete(customer.user, need.id)


def _expired_by_job(need, customer, make_offer):
    set_expires_at(need.id, datetime.now(UTC) - timedelta(minutes=1))
    assert need.id in lifecycle.expire_due()


def _past_expiry_not_yet_swept(need, customer, make_offer):
    set_expires_at(need.id, datetime.now(UTC) - timedelta(seconds=1))


@pytest.mark.parametrize(("setup", "word"), [
    (_cancelled, "cancelled"),
    (_assigned, "assigned"),
    (_completed, "completed"),
    (_expired_by_job, "expired"),
    (_past_expiry_not_yet_swept, "expired"),
])
def test_a_need_that_no_longer_takes_offers_answers_409(make_user, make_provider, make_need,
                                                        make_offer, setup, word):
    customer = make_user()
    need = make_need(customer)
    setup(need, customer, make_offer)
    before = committed(Need, need.id)
    pro = make_provider()
    r = pro.post(url(need), json={"price": usd(100)})
    assert r.status_code == 409, r.get_json()
    assert word in error_of(r)["message"]
    after = committed(Need, need.id)
    assert after["offer_count"] == before["offer_count"]
    assert after["status"] == before["status"]
    assert all(row["provider_id"] != pro.provider.id for row in offer_rows(need.id))


# --- the cap --------------------------------------------------------------------------------


def test_max_offers_caps_the_need_and_a_withdrawal_frees_a_place(make_provider, make_need,
                                                                 make_offer):
    need = make_need(max_offers=2)
    first = make_offer(need)
    make_offer(need)
    third = make_provider()
    r = third.post(url(need), json={"price": usd(100)})
    assert r.status_code == 409
    assert "has all the offers" in error_of(r)["message"]
    assert committed(Need, need.id)["offer_count"] == 2
    assert len(offer_rows(need.id)) == 2

    offers.withdraw(first.provider.user, first.id)
    assert committed(Need, need.id)["offer_count"] == 1
    r = third.post(url(need), json={"price": usd(100)})
    assert r.status_code == 201, r.get_json()
    assert committed(Need, need.id)["offer_count"] == 2
    with pytest.raises(Conflict, match="has all the offers"):
        offers.make(make_provider().user, need.id, {})


def test_without_a_cap_many_providers_can_offer(make_need, make_offer):
    need = make_need()
    for _ in range(4):
        make_offer(need)
    assert committed(Need, need.id)["offer_count"] == 4


# --- revising -------------------------------------------------------------------------------


def test_the_provider_revises_a_pending_offer(make_provider, make_need, make_offer):
    need = make_need()
    pro = make_provider()
    offer = make_offer(need, pro, amount=30000, message="first")
    created = committed(Offer, offer.id)
    r = pro.patch(f"/api/v1/offers/{offer.id}", json={"price": usd(28000), "message": "better"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["price"] == usd(28000) and body["message"] == "better"
    assert body["status"] == "pending"
    row = committed(Offer, offer.id)
    assert (row["price_amount"], row["message"]) == (28000, "better")
    assert row["updated_at"] >= created["updated_at"]
    assert row["created_at"] == created["created_at"]
    # a partial PATCH leaves the other fields alone
    r = pro.patch(f"/api/v1/offers/{offer.id}", json={"message": "only the message"})
    assert r.status_code == 200
    row = committed(Offer, offer.id)
    assert (row["price_amount"], row["message"]) == (28000, "only the message")


def test_revising_in_another_currency_is_422_and_changes_nothing(make_provider, make_need,
                                                                 make_offer):
    need = make_need()
    pro = make_provider()
    offer = make_offer(need, pro, amount=30000)
    before = committed(Offer, offer.id)
    r = pro.patch(f"/api/v1/offers/{offer.id}", json={"price": {"amount": 1, "currency": "EUR"}})
    assert r.status_code == 422
    assert set(error_of(r)["fields"]["price"]) == {"currency"}
    assert committed(Offer, offer.id) == before
    with pytest.raises(Invalid):
        offers.revise(pro.user, offer.id, {"price": {"amount": 1, "currency": "EUR"}})


def test_status_cannot_be_set_through_a_patch(make_provider, make_need, make_offer):
    need = make_need()
    pro = make_provider()
    offer = make_offer(need, pro)
    before = committed(Offer, offer.id)
    r = pro.patch(f"/api/v1/offers/{offer.id}", json={"status": "accepted"})
    assert r.status_code == 422
    assert "status" in error_of(r)["fields"]
    assert committed(Offer, offer.id) == before


def test_only_the_offers_provider_may_revise_or_withdraw(make_user, make_provider, make_need,
                                                        make_offer):
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    offer = make_offer(need, pro, amount=30000)
    rival = make_provider()
    make_offer(need, rival)
    stranger = make_user()
    before_offer, before_need = committed(Offer, offer.id), committed(Need, need.id)
    for person, status in ((customer, 403), (rival, 404), (stranger, 404)):
        r = person.patch(f"/api/v1/offers/{offer.id}", json={"price": usd(1)})
        assert r.status_code == status, (person, r.get_json())
        error_of(r)
        r = person.post(f"/api/v1/offers/{offer.id}/withdraw", json={})
        assert r.status_code == status
        error_of(r)
    with pytest.raises(Forbidden):
        offers.revise(customer.user, offer.id, {"message": "x"})
    with pytest.raises(Forbidden):
        offers.withdraw(customer.user, offer.id)
    with pytest.raises(NotFound):
        offers.withdraw(stranger.user, offer.id)
    assert committed(Offer, offer.id) == before_offer
    assert committed(Need, need.id) == before_need


def test_missing_offers_are_404(make_provider):
    pro = make_provider()
    assert pro.patch("/api/v1/offers/999999", json={}).status_code == 404
    assert pro.post("/api/v1/offers/999999/withdraw", json={}).status_code == 404
    assert pro.post("/api/v1/offers/999999/accept", json={}).status_code == 404


def test_revise_and_withdraw_refuse_a_withdrawn_offer(make_provider, make_need, make_offer):
    need = make_need()
    pro = make_provider()
    offer = make_offer(need, pro, amount=100)
    offers.withdraw(pro.user, offer.id)
    before = committed(Offer, offer.id)
    count = committed(Need, need.id)["offer_count"]
    r = pro.patch(f"/api/v1/offers/{offer.id}", json={"price": usd(5)})
    assert r.status_code == 409
    assert "withdrawn" in error_of(r)["message"]
    r = pro.post(f"/api/v1/offers/{offer.id}/withdraw", json={})
    assert r.status_code == 409
    assert error_of(r)["message"] == ("This offer is withdrawn; only a pending offer can be "
                                      "withdrawn.")
    r = pro.patch(f"/api/v1/offers/{offer.id}", json={"price": usd(5)})
    assert error_of(r)["message"] == "This offer is withdrawn; only a pending offer can be revised."
    assert committed(Offer, offer.id) == before
    assert committed(Need, need.id)["offer_count"] == count


@pytest.mark.parametrize("which", ["accepted", "declined"])
def test_revise_and_withdraw_refuse_once_an_offer_was_accepted(make_user, make_provider, make_need,
                                                              make_offer, which):
    customer = make_user()
    need = make_need(customer)
    winner, loser = make_provider(), make_provider()
    won = make_offer(need, winner)
    lost = make_offer(need, loser)
    lifecycle.accept(customer.user, won.id)
    pro, offer = (winner, won) if which == "accepted" else (loser, lost)
    before = committed(Offer, offer.id)
    need_before = committed(Need, need.id)
    r = pro.patch(f"/api/v1/offers/{offer.id}", json={"message": "later"})
    assert r.status_code == 409
    assert which in error_of(r)["message"]
    r = pro.post(f"/api/v1/offers/{offer.id}/withdraw", json={})
    assert r.status_code == 409
    assert which in error_of(r)["message"]
    assert committed(Offer, offer.id) == before
    assert committed(Need, need.id) == need_before


def test_revise_refuses_after_the_need_was_cancelled(make_user, make_provider, make_need,
                                                     make_offer):
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    offer = make_offer(need, pro)
    lifecycle.cancel(customer.user, need.id, "changed my mind")
    with pytest.raises(Conflict):
        offers.revise(pro.user, offer.id, {"message": "still keen"})
    with pytest.raises(Conflict):
        offers.withdraw(pro.user, offer.id)
    assert committed(Offer, offer.id)["status"] == OfferStatus.DECLINED


# --- withdrawing ----------------------------------------------------------------------------


def test_withdraw_marks_the_offer_and_decrements_the_count(make_provider, make_need, make_offer):
    need = make_need()
    pro = make_provider()
    offer = make_offer(need, pro)
    make_offer(need)
    assert committed(Need, need.id)["offer_count"] == 2
    r = pro.post(f"/api/v1/offers/{offer.id}/withdraw", json={})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "withdrawn"
    assert committed(Offer, offer.id)["status"] == OfferStatus.WITHDRAWN
    assert committed(Need, need.id)["offer_count"] == 1
    assert committed(Need, need.id)["status"] == NeedStatus.OPEN


def test_withdraw_takes_no_body_fields(make_provider, make_need, make_offer):
    need = make_need()
    pro = make_provider()
    offer = make_offer(need, pro)
    r = pro.post(f"/api/v1/offers/{offer.id}/withdraw", json={"reason": "busy"})
    assert r.status_code == 422
    error_of(r)
    assert committed(Offer, offer.id)["status"] == OfferStatus.PENDING


# --- accepting ------------------------------------------------------------------------------


def test_accepting_assigns_the_need_and_declines_the_other_pending_offers(
        make_user, make_provider, make_need, make_offer):
    customer = make_user()
    need = make_need(customer)
    chosen = make_offer(need, amount=30000)
    other = make_offer(need, amount=25000)
    gone_pro = make_provider()
    gone = make_offer(need, gone_pro)
    offers.withdraw(gone_pro.user, gone.id)

    r = customer.post(f"/api/v1/offers/{chosen.id}/accept", json={})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "accepted"
    need_row = committed(Need, need.id)
    assert need_row["status"] == NeedStatus.ASSIGNED
    assert need_row["accepted_offer_id"] == chosen.id
    assert need_row["assigned_at"] is not None
    statuses = {row["id"]: row["status"] for row in offer_rows(need.id)}
    assert statuses == {chosen.id: OfferStatus.ACCEPTED, other.id: OfferStatus.DECLINED,
                        gone.id: OfferStatus.WITHDRAWN}
    shown = customer.get(f"/api/v1/needs/{need.id}").get_json()
    assert shown["status"] == "assigned" and shown["accepted_offer_id"] == chosen.id
    # the winner is told, and so is the declined provider; the one who withdrew is not
    told = notifications_of_type("offer.accepted") + notifications_of_type("offer.declined")
    assert sorted(told) == sorted([
        (chosen.provider.user_id, "offer.accepted", chosen.id),
        (other.provider.user_id, "offer.declined", other.id)])


def test_accepting_names_the_revision_seen_so_a_late_revision_is_never_accepted_unread(
        make_user, make_provider, make_need, make_offer):
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    offer = make_offer(need, pro, amount=30000)
    seen = customer.get(f"/api/v1/offers/{offer.id}").get_json()
    assert seen["revision"] == 1
    r = pro.patch(f"/api/v1/offers/{offer.id}", json={"price": usd(45000)})
    assert r.get_json()["revision"] == 2
    assert pro.patch(f"/api/v1/offers/{offer.id}", json={"message": "x"}).get_json()[
        "revision"] == 3

    r = customer.post(f"/api/v1/offers/{offer.id}/accept", json={"revision": seen["revision"]})
    assert r.status_code == 409
    error = error_of(r)
    assert "revised this offer" in error["message"] and "450.00 USD" in error["message"]
    assert "current revision, 3" in error["fields"]["revision"][0]
    need_row = committed(Need, need.id)
    assert need_row["status"] == NeedStatus.OPEN and need_row["accepted_offer_id"] is None
    row = committed(Offer, offer.id)
    assert (row["status"], row["revision"]) == (OfferStatus.PENDING, 3)
    assert notifications_of_type("offer.accepted") == []

    r = customer.post(f"/api/v1/offers/{offer.id}/accept", json={"revision": 3})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "accepted" and r.get_json()["price"] == usd(45000)
    assert committed(Need, need.id)["accepted_offer_id"] == offer.id


@pytest.mark.parametrize("revision", [0, -1, "1", 1.5, 2**31, True, [1]])
def test_a_malformed_revision_is_422_naming_it(make_user, make_need, make_offer, revision):
    customer = make_user()
    need = make_need(customer)
    offer = make_offer(need)
    r = customer.post(f"/api/v1/offers/{offer.id}/accept", json={"revision": revision})
    assert r.status_code == 422, r.get_json()
    assert "revision" in error_of(r)["fields"]
    assert committed(Need, need.id)["status"] == NeedStatus.OPEN
    assert committed(Offer, offer.id)["status"] == OfferStatus.PENDING


def test_only_the_needs_customer_may_accept(make_user, make_provider, make_need, make_offer):
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    offer = make_offer(need, pro)
    rival = make_provider()
    make_offer(need, rival)
    stranger = make_user()
    for person, status in ((pro, 403), (rival, 404), (stranger, 404)):
        r = person.post(f"/api/v1/offers/{offer.id}/accept", json={})
        assert r.status_code == status
        error_of(r)
    with pytest.raises(Forbidden):
        lifecycle.accept(pro.user, offer.id)
    assert committed(Need, need.id)["status"] == NeedStatus.OPEN
    assert committed(Need, need.id)["accepted_offer_id"] is None
    assert {row["status"] for row in offer_rows(need.id)} == {OfferStatus.PENDING}


def test_a_withdrawn_offer_cannot_be_accepted(make_user, make_provider, make_need, make_offer):
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    offer = make_offer(need, pro)
    offers.withdraw(pro.user, offer.id)
    r = customer.post(f"/api/v1/offers/{offer.id}/accept", json={})
    assert r.status_code == 409
    assert "withdrawn" in error_of(r)["message"]
    need_row = committed(Need, need.id)
    assert need_row["status"] == NeedStatus.OPEN and need_row["accepted_offer_id"] is None


def test_accepting_a_second_offer_afterwards_is_409(make_user, make_need, make_offer):
    customer = make_user()
    need = make_need(customer)
    first = make_offer(need)
    second = make_offer(need)
    lifecycle.accept(customer.user, first.id)
    r = customer.post(f"/api/v1/offers/{second.id}/accept", json={})
    assert r.status_code == 409
    error_of(r)
    with pytest.raises(Conflict):
        lifecycle.accept(customer.user, second.id)
    r = customer.post(f"/api/v1/offers/{first.id}/accept", json={})
    assert r.status_code == 409
    assert committed(Need, need.id)["accepted_offer_id"] == first.id
    statuses = [row["status"] for row in offer_rows(need.id)]
    assert statuses.count(OfferStatus.ACCEPTED) == 1


def test_accepting_after_the_need_expired_is_409_even_before_the_sweep(make_user, make_need,
                                                                     make_offer):
    customer = make_user()
    need = make_need(customer)
    offer = make_offer(need)
    set_expires_at(need.id, datetime.now(UTC) - timedelta(seconds=1))
    r = customer.post(f"/api/v1/offers/{offer.id}/accept", json={})
    assert r.status_code == 409
    assert "expired" in error_of(r)["message"]
    need_row = committed(Need, need.id)
    assert need_row["accepted_offer_id"] is None and need_row["status"] == NeedStatus.OPEN
    assert committed(Offer, offer.id)["status"] == OfferStatus.PENDING


def test_revising_after_the_need_expired_is_409_even_before_the_sweep(make_user, make_provider,
                                                                     make_need, make_offer):
    need = make_need()
    pro = make_provider()
    offer = make_offer(need, pro, amount=100)
    set_expires_at(need.id, datetime.now(UTC) - timedelta(seconds=1))
    r = pro.patch(f"/api/v1/offers/{offer.id}", json={"price": usd(50)})
    assert r.status_code == 409
    assert committed(Offer, offer.id)["price_amount"] == 100


def test_accepting_on_a_cancelled_need_is_409(make_user, make_need, make_offer):
    customer = make_user()
    need = make_need(customer)
    offer = make_offer(need)
    lifecycle.cancel(customer.user, need.id, None)
    r = customer.post(f"/api/v1/offers/{offer.id}/accept", json={})
    assert r.status_code == 409
    assert committed(Need, need.id)["status"] == NeedStatus.CANCELLED
    assert committed(Offer, offer.id)["status"] == OfferStatus.DECLINED


def test_the_partial_unique_index_refuses_a_second_accepted_offer(make_user, make_need, make_offer,
                                                                  backend):
    customer = make_user()
    need = make_need(customer)
    first = make_offer(need)
    second = make_offer(need)
    third = make_offer(need)
    lifecycle.accept(customer.user, first.id)
    with pytest.raises(IntegrityError) as exc, db.engine.begin() as conn:
        conn.execute(ACCEPT_RAW, {"id": second.id})
    if backend == "postgresql":
        assert "uq_offers_one_accepted_per_need" in str(exc.value)
    # several declined offers on one need are fine: the index is only on accepted ones
    assert [row["status"] for row in offer_rows(need.id)] == [
        OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.DECLINED]
    # and on a need where nothing was accepted, two raw "accepted" writes still collide
    other_need = make_need()
    a, b = make_offer(other_need), make_offer(other_need)
    with db.engine.begin() as conn:
        conn.execute(ACCEPT_RAW, {"id": a.id})
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(ACCEPT_RAW, {"id": b.id})
    assert committed(Offer, b.id)["status"] == OfferStatus.PENDING
    assert committed(Offer, third.id)["status"] == OfferStatus.DECLINED


# --- listing a need's offers ----------------------------------------------------------------


def rate_provider(pro: Any, stars: list[int], make_user: Any, make_need: Any,
                  make_offer: Any) -> None:
    """Give ``pro`` one real rating per entry: need -> offer -> accept -> complete -> rate."""
    for s in stars:
        customer = make_user()
        need = make_need(customer)
        offer = make_offer(need, pro)
        lifecycle.accept(customer.user, offer.id)
        lifecycle.complete(customer.user, need.id)
        lifecycle.rate(customer.user, need.id, {"stars": s})


@pytest.fixture
def market(make_user, make_provider, make_need, make_offer):
    """One need with four offers whose four orderings all differ.

    A: 5,5,5 stars, 17 km, $300 | B: 3 stars, 7.5 km, $200 | C: new, 0 km, $450 |
    D: 1,1 stars, 3.5 km, $200. Offered in the order D, C, B, A (so ids alone would put D
    before B; the price tie between them must be broken by reputation).
    Platform mean m = 20/6; with C=5 the scores are A 3.958 > C 3.333 > B 3.278 > D 2.667.
    """
    pros = {
        "A": make_provider(base=north(17), handle="pro-a"),
        "B": make_provider(base=north(7.5), handle="pro-b"),
        "C": make_provider(base=north(0), handle="pro-c"),
        "D": make_provider(base=north(3.5), handle="pro-d"),
    }
    for name, stars in (("A", [5, 5, 5]), ("B", [3]), ("D", [1, 1])):
        rate_provider(pros[name], stars, make_user, make_need, make_offer)
    customer = make_user()
    need = make_need(customer)
    prices = {"A": 30000, "B": 20000, "C": 45000, "D": 20000}
    made = {name: make_offer(need, pros[name], amount=prices[name]) for name in "DCBA"}
    return customer, need, pros, made


def handles(body: dict[str, Any]) -> list[str]:
    return [item["provider"]["handle"].removeprefix("pro-").upper() for item in body["items"]]


def test_offers_come_in_the_chosen_order_with_reputation_bands_and_an_explanation(app, market):
    customer, need, _pros, made = market
    for sort, order in (("reputation", "ACBD"), ("price", "BDAC"), ("distance", "CDBA"),
                        ("newest", "ABCD")):
        r = customer.get(f"{url(need)}?sort={sort}")
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert "".join(handles(body)) == order, sort
        assert body["sort"] == sort
        assert body["sort_explanation"] == offer_schemas.SORTS[sort]
        assert len(body["sort_explanation"]) > 10
        assert body["next_cursor"] is None

    # no sort given: reputation, explained
    body = customer.get(url(need)).get_json()
    assert body["sort"] == "reputation"
    assert "".join(handles(body)) == "ACBD"
    assert body["sort_explanation"] == offer_schemas.SORTS["reputation"]

    body = customer.get(f"{url(need)}?sort=newest").get_json()
    assert [item["id"] for item in body["items"]] == sorted((o.id for o in made.values()),
                                                            reverse=True)
    by_handle = {h: item for h, item in zip(handles(body), body["items"], strict=True)}
    assert by_handle["C"]["distance_band"] == "under 2 km"
    assert by_handle["D"]["distance_band"] == "2-5 km"
    assert by_handle["B"]["distance_band"] == "5-10 km"
    assert by_handle["A"]["distance_band"] == "10-25 km"
    m = 20 / 6
    weight = app.config["RATING_PRIOR_WEIGHT"]
    for name, stars in (("A", [5, 5, 5]), ("B", [3]), ("C", []), ("D", [1, 1])):
        rep = by_handle[name]["provider"]["reputation"]
        assert rep["count"] == len(stars)
        assert rep["score"] == pytest.approx((weight * m + sum(stars)) / (weight + len(stars)),
                                             abs=1e-3)
        assert rep["is_new"] is (len(stars) < 3)


def test_an_unknown_sort_is_422_naming_sort(make_user, make_need):
    customer = make_user()
    need = make_need(customer)
    for sort in ("cheapest", "", "PRICE", "price;drop"):
        r = customer.get(f"{url(need)}?sort={sort}")
        assert r.status_code == 422, sort
        assert "sort" in error_of(r)["fields"]


@pytest.mark.parametrize("sort", ["price", "newest"])
def test_the_offer_list_pages_by_cursor(make_user, make_need, make_offer, sort):
    customer = make_user()
    need = make_need(customer)
    amounts = [500, 100, 400, 200, 300]
    for amount in amounts:
        make_offer(need, amount=amount)
    full = customer.get(f"{url(need)}?sort={sort}").get_json()["items"]
    assert len(full) == 5
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = f"?sort={sort}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        r = customer.get(url(need) + query)
        assert r.status_code == 200
        body = r.get_json()
        assert len(body["items"]) <= 2
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [i["id"] for i in seen] == [i["id"] for i in full]
    if sort == "price":
        assert [i["price"]["amount"] for i in seen] == sorted(amounts)
    forged = base64.urlsafe_b64encode(b"at:-2").decode().rstrip("=")
    keyset = base64.urlsafe_b64encode(b"id:2").decode().rstrip("=")  # another list's kind
    for bad in ("not-a-cursor", forged, keyset):
        r = customer.get(f"{url(need)}?sort={sort}&cursor={bad}")
        assert r.status_code == 422
        assert "cursor" in error_of(r)["fields"]
    r = customer.get(f"{url(need)}?limit=0")
    assert r.status_code == 422
    assert "limit" in error_of(r)["fields"]


def test_a_provider_lists_only_their_own_offer_and_strangers_get_404(make_user, make_provider,
                                                                     make_need, make_offer):
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    mine = make_offer(need, pro)
    make_offer(need)
    make_offer(need)
    body = pro.get(url(need)).get_json()
    assert [i["id"] for i in body["items"]] == [mine.id]
    assert len(customer.get(url(need)).get_json()["items"]) == 3
    r = make_user().get(url(need))
    assert r.status_code == 404
    error_of(r)
    matched_but_silent = make_provider()
    assert matched_but_silent.get(url(need)).get_json()["items"] == []


# --- a provider's own offers ----------------------------------------------------------------


def test_my_offers_lists_the_providers_own_offers_newest_first_with_a_status_filter(
        make_user, make_provider, make_need, make_offer):
    pro = make_provider()
    customer = make_user()
    n1, n2, n3 = make_need(customer), make_need(customer), make_need(customer)
    o1 = make_offer(n1, pro)
    o2 = make_offer(n2, pro)
    o3 = make_offer(n3, pro)
    make_offer(n1)  # someone else's
    offers.withdraw(pro.user, o2.id)
    lifecycle.accept(customer.user, o3.id)

    body = pro.get("/api/v1/offers").get_json()
    assert [i["id"] for i in body["items"]] == [o3.id, o2.id, o1.id]
    assert body["next_cursor"] is None
    for status, expected in (("pending", [o1.id]), ("withdrawn", [o2.id]),
                             ("accepted", [o3.id]), ("declined", [])):
        r = pro.get(f"/api/v1/offers?status={status}")
        assert r.status_code == 200
        assert [i["id"] for i in r.get_json()["items"]] == expected, status
        assert all(i["status"] == status for i in r.get_json()["items"])

    page1 = pro.get("/api/v1/offers?limit=2").get_json()
    assert [i["id"] for i in page1["items"]] == [o3.id, o2.id]
    page2 = pro.get(f"/api/v1/offers?limit=2&cursor={page1['next_cursor']}").get_json()
    assert [i["id"] for i in page2["items"]] == [o1.id] and page2["next_cursor"] is None

    r = pro.get("/api/v1/offers?status=lost")
    assert r.status_code == 422
    assert "status" in error_of(r)["fields"]
    r = make_user().get("/api/v1/offers")
    assert r.status_code == 403
    error_of(r)


def test_one_offer_is_visible_to_its_two_parties_only(make_user, make_provider, make_need,
                                                      make_offer):
    customer = make_user()
    need = make_need(customer)
    pro = make_provider()
    offer = make_offer(need, pro)
    assert customer.get(f"/api/v1/offers/{offer.id}").status_code == 200
    assert pro.get(f"/api/v1/offers/{offer.id}").status_code == 200
    assert make_provider().get(f"/api/v1/offers/{offer.id}").status_code == 404
    assert make_user().get(f"/api/v1/offers/{offer.id}").status_code == 404


def test_offers_require_a_token(client, make_need):
    need = make_need()
    r = client.post(url(need), json={})
    assert r.status_code == 401
    error_of(r)
    assert count_offers() == 0


def test_a_needs_offer_count_reads_as_counted_after_an_offer(make_user, make_need,
                                                            make_offer) -> None:
    """An offer is counted in SQL and its commit keeps what the session holds as written
    (``commit_as_written``): the need's count is read again, not the count from before."""
    need = make_need(make_user())
    make_offer(need)
    make_offer(need)
    assert need.offer_count == 2
