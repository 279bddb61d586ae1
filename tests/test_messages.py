"""Messages: the private thread of one offer, between the need's customer and the provider who
made it. Who may read and write, when the thread closes, what a message body may be, and paging
newest first — through the services and through the API."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import committed_count, committed_rows, error_of

from marketplace import lifecycle
from marketplace.errors import Conflict, NotFound
from marketplace.messages import services as messages
from marketplace.messages.models import Message
from marketplace.offers import services as offers


def message_rows(offer_id: int | None = None) -> list[Any]:
    return committed_rows(Message, offer_id=offer_id)


def count_messages() -> int:
    return committed_count(Message)


def url(offer: Any) -> str:
    return f"/api/v1/offers/{offer.id}/messages"


@pytest.fixture
def thread(make_user, make_provider, make_need, make_offer):
    """A customer, their need, and a provider's pending offer on it."""
    customer = make_user(name="Carla Customer")
    need = make_need(customer)
    pro = make_provider(make_user(name="Pat Provider"))
    offer = make_offer(need, pro)
    return customer, pro, need, offer


def test_the_two_parties_write_and_read_the_thread(thread):
    customer, pro, _need, offer = thread
    r = customer.post(url(offer), json={"body": "  Can you bring plates?  "})
    assert r.status_code == 201, r.get_json()
    first = r.get_json()
    assert first["sender"] == "customer"
    assert first["sender_name"] == "Carla"  # first name only until acceptance
    assert first["body"] == "Can you bring plates?"
    assert first["offer_id"] == offer.id
    r = pro.post(url(offer), json={"body": "Yes, 25 of them."})
    assert r.status_code == 201
    second = r.get_json()
    assert second["sender"] == "provider" and second["sender_name"] == "Pro Pat Provider"

    for person in (customer, pro):
        r = person.get(url(offer))
        assert r.status_code == 200
        body = r.get_json()
        assert [m["id"] for m in body["items"]] == [second["id"], first["id"]]
        assert [m["sender"] for m in body["items"]] == ["provider", "customer"]
        assert body["next_cursor"] is None

    rows = message_rows(offer.id)
    assert [(r["sender_id"], r["body"]) for r in rows] == [
        (customer.user.id, "Can you bring plates?"), (pro.user.id, "Yes, 25 of them.")]


def test_service_level_send_and_thread(thread):
    customer, pro, _need, offer = thread
    sent = messages.send(pro.user, offer.id, "Hello")
    assert sent.sender_id == pro.user.id
    got_offer, items, cursor = messages.thread(customer.user, offer.id, None, 20)
    assert got_offer.id == offer.id and [m.id for m in items] == [sent.id] and cursor is None


def test_nobody_else_may_read_or_write_the_thread(thread, make_user, make_provider, make_need,
                                                  make_offer):
    customer, pro, need, offer = thread
    messages.send(customer.user, offer.id, "private")
    rival = make_provider()
    rival_offer = make_offer(need, rival)  # offered on the same need: has their own thread
    other_customer = make_user()
    make_need(other_customer)
    matched_but_silent = make_provider()
    for person in (rival, other_customer, matched_but_silent, make_user()):
        r = person.get(url(offer))
        assert r.status_code == 404
        error_of(r)
        r = person.post(url(offer), json={"body": "let me in"})
        assert r.status_code == 404
        error_of(r)
        with pytest.raises(NotFound):
            messages.send(person.user, offer.id, "let me in")
        with pytest.raises(NotFound):
            messages.thread(person.user, offer.id, None, 20)
    # the threads of two offers on one need do not mix
    assert pro.get(url(rival_offer)).status_code == 404
    assert customer.get(url(rival_offer)).get_json()["items"] == []
    assert [r["body"] for r in message_rows()] == ["private"]


def test_a_missing_offer_or_token(thread, client):
    customer, _pro, _need, offer = thread
    assert customer.get("/api/v1/offers/999999/messages").status_code == 404
    assert customer.post("/api/v1/offers/999999/messages", json={"body": "hi"}).status_code == 404
    r = client.post(url(offer), json={"body": "anonymous"})
    assert r.status_code == 401
    error_of(r)
    assert client.get(url(offer)).status_code == 401
    assert count_messages() == 0


def test_the_thread_closes_when_the_offer_is_withdrawn(thread):
    customer, pro, _need, offer = thread
    messages.send(customer.user, offer.id, "before")
    offers.withdraw(pro.user, offer.id)
    for person in (customer, pro):
        r = person.post(url(offer), json={"body": "after"})
        assert r.status_code == 409
        assert "withdrawn" in error_of(r)["message"]
    with pytest.raises(Conflict):
        messages.send(customer.user, offer.id, "after")
    assert [r["body"] for r in message_rows(offer.id)] == ["before"]


def test_the_thread_closes_when_the_offer_is_declined(thread, make_offer):
    customer, pro, need, offer = thread
    winner = make_offer(need)
    lifecycle.accept(customer.user, winner.id)
    for person in (customer, pro):
        r = person.post(url(offer), json={"body": "still there?"})
        assert r.status_code == 409
        assert "declined" in error_of(r)["message"]
    assert message_rows(offer.id) == []
    # the accepted offer's thread stays open, through completion
    r = customer.post(url(winner), json={"body": "See you Saturday"})
    assert r.status_code == 201
    lifecycle.complete(customer.user, need.id)
    assert customer.post(url(winner), json={"body": "Thanks!"}).status_code == 201
    assert len(message_rows(winner.id)) == 2


def test_the_thread_closes_when_the_need_is_cancelled_while_open(thread):
    customer, pro, need, offer = thread
    lifecycle.cancel(customer.user, need.id, None)
    r = pro.post(url(offer), json={"body": "hello?"})
    assert r.status_code == 409
    error_of(r)
    assert message_rows(offer.id) == []


@pytest.mark.parametrize("payload", [
    pytest.param({}, id="missing"),
    pytest.param({"body": ""}, id="empty"),
    pytest.param({"body": "   \n\t  "}, id="whitespace-only"),
    pytest.param({"body": "x" * 4001}, id="4001-chars"),
    pytest.param({"body": None}, id="null"),
    pytest.param({"body": 42}, id="number"),
    pytest.param({"body": ["hi"]}, id="list"),
    pytest.param({"body": "a\x00b"}, id="nul-char"),
])
def test_a_bad_body_is_422_naming_body(thread, payload):
    customer, _pro, _need, offer = thread
    r = customer.post(url(offer), json=payload)
    assert r.status_code == 422
    assert "body" in error_of(r)["fields"]
    assert count_messages() == 0


def test_unknown_fields_and_non_json_are_rejected(thread):
    customer, _pro, _need, offer = thread
    r = customer.post(url(offer), json={"body": "hi", "sender_id": 1})
    assert r.status_code == 422
    assert "sender_id" in error_of(r)["fields"]
    r = customer.post(url(offer), data="{not json", content_type="application/json")
    assert r.status_code == 400
    assert error_of(r)["fields"] == {"json": ["Invalid JSON body."]}
    assert count_messages() == 0


def test_bodies_up_to_4000_characters_are_kept_whole(thread):
    customer, _pro, _need, offer = thread
    long = "é" * 4000
    r = customer.post(url(offer), json={"body": long})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["body"] == long
    assert message_rows(offer.id)[0]["body"] == long
    assert customer.post(url(offer), json={"body": "y"}).status_code == 201


def test_the_thread_pages_newest_first(thread):
    customer, pro, _need, offer = thread
    sent = []
    for i in range(5):
        person = customer if i % 2 == 0 else pro
        sent.append(messages.send(person.user, offer.id, f"message {i}").id)
    seen: list[int] = []
    cursor = None
    while True:
        r = pro.get(url(offer) + "?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200
        body = r.get_json()
        assert len(body["items"]) <= 2
        seen.extend(m["id"] for m in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(sent, reverse=True)
    first = pro.get(url(offer) + "?limit=5").get_json()
    assert [m["body"] for m in first["items"]] == [f"message {i}" for i in range(4, -1, -1)]
    assert [m["sender"] for m in first["items"]] == ["customer", "provider", "customer",
                                                     "provider", "customer"]
    r = pro.get(url(offer) + "?limit=101")
    assert r.status_code == 422
    assert "limit" in error_of(r)["fields"]
    r = pro.get(url(offer) + "?cursor=%%%")
    assert r.status_code == 422
    assert "cursor" in error_of(r)["fields"]


# --- names before acceptance ----------------------------------------------------------------


def everything_a_provider_reads(auth: Any, pro: Any, offer: Any) -> str:
    """Every response a provider can get about the thread: the API thread, the notification
    feed (REST; the socket and replay carry the same stored payloads), the notifications page
    and the need page."""
    parts = [pro.get(url(offer)).get_data(as_text=True),
             pro.get("/api/v1/notifications").get_data(as_text=True)]
    web = auth.sign_in(pro)
    parts.append(web.get("/notifications").get_data(as_text=True))
    parts.append(web.get(f"/needs/{offer.need_id}").get_data(as_text=True))
    return "\n".join(parts)


def test_before_acceptance_no_provider_learns_the_customers_full_name(
        auth, make_user, make_provider, make_need, make_offer, emitted_wire):
    customer = make_user(name="Carla Zamorano-Whitfield")
    need = make_need(customer)
    pending, declined = make_provider(), make_provider()
    offers_by = [(p, make_offer(need, p)) for p in (pending, declined)]
    winner = make_provider()
    won = make_offer(need, winner)
    for offer in (*(o for _p, o in offers_by), won):
        messages.send(customer.user, offer.id, "Hello from the customer")
    for pro, offer in offers_by:
        seen = everything_a_provider_reads(auth, pro, offer)
        assert "Carla" in seen
        assert "Zamorano" not in seen and "Whitfield" not in seen, "full name before acceptance"
    assert all("Zamorano" not in p for p in emitted_wire)

    lifecycle.accept(customer.user, won.id)
    messages.send(customer.user, won.id, "See you Saturday")
    assert "Carla Zamorano-Whitfield" in winner.get(url(won)).get_data(as_text=True)
    for pro, offer in offers_by:  # now declined: still the first name only
        assert "Zamorano" not in everything_a_provider_reads(auth, pro, offer)


def test_providers_are_named_by_their_display_name_not_their_personal_name(thread):
    customer, pro, _need, offer = thread
    r = pro.post(url(offer), json={"body": "Hi"})
    assert r.get_json()["sender_name"] == pro.provider.display_name == "Pro Pat Provider"
    [note] = [n for n in customer.get("/api/v1/notifications").get_json()["items"]
              if n["type"] == "message.received"]
    assert note["data"]["sender_name"] == "Pro Pat Provider"
