"""What a list costs in SQL statements does not grow with its length: the need page with 1 or 20
offers (each provider's picture beside their offer, the threads under them) and a thread of 1
or 20 messages each read their people's pictures in one statement, not one per person."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from conftest import need_data
from flask_sqlalchemy.session import Session as FlaskSession
from images import png
from sqlalchemy import event

from marketplace import lifecycle
from marketplace.accounts import auth
from marketplace.accounts import services as accounts
from marketplace.accounts.models import User
from marketplace.blocks import services as blocks
from marketplace.blocks.models import Block
from marketplace.db_types import utcnow
from marketplace.extensions import db
from marketplace.media import services as media
from marketplace.messages import services as messages


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement run inside the block."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def reads(seen: list[str], tables: str) -> list[str]:
    """The statements of ``seen`` that select rows of ``tables`` ("needs|users"), but for the
    request's API token lookup (which reads the caller's account with the token)."""
    return [s for s in seen if re.match(rf"SELECT ({tables})\.", s) and "FROM api_tokens" not in s]


def cost(read: Callable[[], Any]) -> list[str]:
    read()  # warm: what a first request loads once (categories, config) is not the point
    db.session.expire_all()
    with statements() as seen:
        r = read()
    assert r.status_code == 200, r
    return seen


def _need_with_offers(make_need: Any, make_offer: Any, make_provider: Any, customer: Any,
                      n: int) -> Any:
    need = make_need(customer)
    for i in range(n):
        pro = make_provider()
        if i % 2 == 0:  # half with a picture, half with initials
            media.set_avatar(pro.user, png((20, 20), (i, 9, 9)))
        offer = make_offer(need, pro)
        messages.send(pro.user, offer.id, "Hello, I can do it.")
        messages.send(customer.user, offer.id, "Great, tell me more.")
    return need


def test_the_need_page_costs_the_same_for_1_or_20_offers(make_user: Any, make_need: Any,
                                                        make_offer: Any, make_provider: Any,
                                                        auth: Any) -> None:
    customer = make_user()
    media.set_avatar(customer.user, png((20, 20)))
    one = _need_with_offers(make_need, make_offer, make_provider, customer, 1)
    many = _need_with_offers(make_need, make_offer, make_provider, customer, 20)
    web = auth.sign_in(customer)
    few = cost(lambda: web.get(f"/needs/{one.id}"))
    lots = cost(lambda: web.get(f"/needs/{many.id}"))
    assert len(lots) == len(few), [s for s in lots if s not in few][:5]
    page = web.get(f"/needs/{many.id}").get_data(as_text=True)
    # beside each offer and in its thread; and the customer's own in the header
    assert page.count('class="avatar avatar-small"') == 10 + 10 + 1
    assert page.count('class="avatar avatar-small initials"') == 10 + 10


def test_a_thread_costs_the_same_for_1_or_20_messages(make_user: Any, make_need: Any,
                                                      make_offer: Any, make_provider: Any,
                                                      auth: Any) -> None:
    customer, pro = make_user(), make_provider()
    media.set_avatar(customer.user, png((20, 20)))
    media.set_avatar(pro.user, png((20, 20), (1, 2, 3)))
    short = make_offer(make_need(customer), pro)
    long = make_offer(make_need(customer), pro)
    messages.send(pro.user, short.id, "Hello")
    for i in range(10):
        messages.send(pro.user, long.id, f"Hello {i}")
        messages.send(customer.user, long.id, f"Reply {i}")
    few = cost(lambda: pro.get(f"/api/v1/offers/{short.id}/messages"))
    lots = cost(lambda: pro.get(f"/api/v1/offers/{long.id}/messages"))
    assert len(lots) == len(few), [s for s in lots if s not in few][:5]
    # The rule stays: the customer's picture reaches the provider only after acceptance.
    items = pro.get(f"/api/v1/offers/{long.id}/messages").get_json()["items"]
    assert {bool(m["sender_avatar"]) for m in items if m["sender_name"] != "Pro " + pro.user.name} \
        == {False}
    lifecycle.accept(customer.user, long.id)
    items = pro.get(f"/api/v1/offers/{long.id}/messages").get_json()["items"]
    assert all(m["sender_avatar"] for m in items)
    page = auth.sign_in(pro).get(f"/needs/{long.need_id}")
    assert page.get_data(as_text=True).count('class="avatar avatar-small"') >= 10


def _with_photo(need: Any) -> Any:
    media.add_photo(need.id, png((30, 20), (need.id % 250, 5, 5)))
    db.session.commit()
    return need


def test_my_needs_cost_the_same_for_1_or_20_needs_with_photos(make_user: Any,
                                                              make_need: Any) -> None:
    few_owner, many_owner = make_user(), make_user()
    media.set_avatar(many_owner.user, png((20, 20)))
    _with_photo(make_need(few_owner))
    for _ in range(20):
        _with_photo(make_need(many_owner))
    few = cost(lambda: few_owner.get("/api/v1/needs?mine=true"))
    lots = cost(lambda: many_owner.get("/api/v1/needs?mine=true"))
    assert len(lots) == len(few), [s for s in lots if s not in few][:5]
    items = many_owner.get("/api/v1/needs?mine=true").get_json()["items"]
    assert len(items) == 20 and all(len(n["photos"]) == 1 for n in items)
    assert all(n["customer"]["avatar"] for n in items)


def test_the_feed_costs_the_same_for_1_or_20_needs(make_user: Any, make_need: Any,
                                                   make_provider: Any) -> None:
    pro = make_provider()
    first = _with_photo(make_need(make_user()))
    few = cost(lambda: pro.get("/api/v1/feed?limit=20"))
    for _ in range(19):
        _with_photo(make_need(make_user()))
    lots = cost(lambda: pro.get("/api/v1/feed?limit=20"))
    assert len(lots) == len(few), [s for s in lots if s not in few][:5]
    items = pro.get("/api/v1/feed?limit=20").get_json()["items"]
    assert len(items) == 20 and first.id in {n["id"] for n in items}
    assert all(len(n["photos"]) == 1 for n in items)


def test_pending_offers_cost_the_same_for_1_or_8(make_user: Any, make_need: Any,
                                                  make_offer: Any, make_provider: Any) -> None:
    one, eight = make_provider(), make_provider()
    make_offer(make_need(make_user()), one)
    for _ in range(8):
        make_offer(make_need(make_user()), eight)
    few = cost(lambda: one.get("/api/v1/offers?status=pending"))
    lots = cost(lambda: eight.get("/api/v1/offers?status=pending"))
    assert len(lots) == len(few), [s for s in lots if s not in few][:5]


def test_a_provider_reading_a_need_looks_up_their_profile_and_the_block_once(
        make_user: Any, make_need: Any, make_provider: Any) -> None:
    """The role on the need and the need as the provider sees it both want the provider's
    profile; whether the customer blocks them is asked once (before: each twice)."""
    pro = make_provider()
    need = make_need(make_user())
    seen = cost(lambda: pro.get(f"/api/v1/needs/{need.id}"))
    assert sum(bool(re.search(r"\bFROM providers\b", s)) for s in seen) == 1, seen
    assert sum(bool(re.search(r"\bFROM blocks\b", s)) for s in seen) == 1, seen
    assert pro.get(f"/api/v1/needs/{need.id}").get_json()["distance_band"]


def test_a_profile_made_after_a_lookup_found_none_is_found(app: Any, make_user: Any) -> None:
    """The profile kept for a transaction is one that was found: a user who had none and
    then made one gets it; one whose making was rolled back is looked up anew."""
    from marketplace.providers import services as providers
    from marketplace.providers.models import Provider

    person = make_user()
    assert providers.provider_of(person.user) is None
    made = providers.save_profile(person.user, {
        "handle": f"late-{person.user.id}", "display_name": "Late", "categories": ["catering"],
        "base": {"lat": 30.27, "lon": -97.74}, "radius_km": 10})
    assert providers.provider_of(person.user) is made
    other = make_user()
    db.session.add(Provider(user_id=other.user.id, handle=f"gone-{other.user.id}",
                            display_name="Gone", bio="", base_lat=30.2, base_lon=-97.7,
                            radius_km=10, active=True))
    db.session.flush()
    assert providers.provider_of(other.user) is not None
    db.session.rollback()
    assert providers.provider_of(other.user) is None


def test_the_need_page_reads_its_photos_once(make_user: Any, make_need: Any, auth: Any) -> None:
    """The page shows the photos in several places (the gallery, the edit form, the share
    preview): one statement reads them (before: one per place)."""
    customer = make_user()
    need = _with_photo(_with_photo(make_need(customer)))
    web = auth.sign_in(customer)
    seen = cost(lambda: web.get(f"/needs/{need.id}"))
    assert sum(bool(re.search(r"\bFROM need_photos\b", s)) for s in seen) == 1, seen
    page = web.get(f"/needs/{need.id}").get_data(as_text=True)
    assert page.count(f"/needs/{need.id}/photos/") >= 2  # both shown


def test_a_new_need_is_answered_as_written_not_read_again(make_user: Any,
                                                        make_provider: Any) -> None:
    """The answer to ``POST /api/v1/needs`` is the need as the request wrote it: after the
    commit nothing it wrote (the need, its customer, its category) is read again, and the
    answer is what reading it gives -- times sent with an offset included."""
    customer = make_user()
    make_provider()  # someone nearby to match
    media.set_avatar(customer.user, png((20, 20), (1, 2, 3)))
    plus_two = timezone(timedelta(hours=2))
    expires = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=250_000)
    body = need_data(title="Paint the #fence ?quote", max_offers=4, place="Austin",
                     expires_at=expires.astimezone(plus_two).isoformat(),
                     needed_by=(expires - timedelta(days=1)).astimezone(
                         timezone(timedelta(hours=-5))).isoformat())
    db.session.expire_all()
    with statements() as seen:
        r = customer.post("/api/v1/needs", json=body)
    assert r.status_code == 201, r.get_json()
    assert not reads(seen, "needs|users"), seen
    assert sum(bool(re.match(r"SELECT categories\.", s)) for s in seen) == 1, seen
    answer = r.get_json()
    assert answer["expires_at"] == expires.isoformat()  # in UTC, as read back
    assert answer["topics"] == ["fence"] and answer["intents"] == ["quote"]
    assert answer["customer"]["avatar"] is not None
    assert answer == customer.get(f"/api/v1/needs/{answer['id']}").get_json()


def test_a_new_message_is_answered_as_written_not_read_again(make_user: Any, make_need: Any,
                                                            make_offer: Any,
                                                            make_provider: Any) -> None:
    """The message, its offer and need are not read again after the commit, and the answer is
    the message as the thread shows it, to either side."""
    customer, pro = make_user(), make_provider()
    offer_id = make_offer(make_need(customer), pro).id
    for sender, other in ((customer, pro), (pro, customer)):
        db.session.expire_all()
        with statements() as seen:
            r = sender.post(f"/api/v1/offers/{offer_id}/messages", json={"body": "When?"})
        assert r.status_code == 201, r.get_json()
        assert sum(bool(re.match(r"SELECT offers\.", s)) for s in seen) == 1, [
            s[:60] for s in seen]
        assert not reads(seen, "messages|needs|users"), [s[:90] for s in seen]
        answer = r.get_json()
        thread = sender.get(f"/api/v1/offers/{offer_id}/messages").get_json()["items"]
        assert [m for m in thread if m["id"] == answer["id"]] == [answer]
        theirs = other.get(f"/api/v1/offers/{offer_id}/messages").get_json()["items"]
        assert answer["id"] in [m["id"] for m in theirs]


def test_making_an_offer_reads_the_providers_reputation_and_picture_once(
        make_user: Any, make_need: Any, make_provider: Any) -> None:
    """The customer's event and the provider's answer come from one read of the provider's
    reputation, profile and picture, made before the commit (before: read again after it),
    and the need's block is asked twice (the check, and again after the offer is counted),
    not three times; the provider is read once. What each side gets is what they read
    afterwards."""
    customer, pro = make_user(), make_provider()
    media.set_avatar(pro.user, png((20, 20), (4, 5, 6)))
    need = make_need(customer)
    db.session.expire_all()
    with statements() as seen:
        r = pro.post(f"/api/v1/needs/{need.id}/offers", json={"message": "Can do."})
    assert r.status_code == 201, r.get_json()
    assert sum(bool(re.match(r"SELECT avg\(ratings\.stars\)", s)) for s in seen) == 1, seen
    assert sum(bool(re.search(r"\bFROM avatars\b", s)) for s in seen) == 1, seen
    assert sum(bool(re.search(r"\bFROM blocks\b", s)) for s in seen) == 2, seen
    # the provider was read to find who is offering; presenting them reads them no more
    assert sum(bool(re.match(r"SELECT providers\.", s)) for s in seen) == 1, seen
    answer = r.get_json()
    assert answer["provider"]["avatar"] is not None
    assert answer == pro.get(f"/api/v1/offers/{answer['id']}").get_json()
    event = next(n for n in customer.get("/api/v1/notifications").get_json()["items"]
                 if n["type"] == "offer.received")
    as_customer = customer.get(f"/api/v1/offers/{answer['id']}").get_json()
    assert event["data"]["offer"] == as_customer


def test_a_provider_reads_a_need_with_its_customer_in_one_statement(
        make_user: Any, make_need: Any, make_provider: Any) -> None:
    """A need read alone comes with its tags and customer joined: a provider's read (which asks
    whether the customer is suspended) selects the need once and the customer not apart."""
    customer, pro = make_user(), make_provider()
    need_id = make_need(customer, title="Fix the #gate").id
    seen = cost(lambda: pro.get(f"/api/v1/needs/{need_id}"))
    assert sum(bool(re.match(r"SELECT needs\.", s)) for s in seen) == 1, seen
    assert not reads(seen, "users|need_tags"), seen


# --------------------------------------------------------------------------------------------
# extensions.rows: the plain reads asked on most requests skip the ORM's execute, and still see
# what the request has added but not yet flushed (the ORM's autoflush, kept)


@contextmanager
def orm_executes() -> Iterator[list[str]]:
    """The statements run through the ORM's execute (any session) inside the block."""
    seen: list[str] = []

    def note(state: Any) -> None:
        seen.append(" ".join(str(state.statement).split()))

    event.listen(FlaskSession, "do_orm_execute", note)
    try:
        yield seen
    finally:
        event.remove(FlaskSession, "do_orm_execute", note)


def test_a_plain_read_sees_what_the_request_has_not_flushed(make_user: Any,
                                                            make_provider: Any) -> None:
    customer, pro = make_user(), make_provider()
    db.session.add(Block(customer_id=customer.user.id, provider_id=pro.provider.id))
    assert blocks.customers_blocking(pro.provider.id) == {customer.user.id}
    assert blocks.is_blocked(customer.user.id, pro.provider.id)
    db.session.rollback()
    assert blocks.customers_blocking(pro.provider.id) == set()


def test_a_plain_read_flushes_nothing_under_no_autoflush(make_user: Any,
                                                         make_provider: Any) -> None:
    customer, pro = make_user(), make_provider()
    with db.session.no_autoflush:
        db.session.add(Block(customer_id=customer.user.id, provider_id=pro.provider.id))
        assert blocks.customers_blocking(pro.provider.id) == set()  # as session.execute would
    db.session.rollback()


def test_the_feeds_plain_reads_skip_the_orms_execute(make_user: Any, make_provider: Any,
                                                     make_need: Any) -> None:
    customer, pro = make_user(), make_provider()
    make_need(customer)
    db.session.expire_all()
    with orm_executes() as orm:
        r = pro.client.get("/api/v1/feed", headers={"Authorization": f"Bearer {pro.token}"})
    assert r.status_code == 200 and len(r.json["items"]) == 1
    assert len(orm) >= 3  # the token, the provider, the needs: ORM objects
    assert not any(s.startswith(("SELECT blocks.", "SELECT offers.need_id", "SELECT needs.id, "
                                 "needs.lat, needs.lon, needs.radius_km, need_recipients"))
                   for s in orm), orm


def test_a_providers_categories_come_with_it(make_user: Any, make_provider: Any,
                                            make_need: Any) -> None:
    """The feed and a provider's read of a need ask what the provider serves: its categories
    are joined to it (providers.provider_of), not lazily loaded in a statement of their own."""
    customer, pro = make_user(), make_provider()
    need = make_need(customer)
    bearer = {"Authorization": f"Bearer {pro.token}"}
    for path in ("/api/v1/feed", f"/api/v1/needs/{need.id}"):
        db.session.rollback()  # a new transaction, as a request of its own has
        with statements() as ran:
            assert pro.client.get(path, headers=bearer).status_code == 200
        assert not [s for s in ran if s.lstrip().startswith("SELECT categories.")], path


def test_an_api_token_finds_its_account_in_one_statement(app: Any, make_user: Any) -> None:
    """Every API request starts with the token's lookup: the token and its account are one
    statement, and the token's ``user`` is then the account read with it (no second one)."""
    person = make_user()
    user_id = person.user.id
    user = db.session.get(User, user_id)
    token, secret = accounts.create_token(user, "counted")
    token.last_used_at = utcnow()  # just used: the lookup has nothing to write
    db.session.commit()
    token_id = token.id
    db.session.remove()
    with statements() as seen:
        found = auth.token_for(secret)
        assert found is not None and found.user.id == user_id
        assert auth.user_for_token(secret) is found.user
    assert len(seen) == 2, seen  # once per call: the second call reads the row again
    db.session.remove()
    assert auth.token_for(secret + "x") is None
    accounts.revoke_token(db.session.get(User, user_id), token_id)
    assert auth.token_for(secret) is None
