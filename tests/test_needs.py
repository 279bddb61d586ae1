"""Needs: posting and its validation, listing your own with cursor pagination, and the state
machine (open -> assigned -> completed; open -> cancelled | expired; assigned -> cancelled),
through the services and through the API."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import committed_state, error_of, need_data
from sqlalchemy import func, select, update

from marketplace import lifecycle
from marketplace.errors import Conflict, Forbidden, Invalid
from marketplace.extensions import db
from marketplace.needs import services as needs
from marketplace.needs.models import Need, NeedStatus
from marketplace.offers.models import Offer, OfferStatus


def count_needs() -> int:
    with db.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Need)) or 0


def now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    return dt.isoformat()


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def fresh(need: Need) -> Need:
    db.session.expire_all()
    found = db.session.get(Need, need.id)
    assert found is not None
    return found


def offer_status(offer: Offer) -> OfferStatus:
    with db.engine.connect() as conn:
        return OfferStatus(conn.scalar(select(Offer.status).where(Offer.id == offer.id)))


# --- posting a need -------------------------------------------------------------------------


def test_post_need_returns_201_open_with_a_48h_default_expiry(make_user):
    customer = make_user(name="Cat Customer", phone="555-0100")
    before = now()
    r = customer.post("/api/v1/needs", json=need_data())
    after = now()
    assert r.status_code == 201, r.get_json()
    need = r.get_json()
    assert need["status"] == "open"
    assert before + timedelta(hours=48) - timedelta(seconds=1) <= parse(need["expires_at"]) \
        <= after + timedelta(hours=48) + timedelta(seconds=1)
    assert need["viewer_role"] == "customer"
    assert need["location"] == {**need_data()["location"], "approximate": False}
    assert need["address"] == need_data()["address"]
    assert need["budget"] == {"amount": 40000, "currency": "USD"}
    assert need["offer_count"] == 0 and need["accepted_offer_id"] is None
    assert need["customer"]["name"] == "Cat Customer"
    row = db.session.get(Need, need["id"])
    assert row.customer_id == customer.user.id and row.status == NeedStatus.OPEN


def test_service_create_defaults_expiry_from_config(app, make_user):
    customer = make_user()
    data = need_data()
    need = needs.create(customer.user, data)
    ttl = timedelta(hours=app.config["NEED_DEFAULT_TTL_HOURS"])
    assert abs(need.expires_at - (need.created_at + ttl)) < timedelta(seconds=5)
    assert need.status == NeedStatus.OPEN and need.offer_count == 0


def test_explicit_expiry_and_needed_by_are_kept(make_user):
    customer = make_user()
    expires = (now() + timedelta(days=3)).replace(microsecond=0)
    needed_by = (now() + timedelta(days=5)).replace(microsecond=0)
    r = customer.post("/api/v1/needs", json=need_data(expires_at=iso(expires),
                                                      needed_by=iso(needed_by)))
    assert r.status_code == 201, r.get_json()
    assert parse(r.get_json()["expires_at"]) == expires
    assert parse(r.get_json()["needed_by"]) == needed_by


def test_datetime_without_offset_is_taken_as_utc(make_user):
    customer = make_user()
    naive = (now() + timedelta(days=2)).replace(microsecond=0, tzinfo=None)
    r = customer.post("/api/v1/needs", json=need_data(expires_at=naive.isoformat()))
    assert r.status_code == 201, r.get_json()
    assert parse(r.get_json()["expires_at"]) == naive.replace(tzinfo=UTC)


def test_expiry_just_under_30_days_is_accepted(make_user):
    customer = make_user()
    r = customer.post("/api/v1/needs",
                      json=need_data(expires_at=iso(now() + timedelta(days=30, minutes=-5))))
    assert r.status_code == 201, r.get_json()


@pytest.mark.parametrize("overrides, field", [
    ({"expires_at": iso(now() - timedelta(minutes=1))}, "expires_at"),
    ({"expires_at": iso(now() + timedelta(days=30, hours=1))}, "expires_at"),
    ({"expires_at": "next tuesday"}, "expires_at"),
    ({"needed_by": iso(now() - timedelta(hours=1))}, "needed_by"),
    ({"category": "space-travel"}, "category"),
    ({"category": ""}, "category"),
    ({"title": "ab"}, "title"),
    ({"title": "t" * 121}, "title"),
    ({"description": "d" * 5001}, "description"),
    ({"address": "a" * 301}, "address"),
    ({"radius_km": 0}, "radius_km"),
    ({"radius_km": 100.5}, "radius_km"),
    ({"location": {"lat": 91, "lon": 0}}, "location"),
    ({"location": {"lat": 0, "lon": -180.1}}, "location"),
    ({"location": {"lat": 0}}, "location"),
    ({"location": "Austin"}, "location"),
    ({"max_offers": 0}, "max_offers"),
    ({"max_offers": 1.5}, "max_offers"),
    ({"budget": {"amount": 1000}}, "budget"),
])
def test_invalid_need_is_422_naming_the_field_and_nothing_is_stored(make_user, overrides, field):
    customer = make_user()
    r = customer.post("/api/v1/needs", json=need_data(**overrides))
    assert r.status_code == 422, r.get_json()
    assert field in error_of(r)["fields"]
    assert count_needs() == 0


@pytest.mark.parametrize("currency", ["usd", "Usd", "XYZ", "US", "USDX", "", 840, None])
def test_currency_must_be_an_upper_case_iso_4217_code(make_user, currency):
    customer = make_user()
    r = customer.post("/api/v1/needs", json=need_data(budget={"amount": 1000, "currency": currency}))
    assert r.status_code == 422
    assert "currency" in error_of(r)["fields"]["budget"]
    assert count_needs() == 0


@pytest.mark.parametrize("currency, amount", [("EUR", 1999), ("JPY", 5000), ("KWD", 12345)])
def test_other_iso_currencies_are_accepted(make_user, currency, amount):
    customer = make_user()
    r = customer.post("/api/v1/needs", json=need_data(budget={"amount": amount, "currency": currency}))
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["budget"] == {"amount": amount, "currency": currency}


@pytest.mark.parametrize("amount", [10.5, 10.0, "1000", -1, 10**12 + 1, None, True, [100]])
def test_amount_must_be_integer_minor_units(make_user, amount):
    customer = make_user()
    r = customer.post("/api/v1/needs", json=need_data(budget={"amount": amount, "currency": "USD"}))
    assert r.status_code == 422, r.get_json()
    assert "amount" in error_of(r)["fields"]["budget"]
    assert count_needs() == 0


def test_amount_bounds_are_inclusive(make_user):
    customer = make_user()
    for amount in (1, 10**12):  # a budget is positive (tests/test_amounts.py)
        r = customer.post("/api/v1/needs",
                          json=need_data(budget={"amount": amount, "currency": "USD"}))
        assert r.status_code == 201, r.get_json()
        assert r.get_json()["budget"]["amount"] == amount


def test_missing_required_fields_are_all_named(make_user):
    customer = make_user()
    r = customer.post("/api/v1/needs", json={})
    assert r.status_code == 422
    assert set(error_of(r)["fields"]) == {"title", "category", "location", "radius_km", "budget"}


@pytest.mark.parametrize("field, value", [
    ("expires_at", now() - timedelta(seconds=1)),
    ("expires_at", now() + timedelta(days=31)),
    ("needed_by", now() - timedelta(days=1)),
])
def test_service_create_refuses_bad_dates(app, make_user, field, value):
    customer = make_user()
    with pytest.raises(Invalid) as exc:
        needs.create(customer.user, need_data(**{field: value}))
    assert field in exc.value.fields
    assert count_needs() == 0


def test_service_create_refuses_unknown_category(app, make_user):
    customer = make_user()
    with pytest.raises(Invalid) as exc:
        needs.create(customer.user, need_data(category="nope"))
    assert "category" in exc.value.fields
    assert count_needs() == 0


# --- reading a need -------------------------------------------------------------------------


def test_unknown_need_is_404(make_user):
    r = make_user().get("/api/v1/needs/424242")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


def test_out_of_range_need_id_is_404(make_user):
    r = make_user().get("/api/v1/needs/99999999999999999999999")
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


# --- listing your own needs -----------------------------------------------------------------


def test_list_pages_through_own_needs_newest_first(make_user, make_need):
    customer, other = make_user(), make_user()
    mine = [make_need(customer, title=f"Need number {i}").id for i in range(25)]
    make_need(other)
    make_need(other)
    seen: list[int] = []
    sizes = []
    cursor = None
    for _ in range(10):
        url = "/api/v1/needs?limit=10" + (f"&cursor={cursor}" if cursor else "")
        r = customer.get(url)
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        sizes.append(len(page["items"]))
        seen.extend(item["id"] for item in page["items"])
        assert all(item["viewer_role"] == "customer" for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [10, 10, 5]
    assert len(seen) == len(set(seen)) == 25
    assert seen == sorted(mine, reverse=True)


def test_list_with_mine_true_explicitly_and_default_limit(make_user, make_need):
    customer = make_user()
    for _ in range(3):
        make_need(customer)
    r = customer.get("/api/v1/needs?mine=true")
    assert r.status_code == 200
    assert len(r.get_json()["items"]) == 3 and r.get_json()["next_cursor"] is None


def test_list_exactly_one_page_has_no_next_cursor(make_user, make_need):
    customer = make_user()
    for _ in range(4):
        make_need(customer)
    page = customer.get("/api/v1/needs?limit=4").get_json()
    assert len(page["items"]) == 4 and page["next_cursor"] is None


def test_list_does_not_show_needs_you_only_match_as_a_provider(make_provider, make_need):
    pro = make_provider()
    make_need()
    assert pro.get(f"/api/v1/needs/{make_need().id}").status_code == 200  # visible one by one
    assert pro.get("/api/v1/needs").get_json()["items"] == []


def test_list_filters_by_status(make_user, make_need):
    customer = make_user()
    created = [make_need(customer) for _ in range(5)]
    for need in created[1:4]:
        lifecycle.cancel(customer.user, need.id, None)
    r = customer.get("/api/v1/needs?status=cancelled&limit=2")
    assert r.status_code == 200
    first = r.get_json()
    second = customer.get(f"/api/v1/needs?status=cancelled&limit=2&cursor={first['next_cursor']}")
    items = first["items"] + second.get_json()["items"]
    assert second.get_json()["next_cursor"] is None
    assert [n["id"] for n in items] == [n.id for n in reversed(created[1:4])]
    assert {n["status"] for n in items} == {"cancelled"}
    open_ids = [n["id"] for n in customer.get("/api/v1/needs?status=open").get_json()["items"]]
    assert open_ids == [created[4].id, created[0].id]


@pytest.mark.parametrize("query, field", [
    ("cursor=not-a-cursor!!", "cursor"),
    (f"cursor={base64.urlsafe_b64encode(b'page:2').decode()}", "cursor"),
    (f"cursor={base64.urlsafe_b64encode(b'id:abc').decode()}", "cursor"),
    ("cursor=" + "A" * 65, "cursor"),
    ("limit=0", "limit"),
    ("limit=101", "limit"),
    ("limit=ten", "limit"),
    ("status=done", "status"),
    ("mine=false", "mine"),
])
def test_list_rejects_bad_query_naming_the_parameter(make_user, make_need, query, field):
    customer = make_user()
    make_need(customer)
    r = customer.get(f"/api/v1/needs?{query}")
    assert r.status_code == 422, r.get_json()
    assert field in error_of(r)["fields"]


def test_list_rejects_a_cursor_with_an_out_of_range_id(make_user):
    customer = make_user()
    cursor = base64.urlsafe_b64encode(b"id:" + b"9" * 40).decode().rstrip("=")
    r = customer.get(f"/api/v1/needs?cursor={cursor}")
    assert r.status_code == 422, r.get_json()  # beyond any id: not a cursor this API handed out
    assert error_of(r)["fields"] == {"cursor": ["Not a valid cursor."]}


def test_list_requires_a_token(client):
    r = client.get("/api/v1/needs")
    assert r.status_code == 401
    error_of(r)


# --- the state machine, service level ---------------------------------------------------------


@pytest.fixture
def market(make_user, make_provider, make_need, make_offer):
    """A customer's open need with two pending offers from two matched providers."""
    customer = make_user(name="Cara Customer", phone="+1 512 555 0199")
    pro_a, pro_b = make_provider(), make_provider()
    need = make_need(customer)
    offer_a = make_offer(need, pro_a, amount=30000)
    offer_b = make_offer(need, pro_b, amount=35000)
    return customer, need, (pro_a, offer_a), (pro_b, offer_b)


def test_accept_moves_open_to_assigned_and_declines_the_rest(market):
    customer, need, (_pro_a, offer_a), (_pro_b, offer_b) = market
    lifecycle.accept(customer.user, offer_a.id)
    need = fresh(need)
    assert need.status == NeedStatus.ASSIGNED
    assert need.accepted_offer_id == offer_a.id and need.assigned_at is not None
    assert offer_status(offer_a) == OfferStatus.ACCEPTED
    assert offer_status(offer_b) == OfferStatus.DECLINED


def test_customer_cancels_an_open_need_without_a_reason(market):
    customer, need, (_pa, offer_a), (_pb, offer_b) = market
    lifecycle.cancel(customer.user, need.id, None)
    need = fresh(need)
    assert need.status == NeedStatus.CANCELLED
    assert need.cancelled_by_id == customer.user.id and need.cancel_reason is None
    assert need.cancelled_at is not None
    assert offer_status(offer_a) == offer_status(offer_b) == OfferStatus.DECLINED


def test_customer_cancels_an_open_need_with_a_reason(app, make_user, make_need):
    customer = make_user()
    need = make_need(customer)
    lifecycle.cancel(customer.user, need.id, "Plans changed")
    assert fresh(need).cancel_reason == "Plans changed"


def test_expire_due_expires_only_open_needs_past_their_expiry(market, make_need, make_offer,
                                                              make_provider):
    customer, need, (_pa, offer_a), (_pb, offer_b) = market
    later = make_need(customer, expires_at=now() + timedelta(days=5))
    assigned = make_need(customer, expires_at=now() + timedelta(hours=1))
    lifecycle.accept(customer.user, make_offer(assigned, make_provider()).id)
    assert lifecycle.expire_due(now()) == []
    moment = now() + timedelta(hours=49)
    assert lifecycle.expire_due(moment) == [need.id]
    assert fresh(need).status == NeedStatus.EXPIRED
    assert fresh(later).status == NeedStatus.OPEN
    assert fresh(assigned).status == NeedStatus.ASSIGNED
    assert offer_status(offer_a) == offer_status(offer_b) == OfferStatus.DECLINED
    assert lifecycle.expire_due(moment) == []  # nothing left to do
    r = customer.get(f"/api/v1/needs/{need.id}")
    assert r.get_json()["status"] == "expired" and r.get_json()["cancelled_by"] == "system"


def test_customer_completes_an_assigned_need(market):
    customer, need, (_pa, offer_a), _b = market
    lifecycle.accept(customer.user, offer_a.id)
    lifecycle.complete(customer.user, need.id)
    need = fresh(need)
    assert need.status == NeedStatus.COMPLETED and need.completed_at is not None


def test_accepted_provider_cannot_complete(market):
    customer, need, (pro_a, offer_a), _b = market
    lifecycle.accept(customer.user, offer_a.id)
    with pytest.raises(Forbidden):
        lifecycle.complete(pro_a.user, need.id)
    assert fresh(need).status == NeedStatus.ASSIGNED


@pytest.mark.parametrize("who", ["customer", "provider"])
def test_assigned_need_is_cancelled_with_a_recorded_reason(market, who):
    customer, need, (pro_a, offer_a), _b = market
    lifecycle.accept(customer.user, offer_a.id)
    actor = customer if who == "customer" else pro_a
    lifecycle.cancel(actor.user, need.id, "Double booked")
    need = fresh(need)
    assert need.status == NeedStatus.CANCELLED
    assert need.cancelled_by_id == actor.user.id and need.cancel_reason == "Double booked"
    r = customer.get(f"/api/v1/needs/{need.id}")
    assert r.get_json()["cancelled_by"] == who
    assert r.get_json()["cancel_reason"] == "Double booked"


@pytest.mark.parametrize("who", ["customer", "provider"])
@pytest.mark.parametrize("reason", [None, ""])
def test_cancelling_an_assigned_need_requires_a_reason(market, who, reason):
    customer, need, (pro_a, offer_a), _b = market
    lifecycle.accept(customer.user, offer_a.id)
    actor = customer if who == "customer" else pro_a
    with pytest.raises(Invalid) as exc:
        lifecycle.cancel(actor.user, need.id, reason)
    assert "reason" in exc.value.fields
    assert fresh(need).status == NeedStatus.ASSIGNED


def test_offering_but_not_accepted_provider_cannot_cancel(market):
    _customer, need, (pro_a, _oa), _b = market
    with pytest.raises(Forbidden):
        lifecycle.cancel(pro_a.user, need.id, "I changed my mind")
    assert fresh(need).status == NeedStatus.OPEN


def test_transition_rules_for_roles(app, make_need):
    need = make_need()
    with pytest.raises(Forbidden):
        lifecycle.transition(need, NeedStatus.COMPLETED, "provider")
    with pytest.raises(Forbidden):
        lifecycle.transition(need, NeedStatus.EXPIRED, "customer")
    with pytest.raises(Forbidden):
        lifecycle.transition(need, NeedStatus.ASSIGNED, "provider")
    with pytest.raises(Conflict) as exc:
        lifecycle.transition(need, NeedStatus.COMPLETED, "customer")
    assert "open" in exc.value.message and "assigned" in exc.value.message
    assert fresh(need).status == NeedStatus.OPEN


def test_every_transition_not_in_the_table_is_refused(app, make_need):
    allowed = set(lifecycle.TRANSITIONS)
    need = make_need()
    for source in NeedStatus:
        for target in NeedStatus:
            if target == NeedStatus.OPEN or (source, target) in allowed:
                continue
            db.session.execute(update(Need).where(Need.id == need.id).values(status=source))
            db.session.commit()
            need = fresh(need)
            for role in ("customer", "provider", "system"):
                # Forbidden: the role may never make this change; Conflict: not from here.
                ever = any(role in roles for (_a, b), roles in lifecycle.TRANSITIONS.items()
                           if b == target)
                with pytest.raises(Conflict if ever else Forbidden):
                    lifecycle.transition(need, target, role)
                assert fresh(need).status == source


def test_transition_on_a_stale_need_is_a_conflict(app, make_need):
    need = make_need()
    assert need.status == NeedStatus.OPEN
    # Someone else cancels it; our in-memory copy still says "open".
    db.session.execute(update(Need).where(Need.id == need.id)
                       .values(status=NeedStatus.CANCELLED)
                       .execution_options(synchronize_session=False))
    assert need.status == NeedStatus.OPEN
    with pytest.raises(Conflict) as exc:
        lifecycle.transition(need, NeedStatus.ASSIGNED, "customer")
    assert "changed" in exc.value.message


# --- the state machine through the API ------------------------------------------------------


def test_api_cancel_open_need(market):
    customer, need, _a, _b = market
    r = customer.post(f"/api/v1/needs/{need.id}/cancel", json={})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "cancelled" and body["cancelled_by"] == "customer"
    assert body["cancel_reason"] is None and body["cancelled_at"] is not None


def test_api_accept_complete(market):
    customer, need, (pro_a, offer_a), _b = market
    r = customer.post(f"/api/v1/offers/{offer_a.id}/accept")
    assert r.status_code == 200 and r.get_json()["status"] == "accepted"
    r = pro_a.post(f"/api/v1/needs/{need.id}/complete")
    assert r.status_code == 403
    assert error_of(r)["code"] == "forbidden"
    assert fresh(need).status == NeedStatus.ASSIGNED
    r = customer.post(f"/api/v1/needs/{need.id}/complete")
    assert r.status_code == 200
    assert r.get_json()["status"] == "completed" and r.get_json()["completed_at"] is not None


@pytest.mark.parametrize("who", ["customer", "provider"])
def test_api_cancel_assigned_needs_a_reason(market, who):
    customer, need, (pro_a, offer_a), _b = market
    lifecycle.accept(customer.user, offer_a.id)
    actor = customer if who == "customer" else pro_a
    for body in ({}, {"reason": None}, {"reason": "   "}):
        before = committed_state()
        r = actor.post(f"/api/v1/needs/{need.id}/cancel", json=body)
        assert r.status_code == 422, (body, r.get_json())
        assert "reason" in error_of(r)["fields"]
        assert committed_state() == before
    r = actor.post(f"/api/v1/needs/{need.id}/cancel", json={"reason": "  Van broke down  "})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["cancelled_by"] == who
    assert r.get_json()["cancel_reason"] == "Van broke down"
    need = fresh(need)
    assert need.cancelled_by_id == actor.user.id and need.cancel_reason == "Van broke down"


def test_api_cancel_reason_is_bounded(market):
    customer, need, _a, _b = market
    r = customer.post(f"/api/v1/needs/{need.id}/cancel", json={"reason": "r" * 501})
    assert r.status_code == 422
    assert "reason" in error_of(r)["fields"]
    assert fresh(need).status == NeedStatus.OPEN


def _to_state(state: str, customer: Any, need: Need, offer: Offer) -> None:
    if state in ("assigned", "completed"):
        lifecycle.accept(customer.user, offer.id)
    if state == "completed":
        lifecycle.complete(customer.user, need.id)
    if state == "cancelled":
        lifecycle.cancel(customer.user, need.id, None)
    if state == "expired":
        assert lifecycle.expire_due(now() + timedelta(days=3)) == [need.id]


@pytest.mark.parametrize("state, action, words", [
    ("open", "complete", ["open", "assigned"]),
    ("completed", "complete", ["completed"]),
    ("cancelled", "complete", ["cancelled"]),
    ("expired", "complete", ["expired"]),
    ("completed", "cancel", ["completed"]),
    ("cancelled", "cancel", ["cancelled"]),
    ("expired", "cancel", ["expired"]),
    ("cancelled", "accept", ["declined"]),
    ("expired", "accept", ["declined"]),
    ("assigned", "accept", ["declined"]),
    ("completed", "accept", ["declined"]),
])
def test_forbidden_transitions_are_409_saying_why(market, state, action, words):
    customer, need, (_pa, offer_a), (_pb, offer_b) = market
    _to_state(state, customer, need, offer_a)
    before = committed_state()
    if action == "accept":
        r = customer.post(f"/api/v1/offers/{offer_b.id}/accept")
    elif action == "cancel":
        r = customer.post(f"/api/v1/needs/{need.id}/cancel", json={"reason": "Why not"})
    else:
        r = customer.post(f"/api/v1/needs/{need.id}/complete")
    assert r.status_code == 409, r.get_json()
    error = error_of(r)
    assert error["code"] == "conflict"
    for word in words:
        assert word in error["message"], error["message"]
    assert committed_state() == before
    assert fresh(need).status == NeedStatus(state)


def test_accepted_provider_cannot_cancel_a_completed_job(market):
    customer, need, (pro_a, offer_a), _b = market
    _to_state("completed", customer, need, offer_a)
    r = pro_a.post(f"/api/v1/needs/{need.id}/cancel", json={"reason": "Too late"})
    assert r.status_code == 409
    assert "completed" in error_of(r)["message"]
    assert fresh(need).status == NeedStatus.COMPLETED


def test_accepting_an_already_accepted_offer_is_409(market):
    customer, need, (_pa, offer_a), _b = market
    lifecycle.accept(customer.user, offer_a.id)
    r = customer.post(f"/api/v1/offers/{offer_a.id}/accept")
    assert r.status_code == 409
    assert "accepted" in error_of(r)["message"]
    assert fresh(need).accepted_offer_id == offer_a.id


def test_only_the_customer_may_cancel_an_open_need(market, make_provider, make_user):
    customer, need, (pro_a, _oa), _b = market
    bystander_pro = make_provider()  # matched, no offer
    stranger = make_user()
    before = committed_state()
    r = pro_a.post(f"/api/v1/needs/{need.id}/cancel", json={"reason": "x"})
    assert r.status_code == 403 and error_of(r)["code"] == "forbidden"
    r = bystander_pro.post(f"/api/v1/needs/{need.id}/cancel", json={"reason": "x"})
    assert r.status_code == 403
    r = stranger.post(f"/api/v1/needs/{need.id}/cancel", json={"reason": "x"})
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
    r = stranger.post(f"/api/v1/needs/{need.id}/complete")
    assert r.status_code == 404
    assert committed_state() == before


def test_only_the_customer_may_accept(market):
    customer, need, (pro_a, offer_a), (pro_b, _ob) = market
    r = pro_a.post(f"/api/v1/offers/{offer_a.id}/accept")
    assert r.status_code == 403
    r = pro_b.post(f"/api/v1/offers/{offer_a.id}/accept")
    assert r.status_code == 404
    assert fresh(need).status == NeedStatus.OPEN
