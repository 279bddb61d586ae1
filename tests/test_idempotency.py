"""``Idempotency-Key`` on every creating POST: the same key with the same body replays the first
response (one row created), the same key with another body is refused with 422, keys belong to
one user, failures are not remembered, and JSON formatting does not make a body different."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from conftest import error_of, need_data
from flask import g
from sqlalchemy import func, select, update

from marketplace import lifecycle
from marketplace.accounts.models import ApiToken, User
from marketplace.api.idempotency import HEADER, IdempotencyKey, purge_expired, stored_key
from marketplace.db_types import utcnow
from marketplace.extensions import db
from marketplace.messages.models import Message
from marketplace.needs.models import Need
from marketplace.notifications.models import Notification
from marketplace.offers import services as offers
from marketplace.offers.models import Offer
from marketplace.ratings.models import Rating

REPLAYED = "Idempotent-Replayed"


def scalar(stmt: Any) -> Any:
    with db.engine.connect() as conn:
        return conn.scalar(stmt)


def count(model: Any, *where: Any) -> int:
    return scalar(select(func.count()).select_from(model).where(*where)) or 0


def key_rows(key: str) -> list[Any]:
    table = IdempotencyKey.__table__
    with db.engine.connect() as conn:
        return list(conn.execute(select(table).where(table.c.key == stored_key(key))).mappings())


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


@dataclass
class Endpoint:
    """One creating POST, set up so that a valid body succeeds once."""

    post: Callable[..., Any]
    url: str
    body: dict[str, Any]
    other: dict[str, Any]  # valid, but a different request
    bad: dict[str, Any]  # fails validation
    created: Callable[[], int]  # how many things this endpoint has created so far
    status: int = 201  # its success (sign-up answers 202 "check your mail")


def anonymous(client: Any) -> Callable[..., Any]:
    """POST without a token. Test requests share the test's app context, so forget any user
    an earlier request in the same test left on ``g``."""

    def post(url: str, **kwargs: Any) -> Any:
        g.pop("user", None)
        return client.post(url, **kwargs)

    return post


def setup_users(f: dict[str, Any]) -> Endpoint:
    body = {"email": "idem@example.com", "password": "a long password", "name": "Idem"}
    return Endpoint(
        anonymous(f["client"]), "/api/v1/users", body, {**body, "name": "Other"},
        {**body, "email": "not-an-email"},
        lambda: count(User, User.email.like("idem%")), status=202,
    )


def setup_tokens(f: dict[str, Any]) -> Endpoint:
    person = f["make_user"]()
    body = {"email": person.user.email, "password": person.password, "name": "cli"}
    baseline = count(ApiToken, ApiToken.user_id == person.user.id)
    return Endpoint(
        anonymous(f["client"]), "/api/v1/tokens", body, {**body, "name": "another cli"},
        {**body, "name": ""},
        lambda: count(ApiToken, ApiToken.user_id == person.user.id) - baseline,
    )


def setup_needs(f: dict[str, Any]) -> Endpoint:
    customer = f["make_user"]()
    return Endpoint(
        customer.post, "/api/v1/needs", need_data(), need_data(title="Something else"),
        need_data(radius_km=0),
        lambda: count(Need, Need.customer_id == customer.user.id),
    )


def setup_offers(f: dict[str, Any]) -> Endpoint:
    need = f["make_need"]()
    pro = f["make_provider"]()
    return Endpoint(
        pro.post, f"/api/v1/needs/{need.id}/offers", {"price": usd(30000), "message": "hi"},
        {"price": usd(25000), "message": "hi"}, {"price": usd(-1)},
        lambda: count(Offer, Offer.need_id == need.id),
    )


def setup_messages(f: dict[str, Any]) -> Endpoint:
    customer = f["make_user"]()
    offer = f["make_offer"](f["make_need"](customer))
    return Endpoint(
        customer.post, f"/api/v1/offers/{offer.id}/messages", {"body": "hello"},
        {"body": "goodbye"}, {"body": "   "},
        lambda: count(Message, Message.offer_id == offer.id),
    )


def _completed(f: dict[str, Any]) -> tuple[Any, Any, Any]:
    customer = f["make_user"]()
    pro = f["make_provider"]()
    need = f["make_need"](customer)
    offer = f["make_offer"](need, pro)
    lifecycle.accept(customer.user, offer.id)
    lifecycle.complete(customer.user, need.id)
    return customer, pro, need


def setup_rating(f: dict[str, Any]) -> Endpoint:
    customer, _pro, need = _completed(f)
    return Endpoint(
        customer.post, f"/api/v1/needs/{need.id}/rating", {"stars": 5, "comment": "great"},
        {"stars": 4, "comment": "great"}, {"stars": 0},
        lambda: count(Rating, Rating.need_id == need.id),
    )


def setup_reply(f: dict[str, Any]) -> Endpoint:
    customer, pro, need = _completed(f)
    rating = lifecycle.rate(customer.user, need.id, {"stars": 3})
    return Endpoint(
        pro.post, f"/api/v1/ratings/{rating.id}/reply", {"body": "thanks"}, {"body": "cheers"},
        {"body": ""},
        lambda: count(Notification, Notification.type == "rating.replied"),
    )


SETUPS = {
    "users": setup_users, "tokens": setup_tokens, "needs": setup_needs, "offers": setup_offers,
    "messages": setup_messages, "rating": setup_rating, "reply": setup_reply,
}


@pytest.fixture(params=list(SETUPS))
def endpoint(request, client, make_user, make_provider, make_need, make_offer) -> Endpoint:
    factories = {"client": client, "make_user": make_user, "make_provider": make_provider,
                 "make_need": make_need, "make_offer": make_offer}
    return SETUPS[request.param](factories)


def with_key(key: str) -> dict[str, dict[str, str]]:
    return {"headers": {HEADER: key}}


# --- every creating POST --------------------------------------------------------------------


def test_same_key_and_body_replays_the_first_response_and_creates_one_row(endpoint):
    first = endpoint.post(endpoint.url, json=endpoint.body, **with_key("k-1"))
    assert first.status_code == endpoint.status, first.get_json()
    assert REPLAYED not in first.headers
    assert endpoint.created() == 1
    for _ in range(2):
        again = endpoint.post(endpoint.url, json=endpoint.body, **with_key("k-1"))
        assert again.status_code == endpoint.status
        assert again.headers[REPLAYED] == "true"
        assert again.get_data() == first.get_data()
        assert again.get_json() == first.get_json()
        assert again.mimetype == "application/json"
    assert endpoint.created() == 1
    [row] = key_rows("k-1")
    assert row["status_code"] == endpoint.status


def test_same_key_with_a_different_body_is_422_naming_the_header(endpoint):
    first = endpoint.post(endpoint.url, json=endpoint.body, **with_key("k-2"))
    assert first.status_code == endpoint.status, first.get_json()
    r = endpoint.post(endpoint.url, json=endpoint.other, **with_key("k-2"))
    assert r.status_code == 422
    assert REPLAYED not in r.headers
    assert HEADER in error_of(r)["fields"]
    assert endpoint.created() == 1
    # the original is still what the key replays
    again = endpoint.post(endpoint.url, json=endpoint.body, **with_key("k-2"))
    assert again.status_code == endpoint.status and again.get_data() == first.get_data()


def test_a_failed_request_is_not_remembered_and_can_be_retried_with_the_same_key(endpoint):
    bad = endpoint.post(endpoint.url, json=endpoint.bad, **with_key("k-3"))
    assert bad.status_code == 422
    assert HEADER not in error_of(bad).get("fields", {})
    assert endpoint.created() == 0
    assert key_rows("k-3") == []
    good = endpoint.post(endpoint.url, json=endpoint.body, **with_key("k-3"))
    assert good.status_code == endpoint.status, good.get_json()
    assert REPLAYED not in good.headers
    assert endpoint.created() == 1
    again = endpoint.post(endpoint.url, json=endpoint.body, **with_key("k-3"))
    assert again.headers[REPLAYED] == "true" and endpoint.created() == 1


# --- the rules, on one or two endpoints -----------------------------------------------------


def test_keys_belong_to_one_user(make_user, make_provider, make_need):
    alice, bob = make_user(), make_user()
    a = alice.post("/api/v1/needs", json=need_data(), **with_key("shared"))
    b = bob.post("/api/v1/needs", json=need_data(title="Bob's party"), **with_key("shared"))
    assert a.status_code == b.status_code == 201
    assert REPLAYED not in a.headers and REPLAYED not in b.headers
    assert a.get_json()["id"] != b.get_json()["id"]
    assert count(Need, Need.customer_id == alice.user.id) == 1
    assert count(Need, Need.customer_id == bob.user.id) == 1

    need = make_need()
    p1, p2 = make_provider(), make_provider()
    r1 = p1.post(f"/api/v1/needs/{need.id}/offers", json={"price": usd(100)}, **with_key("k"))
    r2 = p2.post(f"/api/v1/needs/{need.id}/offers", json={"price": usd(100)}, **with_key("k"))
    assert r1.status_code == r2.status_code == 201
    assert REPLAYED not in r2.headers
    assert r1.get_json()["id"] != r2.get_json()["id"]
    assert count(Offer, Offer.need_id == need.id) == 2
    # and the other user's replay stays their own
    replay = p1.post(f"/api/v1/needs/{need.id}/offers", json={"price": usd(100)}, **with_key("k"))
    assert replay.headers[REPLAYED] == "true" and replay.get_json()["id"] == r1.get_json()["id"]


def test_keys_belong_to_one_user_when_signing_in_too(client, make_user):
    alice, bob = make_user(), make_user()
    tokens = []
    for person in (alice, bob):
        g.pop("user", None)
        r = client.post("/api/v1/tokens", json={"email": person.user.email,
                                                "password": person.password}, **with_key("login"))
        assert r.status_code == 201, r.get_json()
        assert REPLAYED not in r.headers
        tokens.append(r.get_json()["token"])
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens[1]}"})
    assert me.get_json()["id"] == bob.user.id


def test_json_key_order_and_whitespace_are_the_same_body(make_user):
    customer = make_user()
    body = need_data()
    first = customer.post("/api/v1/needs", data=json.dumps(body), content_type="application/json",
                          **with_key("fmt"))
    assert first.status_code == 201
    reordered = dict(reversed(list(body.items())))
    reordered["location"] = dict(reversed(list(body["location"].items())))
    for text in (json.dumps(reordered, indent=4), json.dumps(body, separators=(",", ":")),
                 "\n  " + json.dumps(body) + "\n"):
        again = customer.post("/api/v1/needs", data=text, content_type="application/json",
                              **with_key("fmt"))
        assert again.status_code == 201
        assert again.headers[REPLAYED] == "true"
        assert again.get_json() == first.get_json()
    assert count(Need, Need.customer_id == customer.user.id) == 1


def test_a_changed_value_is_a_different_body(make_user):
    customer = make_user()
    assert customer.post("/api/v1/needs", json=need_data(), **with_key("v")).status_code == 201
    changed = need_data(budget={"amount": 40001, "currency": "USD"})
    r = customer.post("/api/v1/needs", json=changed, **with_key("v"))
    assert r.status_code == 422
    assert HEADER in error_of(r)["fields"]
    assert count(Need, Need.customer_id == customer.user.id) == 1


def test_the_key_length_is_bounded(make_user):
    customer = make_user()
    for key in ("k" * 256, "k" * 1000, ""):
        r = customer.post("/api/v1/needs", json=need_data(), **with_key(key))
        assert r.status_code == 422, len(key)
        assert HEADER in error_of(r)["fields"]
    assert count(Need, Need.customer_id == customer.user.id) == 0
    assert count(IdempotencyKey) == 0
    longest = "k" * 255
    first = customer.post("/api/v1/needs", json=need_data(), **with_key(longest))
    assert first.status_code == 201
    again = customer.post("/api/v1/needs", json=need_data(), **with_key(longest))
    assert again.headers[REPLAYED] == "true"
    assert count(Need, Need.customer_id == customer.user.id) == 1


def test_one_key_on_two_paths_is_refused(make_user, make_need, make_offer):
    customer = make_user()
    first = make_offer(make_need(customer))
    second = make_offer(make_need(customer))
    r = customer.post(f"/api/v1/offers/{first.id}/messages", json={"body": "hi"}, **with_key("p"))
    assert r.status_code == 201
    r = customer.post(f"/api/v1/offers/{second.id}/messages", json={"body": "hi"},
                      **with_key("p"))
    assert r.status_code == 422
    assert HEADER in error_of(r)["fields"]
    assert count(Message, Message.offer_id == second.id) == 0


def test_a_refused_offer_is_not_remembered(make_need, make_offer, make_provider):
    """A 409 (the need is full) is not stored: once a place frees up, the same key works."""
    need = make_need(max_offers=1)
    holder = make_provider()
    held = make_offer(need, holder)
    pro = make_provider()
    offer_url = f"/api/v1/needs/{need.id}/offers"
    r = pro.post(offer_url, json={"price": usd(100)}, **with_key("cap"))
    assert r.status_code == 409
    assert key_rows("cap") == []
    offers.withdraw(holder.user, held.id)
    r = pro.post(offer_url, json={"price": usd(100)}, **with_key("cap"))
    assert r.status_code == 201, r.get_json()
    assert REPLAYED not in r.headers
    assert count(Offer, Offer.need_id == need.id) == 2


def test_a_wrong_password_is_not_remembered(client, make_user):
    person = make_user()
    g.pop("user", None)
    wrong = {"email": person.user.email, "password": "wrong password!"}
    r = client.post("/api/v1/tokens", json=wrong, **with_key("login"))
    assert r.status_code == 401
    right = {"email": person.user.email, "password": person.password}
    r = client.post("/api/v1/tokens", json=right, **with_key("login"))
    assert r.status_code == 201
    assert REPLAYED not in r.headers
    token = r.get_json()["token"]
    again = client.post("/api/v1/tokens", json=right, **with_key("login"))
    assert again.headers[REPLAYED] == "true" and again.get_json()["token"] == token
    assert count(ApiToken, ApiToken.user_id == person.user.id) == 2  # the fixture's + this one
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.get_json()["id"] == person.user.id


def test_a_new_tokens_plain_value_is_not_stored_for_replays(client, make_user):
    person = make_user()
    g.pop("user", None)
    r = client.post("/api/v1/tokens", json={"email": person.user.email,
                                            "password": person.password}, **with_key("secret"))
    assert r.status_code == 201
    token = r.get_json()["token"]
    table = IdempotencyKey.__table__
    with db.engine.connect() as conn:
        stored = [body or "" for body in conn.scalars(select(table.c.response_body))]
    assert stored, "the key was not recorded at all"
    assert not any(token in body for body in stored)


def test_a_replay_returns_the_stored_response_even_after_the_state_changed(make_user):
    customer = make_user()
    first = customer.post("/api/v1/needs", json=need_data(), **with_key("then"))
    need_id = first.get_json()["id"]
    lifecycle.cancel(customer.user, need_id, None)
    again = customer.post("/api/v1/needs", json=need_data(), **with_key("then"))
    assert again.status_code == 201 and again.headers[REPLAYED] == "true"
    assert again.get_json()["status"] == "open"  # what the first answer said
    assert count(Need, Need.customer_id == customer.user.id) == 1


def test_a_request_still_in_flight_is_409(make_user):
    """A reserved key whose response is not stored yet (its request is still running)."""
    customer = make_user()
    assert customer.post("/api/v1/needs", json=need_data(), **with_key("busy")).status_code == 201
    with db.engine.begin() as conn:
        conn.execute(update(IdempotencyKey).where(IdempotencyKey.key == stored_key("busy"))
                     .values(status_code=None, response_body=None))
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("busy"))
    assert r.status_code == 409
    error_of(r)
    r = customer.post("/api/v1/needs", json=need_data(title="Other"), **with_key("busy"))
    assert r.status_code == 422
    assert count(Need, Need.customer_id == customer.user.id) == 1


def test_without_a_key_nothing_is_remembered(make_user):
    customer = make_user()
    for _ in range(2):
        r = customer.post("/api/v1/needs", json=need_data())
        assert r.status_code == 201 and REPLAYED not in r.headers
    assert count(Need, Need.customer_id == customer.user.id) == 2
    assert count(IdempotencyKey) == 0


def test_keys_are_forgotten_after_a_day(make_user):
    customer = make_user()
    assert customer.post("/api/v1/needs", json=need_data(), **with_key("old")).status_code == 201
    assert customer.post("/api/v1/needs", json=need_data(), **with_key("new")).status_code == 201
    with db.engine.begin() as conn:
        conn.execute(update(IdempotencyKey).where(IdempotencyKey.key == stored_key("old"))
                     .values(created_at=utcnow() - timedelta(hours=25)))
    assert purge_expired() == 1
    assert key_rows("old") == [] and len(key_rows("new")) == 1
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("old"))
    assert r.status_code == 201 and REPLAYED not in r.headers
    assert count(Need, Need.customer_id == customer.user.id) == 3
