"""Durable notifications: one row per recipient for every event of the loop, written in the
transaction of the change, emitted only after commit with ids in commit order, and the REST
feed (GET /api/v1/notifications, POST /api/v1/notifications/read) over them."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import AUSTIN, Person, error_of, message_data, need_data
from flask_sqlalchemy.session import Session as FlaskSession
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pages import dom
from receiver import receiving
from sqlalchemy import delete, event, func, insert, select, text, update

from marketplace import lifecycle
from marketplace.accounts.models import User
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.geo import grid_cell_centre
from marketplace.messages import services as messages
from marketplace.needs.models import Need, NeedStatus
from marketplace.notifications import outbox, types
from marketplace.notifications.models import Notification, NotificationCounter, NotificationReads
from marketplace.notifications.types import NotificationType
from marketplace.offers import services as offers
from marketplace.offers.models import Offer, OfferStatus
from marketplace.ratings import services as ratings
from marketplace.webhooks import services as webhooks
from marketplace.webhooks.services import deliver_due

DALLAS = (32.7767, -96.7970)  # ~300 km from Austin
TRUE_POINT = (30.2712345, -97.7398765)  # not a grid-cell centre, so any leak is recognisable
ADDRESS = "742 Evergreen Terrace, Austin"


# --- recording what is emitted --------------------------------------------------------------


@dataclass
class Emission:
    """One call of an emitter: the events, and the rows a brand-new connection saw then."""

    events: list[tuple[int, dict[str, Any]]]
    visible: dict[int, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture
def emitted(app: Any) -> Iterator[list[Emission]]:
    calls: list[Emission] = []

    def record(events: list[tuple[int, dict[str, Any]]]) -> None:
        ids = [e["id"] for _uid, e in events]
        with db.engine.connect() as conn:  # a NEW connection: sees only what is committed
            rows = conn.execute(
                select(Notification.__table__).where(Notification.id.in_(ids))
            ).mappings().all()
        calls.append(Emission(list(events), {r["id"]: dict(r) for r in rows}))

    outbox.on_emit(record)
    yield calls
    if record in outbox._emitters:
        outbox._emitters.remove(record)


def emitted_events(calls: list[Emission]) -> list[tuple[int, dict[str, Any]]]:
    return [e for call in calls for e in call.events]


# --- reading what is stored -----------------------------------------------------------------


def last_id() -> int:
    return db.session.scalar(select(func.max(Notification.id))) or 0


def stored(since: int = 0, type_: str | None = None) -> list[Notification]:
    stmt = select(Notification).where(Notification.id > since).order_by(Notification.id)
    if type_ is not None:
        stmt = stmt.where(Notification.type == type_)
    return list(db.session.scalars(stmt))


def to(since: int, type_: str) -> dict[int, list[dict[str, Any]]]:
    """recipient user id -> payloads of ``type_`` notifications after ``since``."""
    out: dict[int, list[dict[str, Any]]] = {}
    for note in stored(since, type_):
        out.setdefault(note.user_id, []).append(note.data)
    return out


def types_since(since: int) -> list[tuple[int, str]]:
    return sorted((n.user_id, n.type) for n in stored(since))


def uid(person: Person) -> int:
    return person.user.id


# --- a small cast ---------------------------------------------------------------------------


@dataclass
class Cast:
    customer: Person
    pros: list[Person]  # in range, catering, active
    far: Person  # catering but in Dallas
    plumber: Person  # in range, other category
    idle: Person  # in range, catering, inactive


@pytest.fixture
def cast(make_user: Any, make_provider: Any) -> Cast:
    return Cast(
        customer=make_user(name="Cora Customer", email="cora@example.com", phone="+15125550100"),
        pros=[make_provider(base=AUSTIN), make_provider(base=(30.30, -97.70)),
              make_provider(base=(30.22, -97.78))],
        far=make_provider(base=DALLAS),
        plumber=make_provider(base=AUSTIN, categories=("plumbing",)),
        idle=make_provider(base=AUSTIN, active=False),
    )


def post(cast: Cast, make_need: Any, **overrides: Any) -> Need:
    overrides.setdefault("location", {"lat": TRUE_POINT[0], "lon": TRUE_POINT[1]})
    overrides.setdefault("address", ADDRESS)
    return make_need(cast.customer, **overrides)


def numbers_in(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in numbers_in(v)]
    if isinstance(value, list):
        return [x for v in value for x in numbers_in(v)]
    if isinstance(value, float | int) and not isinstance(value, bool):
        return [float(value)]
    return []


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


# --- need.matched ---------------------------------------------------------------------------


def test_need_matched_goes_to_each_matching_provider_once(cast, make_provider, emitted):
    # the customer is a provider too, right here: still not told of their own need
    make_provider(cast.customer, base=AUSTIN)
    since = last_id()
    r = cast.customer.post("/api/v1/needs", json=need_data(
        location={"lat": TRUE_POINT[0], "lon": TRUE_POINT[1]}, address=ADDRESS))
    assert r.status_code == 201, r.get_json()
    need_id = r.get_json()["id"]

    told = to(since, "need.matched")
    assert sorted(told) == sorted(uid(p) for p in cast.pros)
    assert all(len(payloads) == 1 for payloads in told.values())
    assert types_since(since) == sorted((uid(p), "need.matched") for p in cast.pros)
    for payloads in told.values():
        need = payloads[0]["need"]
        assert need["id"] == need_id and need["title"] == "Catering for 20 people"
        assert need["category"] == "catering" and need["status"] == "open"
        assert need["budget"] == {"amount": 40000, "currency": "USD"}
        assert need["distance_band"] is not None
    # one commit: all matched providers are told at the same moment, with adjacent ids
    notes = stored(since, "need.matched")
    assert len({n.created_at for n in notes}) == 1
    assert [n.id for n in notes] == list(range(notes[0].id, notes[0].id + len(notes)))
    assert len(emitted) == 1 and len(emitted[0].events) == len(cast.pros)


def test_need_matched_payload_has_only_the_approximate_location(cast, make_need):
    since = last_id()
    need = post(cast, make_need)
    cell = grid_cell_centre(*TRUE_POINT)
    notes = stored(since, "need.matched")
    assert notes
    for note in notes:
        payload = note.data
        assert payload["need"]["location"] == {"lat": cell.lat, "lon": cell.lon,
                                               "approximate": True}
        assert "address" not in keys_in(payload)
        assert "customer" not in keys_in(payload) and "customer_id" not in keys_in(payload)
        text = json.dumps(payload)
        for secret in ("742 Evergreen", "cora@example.com", "Cora Customer", "+15125550100"):
            assert secret not in text
        numbers = numbers_in(payload)
        assert need.lat not in numbers and need.lon not in numbers
        assert TRUE_POINT[0] not in numbers and TRUE_POINT[1] not in numbers


def test_need_matched_distance_band_is_per_provider(cast, make_need):
    since = last_id()
    post(cast, make_need, location={"lat": AUSTIN[0], "lon": AUSTIN[1]})
    told = to(since, "need.matched")
    assert told[uid(cast.pros[0])][0]["need"]["distance_band"] == "under 2 km"
    assert told[uid(cast.pros[1])][0]["need"]["distance_band"] == "5-10 km"


def test_nobody_matching_means_no_rows_and_no_emission(cast, make_need, emitted):
    since = last_id()
    make_need(cast.customer, category="tutoring")
    assert stored(since) == []
    assert emitted == []


# --- offers ---------------------------------------------------------------------------------


def test_offer_received_revised_withdrawn_go_to_the_customer(cast, make_need, make_offer):
    need = post(cast, make_need)
    pro = cast.pros[0]

    since = last_id()
    offer = make_offer(need, pro, amount=35000)
    assert types_since(since) == [(uid(cast.customer), "offer.received")]
    [data] = to(since, "offer.received")[uid(cast.customer)]
    assert data["need_id"] == need.id
    assert data["offer"]["id"] == offer.id and data["offer"]["status"] == "pending"
    assert data["offer"]["price"] == {"amount": 35000, "currency": "USD"}
    assert data["offer"]["provider"]["handle"] == pro.provider.handle
    assert "_km" not in data["offer"]

    since = last_id()
    offers.revise(pro.user, offer.id, {"price": {"amount": 33000, "currency": "USD"},
                                       "message": "Better price"})
    assert types_since(since) == [(uid(cast.customer), "offer.revised")]
    [data] = to(since, "offer.revised")[uid(cast.customer)]
    assert data["offer"]["id"] == offer.id
    assert data["offer"]["price"]["amount"] == 33000 and data["offer"]["message"] == "Better price"

    since = last_id()
    offers.withdraw(pro.user, offer.id)
    assert types_since(since) == [(uid(cast.customer), "offer.withdrawn")]
    [data] = to(since, "offer.withdrawn")[uid(cast.customer)]
    assert data["offer"]["id"] == offer.id and data["offer"]["status"] == "withdrawn"


def test_accept_tells_the_winner_and_declines_the_other_pending_offers(cast, make_need,
                                                                      make_offer):
    need = post(cast, make_need)
    win, lose, gone = cast.pros
    won = make_offer(need, win)
    lost = make_offer(need, lose)
    withdrawn = make_offer(need, gone)
    offers.withdraw(gone.user, withdrawn.id)

    since = last_id()
    lifecycle.accept(cast.customer.user, won.id)
    assert types_since(since) == sorted([(uid(win), "offer.accepted"),
                                         (uid(lose), "offer.declined")])
    [accepted] = to(since, "offer.accepted")[uid(win)]
    assert accepted["offer_id"] == won.id
    assert accepted["need"]["id"] == need.id and accepted["need"]["status"] == "assigned"
    [declined] = to(since, "offer.declined")[uid(lose)]
    assert declined["offer_id"] == lost.id and declined["need"]["id"] == need.id
    assert declined["reason"]
    for note in stored(since):
        assert ADDRESS not in json.dumps(note.data)


def test_customer_cancelling_an_open_need_tells_the_offering_providers(cast, make_need,
                                                                      make_offer):
    need = post(cast, make_need)
    a, b, c = cast.pros  # a and b offer, b withdraws; c only matched
    make_offer(need, a)
    offers.withdraw(b.user, make_offer(need, b).id)

    since = last_id()
    lifecycle.cancel(cast.customer.user, need.id, "Found someone else")
    assert types_since(since) == [(uid(a), "need.cancelled")]
    [data] = to(since, "need.cancelled")[uid(a)]
    assert data["need"]["id"] == need.id and data["need"]["status"] == "cancelled"
    assert data["cancelled_by"] == "customer" and data["reason"] == "Found someone else"
    assert uid(c) not in to(since, "need.cancelled")


def test_accepted_provider_cancelling_tells_the_customer(cast, make_need, make_offer):
    need = post(cast, make_need)
    offer = make_offer(need, cast.pros[0])
    make_offer(need, cast.pros[1])
    lifecycle.accept(cast.customer.user, offer.id)

    since = last_id()
    lifecycle.cancel(cast.pros[0].user, need.id, "Van broke down")
    assert types_since(since) == [(uid(cast.customer), "need.cancelled")]
    [data] = to(since, "need.cancelled")[uid(cast.customer)]
    assert data["cancelled_by"] == "provider" and data["reason"] == "Van broke down"


def test_customer_cancelling_an_assigned_job_tells_only_the_accepted_provider(
        cast, make_need, make_offer):
    need = post(cast, make_need)
    offer = make_offer(need, cast.pros[0])
    make_offer(need, cast.pros[1])  # declined at acceptance: no longer concerned
    lifecycle.accept(cast.customer.user, offer.id)

    since = last_id()
    lifecycle.cancel(cast.customer.user, need.id, "Party is off")
    assert types_since(since) == [(uid(cast.pros[0]), "need.cancelled")]


def test_expiry_tells_the_customer_and_the_offering_providers(cast, make_need, make_offer,
                                                              emitted):
    soon = datetime.now(UTC) + timedelta(hours=1)
    need = post(cast, make_need, expires_at=soon)
    untouched = post(cast, make_need)  # expires later: not part of this sweep
    a, b, _c = cast.pros
    make_offer(need, a)
    offers.withdraw(b.user, make_offer(need, b).id)

    since = last_id()
    emitted.clear()
    assert lifecycle.expire_due(soon + timedelta(minutes=1)) == [need.id]
    assert types_since(since) == sorted([(uid(cast.customer), "need.expired"),
                                         (uid(a), "need.expired")])
    for payloads in to(since, "need.expired").values():
        assert payloads[0]["need"]["id"] == need.id
        assert payloads[0]["need"]["status"] == "expired"
    assert sorted(user_id for call in emitted for user_id, _e in call.events) == sorted(
        [uid(cast.customer), uid(a)])
    assert db.session.get(Need, untouched.id).status == NeedStatus.OPEN

    since = last_id()
    assert lifecycle.expire_due(soon + timedelta(minutes=2)) == []  # nothing twice
    assert stored(since) == []


def test_completion_tells_the_accepted_provider(cast, make_need, make_offer):
    need = post(cast, make_need)
    offer = make_offer(need, cast.pros[0])
    make_offer(need, cast.pros[1])
    lifecycle.accept(cast.customer.user, offer.id)

    since = last_id()
    lifecycle.complete(cast.customer.user, need.id)
    assert types_since(since) == [(uid(cast.pros[0]), "need.completed")]
    [data] = to(since, "need.completed")[uid(cast.pros[0])]
    assert data["need"]["id"] == need.id and data["need"]["status"] == "completed"


def test_messages_tell_the_other_party(cast, make_need, make_offer):
    need = post(cast, make_need)
    pro = cast.pros[0]
    offer = make_offer(need, pro)

    since = last_id()
    sent = messages.send(cast.customer.user, offer.id, "Can you do gluten free?")
    assert types_since(since) == [(uid(pro), "message.received")]
    [data] = to(since, "message.received")[uid(pro)]
    assert data["offer_id"] == offer.id and data["need_id"] == need.id
    assert data["message_id"] == sent.id and data["from"] == "customer"
    assert data["body"] == "Can you do gluten free?"

    since = last_id()
    messages.send(pro.user, offer.id, "Yes")
    assert types_since(since) == [(uid(cast.customer), "message.received")]
    [data] = to(since, "message.received")[uid(cast.customer)]
    assert data["from"] == "provider" and data["body"] == "Yes"


def test_rating_tells_the_provider_and_the_reply_tells_the_customer(cast, make_need,
                                                                   make_offer):
    need = post(cast, make_need)
    pro = cast.pros[0]
    offer = make_offer(need, pro)
    lifecycle.accept(cast.customer.user, offer.id)
    lifecycle.complete(cast.customer.user, need.id)

    since = last_id()
    rating = lifecycle.rate(cast.customer.user, need.id, {"stars": 4, "comment": "Tasty"})
    assert types_since(since) == [(uid(pro), "rating.received")]
    [data] = to(since, "rating.received")[uid(pro)]
    assert data["rating_id"] == rating.id and data["need_id"] == need.id
    assert data["stars"] == 4 and data["comment"] == "Tasty"

    since = last_id()
    ratings.reply(pro.user, rating.id, "Thank you!")
    assert types_since(since) == [(uid(cast.customer), "rating.replied")]
    [data] = to(since, "rating.replied")[uid(cast.customer)]
    assert data["rating_id"] == rating.id and data["reply"] == "Thank you!"
    assert data["provider"] == pro.provider.handle


# --- the whole loop: emitted after commit, equal to the stored rows, ids in commit order ----


def run_loop(cast: Cast, make_need: Any, make_offer: Any) -> None:
    """Every event type at least once."""
    with receiving() as receiver:
        receiver.answers = [500] * 100  # the customer's webhook never takes a delivery
        webhooks.create(cast.customer.user, {"url": receiver.url, "types": ["offer.received"]})
        _run_loop(cast, make_need, make_offer)
        # webhook.disabled: its offer.received deliveries fail every attempt until it is
        # disabled (WEBHOOKS_DISABLE_AFTER of them)
        for _ in range(10):
            if not deliver_due():
                break


def _run_loop(cast: Cast, make_need: Any, make_offer: Any) -> None:
    a, b, c = cast.pros
    need = post(cast, make_need)  # need.matched x3
    oa = make_offer(need, a)  # offer.received
    ob = make_offer(need, b)
    oc = make_offer(need, c)
    lifecycle.edit(cast.customer.user, need.id, {"description": "Edited"})  # need.updated
    offers.revise(b.user, ob.id, {"message": "Revised"})  # offer.revised
    offers.withdraw(c.user, oc.id)  # offer.withdrawn
    messages.send(cast.customer.user, oa.id, "Hello")  # message.received
    messages.send(a.user, oa.id, "Hi")
    lifecycle.accept(cast.customer.user, oa.id)  # offer.accepted + offer.declined
    lifecycle.complete(cast.customer.user, need.id)  # need.completed
    rating = lifecycle.rate(cast.customer.user, need.id, {"stars": 5})  # rating.received
    ratings.reply(a.user, rating.id, "Thanks")  # rating.replied
    second = post(cast, make_need, title="Second need")
    make_offer(second, a)
    lifecycle.cancel(cast.customer.user, second.id, "No longer needed")  # need.cancelled
    soon = datetime.now(UTC) + timedelta(hours=1)
    third = post(cast, make_need, title="Third need", expires_at=soon)
    make_offer(third, b)
    assert lifecycle.expire_due(soon + timedelta(seconds=1)) == [third.id]  # need.expired


ALL_TYPES = {t.value for t in NotificationType}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "events.md"


def test_the_documented_types_are_the_types_notify_takes():
    """docs/events.md's table of types lists exactly NotificationType, so neither can add or
    lose a type without the other."""
    section = DOCS.read_text().split("## Types", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z]+\.[a-z]+)` \|", section, re.M))
    assert documented == ALL_TYPES
    assert len(ALL_TYPES) == 14


def test_notify_refuses_a_type_that_is_not_one(app):
    with pytest.raises(ValueError):
        outbox.notify([1], "offer.recieved", {})
    with pytest.raises(ValueError):
        outbox.notify_each("need.match", [(1, {})])


@pytest.fixture(params=["insert", "copy"])
def outbox_path(request, monkeypatch, backend):
    """Run a test with the outbox's usual INSERT, then with every batch forced through the
    bulk path that large fan-outs take (PostgreSQL's COPY; on SQLite the driver's own
    executemany)."""
    if request.param == "copy":
        monkeypatch.setattr(outbox, "COPY_FROM_ROWS", 1)
    return request.param


def test_every_event_is_emitted_after_commit_exactly_as_stored(cast, make_need, make_offer,
                                                              emitted, outbox_path):
    since = last_id()
    run_loop(cast, make_need, make_offer)
    notes = stored(since)
    assert {n.type for n in notes} == ALL_TYPES

    events = emitted_events(emitted)
    # every stored row was emitted exactly once, to its recipient, in id (= commit) order
    assert [e["id"] for _uid, e in events] == [n.id for n in notes]
    for call in emitted:
        for user_id, ev in call.events:
            # the emitter's own fresh connection already saw the row: the commit came first
            seen = call.visible.get(ev["id"])
            assert seen is not None, f"{ev['type']} {ev['id']} emitted before it was committed"
            assert seen["user_id"] == user_id and seen["type"] == ev["type"]
            assert seen["data"] == ev["data"]
            note = db.session.get(Notification, ev["id"])
            assert note.user_id == user_id
            assert note.as_event() == ev
            assert set(ev) == {"id", "seq", "type", "created_at", "text", "data"}
            assert ev["text"] == types.text(ev["type"], ev["data"]) and ev["text"]
            # the text encoded once for the row and the wire says exactly the same
            assert json.loads(ev.wire) == ev


def test_a_pre_encoded_event_is_the_same_socketio_packet_as_the_object():
    from socketio import packet

    from marketplace.realtime.emit import Packet, PreEncoded

    event = {"id": 7, "type": "need.matched", "created_at": "2026-11-30T10:00:00+00:00",
             "data": {"need": {"title": "Café \u00e9 \"quoted\"", "budget": {"amount": 5}}}}
    wire = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    spliced = Packet(packet.EVENT, data=["notification", PreEncoded(wire)]).encode()
    plain = packet.Packet(packet.EVENT, data=["notification", event]).encode()
    assert spliced.startswith("2[")
    assert packet.Packet(encoded_packet=spliced).data == packet.Packet(encoded_packet=plain).data
    assert packet.Packet(encoded_packet=spliced).data == ["notification", event]
    # anything else is encoded as usual
    assert Packet(packet.EVENT, data=["x", {"a": 1}]).encode() == '2["x",{"a":1}]'
    assert Packet(packet.EVENT, data=["x", PreEncoded("{}")], namespace="/other").encode() == (
        '2/other,["x","{}"]')


@pytest.mark.parametrize("title", ["Plain", "Caf\u00e9 \"quoted\" \\ </script>",
                                   "holds the mark \x00distance band\x00 itself"])
def test_a_banded_payload_is_the_text_its_object_encodes_to(title):
    """A fan-out's payloads are spliced from one encoding (``needs.services._banded``): each
    must be exactly what encoding the whole object gives, and one object per band."""
    from marketplace.needs.services import _banded

    shared = {"id": 3, "title": title, "distance_band": None, "budget": {"amount": 5},
              "place": None}
    payload = _banded(shared, direct=False)
    for band in ("under 1 km", "5-10 km", "under 1 km"):
        data = payload(band)
        assert data == {"need": {**shared, "distance_band": band, "direct": False}}
        assert data.json == outbox.encode(dict(data)) == json.dumps(
            data, ensure_ascii=False, separators=(",", ":"))
        assert list(data["need"]) == [*shared, "direct"]  # the band keeps its place
    assert payload("under 1 km") is payload("under 1 km")


def test_ids_follow_commit_order_not_the_order_work_began(cast, make_need, make_offer, app,
                                                          backend, emitted):
    """Transaction A starts (and on PostgreSQL writes) first but commits second; B commits in
    between. A's notification ids must come after B's, so a client that resumes "after B's
    last id" can never miss A's."""
    need = post(cast, make_need)
    elsewhere = post(cast, make_need, title="Another need")
    since = last_id()
    emitted.clear()

    # A: begins, queues a notification and (PostgreSQL) holds a write open
    outbox.notify([uid(cast.pros[2])], "message.received", message_data("first begun"))
    if backend == "postgresql":  # SQLite has one writer: A may not write before B commits
        db.session.execute(update(Need).where(Need.id == elsewhere.id)
                           .values(description="edited in A"))
    db.session.flush()

    # B: a complete operation in its own session (a second app context), committed now
    with app.app_context():
        offers.make(cast.pros[0].user, need.id, {"message": "from B"})

    db.session.commit()  # A commits last

    notes = stored(since)
    assert [n.type for n in notes] == ["offer.received", "message.received"]
    b_note, a_note = notes
    assert a_note.id > b_note.id
    assert [e["type"] for _u, e in emitted_events(emitted)] == ["offer.received",
                                                                "message.received"]


@dataclass
class Race:
    """What ``b_inside_a_commit`` saw: how B went while A's commit was held, B's answer."""

    observed: list[str] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)


@contextmanager
def b_inside_a_commit(app: Any, b: Callable[[], Any]) -> Iterator[Race]:
    """Real concurrency (PostgreSQL): as soon as this thread's next commit begins (A: the
    body of the ``with``), run ``b`` in another thread, in its own app context and
    connection, and hold A's commit until B waits for a lock ("B waited for A") or is done
    ("B finished first"). B's error, if any, fails the test."""
    main = threading.current_thread()
    race, b_pid = Race(), {}
    b_started, b_done = threading.Event(), threading.Event()
    b_error: list[BaseException] = []

    def run_b() -> None:
        try:
            with app.app_context():
                b_pid["pid"] = db.session.execute(text("select pg_backend_pid()")).scalar_one()
                b_started.set()
                race.answers.append(b())
        except BaseException as exc:  # reported by the main thread
            b_error.append(exc)
        finally:
            b_started.set()
            b_done.set()

    worker = threading.Thread(target=run_b)

    def inside_a_commit(session: Any) -> None:
        if threading.current_thread() is not main or race.observed:
            return
        worker.start()
        assert b_started.wait(10)
        deadline = time.monotonic() + 20
        with db.engine.connect() as conn:
            while time.monotonic() < deadline:
                waiting = conn.execute(
                    text("select wait_event_type from pg_stat_activity where pid = :pid"),
                    {"pid": b_pid.get("pid", -1)}).scalar()
                if waiting == "Lock":
                    race.observed.append("B waited for A")
                    return
                if b_done.wait(0.01):
                    race.observed.append("B finished first")
                    return
        race.observed.append("timeout")

    event.listen(FlaskSession, "before_commit", inside_a_commit)
    try:
        yield race
    finally:
        # B may still be running its own commit hooks: removing a listener while another
        # thread iterates over them would break that iteration, so wait for B first.
        if worker.is_alive():
            worker.join(30)
        event.remove(FlaskSession, "before_commit", inside_a_commit)
    assert not worker.is_alive() and not b_error, b_error


def test_concurrent_commits_get_ids_in_commit_order(cast, make_need, make_offer, app,
                                                    backend, emitted):
    """Real concurrency (PostgreSQL): while transaction A is inside its commit (ids taken,
    not yet committed), B runs a whole operation in another thread. Whichever commits first
    must hold the smaller ids; with the counter row B waits for A."""
    if backend != "postgresql":
        pytest.skip("needs concurrent writers and row locks (PostgreSQL)")
    need = post(cast, make_need)
    other_offer = make_offer(need, cast.pros[1])
    customer_id, b_user_id, a_offer_id = uid(cast.customer), uid(cast.pros[0]), other_offer.id
    since = last_id()
    emitted.clear()
    with b_inside_a_commit(app, lambda: offers.make(db.session.get(User, b_user_id), need.id,
                                                    {"message": "from B"})) as race:
        messages.send(db.session.get(User, customer_id), a_offer_id, "from A")

    notes = stored(since)
    a_ids = [n.id for n in notes if n.type == "message.received"]
    b_ids = [n.id for n in notes if n.type == "offer.received"]
    assert len(a_ids) == 1 and len(b_ids) == 1
    assert race.observed == ["B waited for A"]  # the counter row serialises commits
    assert max(a_ids) < min(b_ids)  # so A, committed first, has the lower ids


# --- same transaction; failures leave nothing -----------------------------------------------


def test_rows_are_written_inside_the_transaction_of_the_change(cast, make_need, make_offer):
    need = post(cast, make_need)
    win = make_offer(need, cast.pros[0])
    lose = make_offer(need, cast.pros[1])
    since = last_id()
    probes: list[dict[str, Any]] = []

    def probe(session: Any) -> None:  # runs after the outbox's own before_commit hook
        def look(conn: Any) -> dict[str, Any]:
            return {
                "notes": sorted(tuple(r) for r in conn.execute(
                    select(Notification.user_id, Notification.type)
                    .where(Notification.id > since))),
                "offer": conn.execute(select(Offer.status).where(Offer.id == win.id)).scalar_one(),
                "need": conn.execute(select(Need.status).where(Need.id == need.id)).scalar_one(),
            }

        inside = look(session)
        with db.engine.connect() as conn:
            outside = look(conn)
        probes.append({"inside": inside, "outside": outside})

    event.listen(FlaskSession, "before_commit", probe)
    try:
        lifecycle.accept(cast.customer.user, win.id)
    finally:
        event.remove(FlaskSession, "before_commit", probe)

    [seen] = probes
    expected = sorted([(uid(cast.pros[0]), "offer.accepted"), (uid(cast.pros[1]), "offer.declined")])
    assert seen["inside"] == {"notes": expected, "offer": OfferStatus.ACCEPTED,
                              "need": NeedStatus.ASSIGNED}
    assert seen["outside"] == {"notes": [], "offer": OfferStatus.PENDING,
                               "need": NeedStatus.OPEN}
    assert types_since(since) == expected
    assert db.session.get(Offer, lose.id).status == OfferStatus.DECLINED


def test_a_commit_that_fails_takes_its_notifications_with_it(cast, make_need, make_offer,
                                                            emitted, outbox_path):
    need = post(cast, make_need)
    win = make_offer(need, cast.pros[0])
    make_offer(need, cast.pros[1])
    since = last_id()
    emitted.clear()

    def fail(session: Any) -> None:  # after the outbox has inserted its rows
        raise RuntimeError("the disk is full")

    event.listen(FlaskSession, "before_commit", fail)
    try:
        with pytest.raises(RuntimeError):
            lifecycle.accept(cast.customer.user, win.id)
    finally:
        event.remove(FlaskSession, "before_commit", fail)
    db.session.rollback()

    assert stored(since) == [] and emitted == []
    assert db.session.get(Offer, win.id).status == OfferStatus.PENDING
    assert db.session.get(Need, need.id).status == NeedStatus.OPEN

    # trying again works, and carries nothing left over from the failed attempt
    lifecycle.accept(cast.customer.user, win.id)
    assert types_since(since) == sorted([(uid(cast.pros[0]), "offer.accepted"),
                                         (uid(cast.pros[1]), "offer.declined")])
    assert len(emitted_events(emitted)) == 2


Scenario = Callable[[Cast, Any, Any, Any], Callable[[], Any]]


def _accept_twice(cast: Cast, make_need: Any, make_offer: Any, app: Any) -> Callable[[], Any]:
    need = post(cast, make_need)
    first, second = make_offer(need, cast.pros[0]), make_offer(need, cast.pros[1])
    lifecycle.accept(cast.customer.user, first.id)
    return lambda: lifecycle.accept(cast.customer.user, second.id)


def _over_the_cap(cast: Cast, make_need: Any, make_offer: Any, app: Any) -> Callable[[], Any]:
    need = post(cast, make_need, max_offers=1)
    make_offer(need, cast.pros[0])
    return lambda: make_offer(need, cast.pros[1])


def _offer_on_cancelled(cast: Cast, make_need: Any, make_offer: Any,
                        app: Any) -> Callable[[], Any]:
    need = post(cast, make_need)
    make_offer(need, cast.pros[0])
    lifecycle.cancel(cast.customer.user, need.id, None)
    return lambda: make_offer(need, cast.pros[1])


def _revise_withdrawn(cast: Cast, make_need: Any, make_offer: Any,
                      app: Any) -> Callable[[], Any]:
    need = post(cast, make_need)
    offer = make_offer(need, cast.pros[0])
    offers.withdraw(cast.pros[0].user, offer.id)
    return lambda: offers.revise(cast.pros[0].user, offer.id, {"message": "again"})


def _accept_by_stranger(cast: Cast, make_need: Any, make_offer: Any,
                        app: Any) -> Callable[[], Any]:
    need = post(cast, make_need)
    offer = make_offer(need, cast.pros[0])
    return lambda: lifecycle.accept(cast.pros[1].user, offer.id)


def _rate_twice(cast: Cast, make_need: Any, make_offer: Any, app: Any) -> Callable[[], Any]:
    need = post(cast, make_need)
    offer = make_offer(need, cast.pros[0])
    lifecycle.accept(cast.customer.user, offer.id)
    lifecycle.complete(cast.customer.user, need.id)
    lifecycle.rate(cast.customer.user, need.id, {"stars": 5})
    return lambda: lifecycle.rate(cast.customer.user, need.id, {"stars": 1})


def _message_on_declined(cast: Cast, make_need: Any, make_offer: Any,
                         app: Any) -> Callable[[], Any]:
    need = post(cast, make_need)
    win, lose = make_offer(need, cast.pros[0]), make_offer(need, cast.pros[1])
    lifecycle.accept(cast.customer.user, win.id)
    return lambda: messages.send(cast.customer.user, lose.id, "Sorry")


def _complete_twice(cast: Cast, make_need: Any, make_offer: Any, app: Any) -> Callable[[], Any]:
    need = post(cast, make_need)
    lifecycle.accept(cast.customer.user, make_offer(need, cast.pros[0]).id)
    lifecycle.complete(cast.customer.user, need.id)
    return lambda: lifecycle.complete(cast.customer.user, need.id)


def _accept_an_offer_withdrawn_meanwhile(cast: Cast, make_need: Any, make_offer: Any,
                                         app: Any) -> Callable[[], Any]:
    """The customer's session still holds the offer as pending when the provider withdraws
    it in another session: the conditional UPDATE must refuse, after the need UPDATE ran."""
    need = post(cast, make_need)
    offer = make_offer(need, cast.pros[0])
    make_offer(need, cast.pros[1])
    assert offer.status == OfferStatus.PENDING and offer.need.status == NeedStatus.OPEN
    with app.app_context():
        offers.withdraw(cast.pros[0].user, offer.id)
    return lambda: lifecycle.accept(cast.customer.user, offer.id)


@pytest.mark.parametrize("scenario", [
    _accept_twice, _over_the_cap, _offer_on_cancelled, _revise_withdrawn, _accept_by_stranger,
    _rate_twice, _message_on_declined, _complete_twice, _accept_an_offer_withdrawn_meanwhile,
], ids=lambda f: f.__name__.strip("_"))
def test_a_failed_operation_creates_and_emits_nothing(cast, make_need, make_offer, app,
                                                      emitted, scenario):
    attempt = scenario(cast, make_need, make_offer, app)
    since = last_id()
    emitted.clear()
    with pytest.raises(DomainError):  # Conflict, Forbidden or NotFound
        attempt()
    db.session.rollback()  # what the end of a request does
    assert stored(since) == []
    assert emitted == []
    # and nothing was left queued to ride along with the next, unrelated commit
    probe_need = post(cast, make_need, category="plumbing")
    assert types_since(since) == [(uid(cast.plumber), "need.matched")]
    assert [e["data"]["need"]["id"] for _u, e in emitted_events(emitted)] == [probe_need.id]


def test_a_failed_api_call_creates_and_emits_nothing(cast, make_need, make_offer, emitted):
    need = post(cast, make_need)
    first, second = make_offer(need, cast.pros[0]), make_offer(need, cast.pros[1])
    assert cast.customer.post(f"/api/v1/offers/{first.id}/accept").status_code == 200
    since = last_id()
    emitted.clear()
    r = cast.customer.post(f"/api/v1/offers/{second.id}/accept")
    assert r.status_code == 409
    assert error_of(r)["code"] == "conflict"
    r = cast.pros[2].post(f"/api/v1/needs/{need.id}/offers", json={"message": "late"})
    assert r.status_code == 409  # it was posted to them (and they were told it closed)
    assert error_of(r)["message"] == "This need is assigned; it no longer takes offers."
    assert stored(since) == [] and emitted == []


def test_idempotent_replays_do_not_notify_twice(cast, make_need, emitted):
    body = need_data(location={"lat": TRUE_POINT[0], "lon": TRUE_POINT[1]})
    key = {"Idempotency-Key": "post-need-once"}
    since = last_id()
    first = cast.customer.post("/api/v1/needs", json=body, headers=key)
    again = cast.customer.post("/api/v1/needs", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    need_id = first.get_json()["id"]
    assert again.get_json()["id"] == need_id
    assert types_since(since) == sorted((uid(p), "need.matched") for p in cast.pros)

    since = last_id()
    emitted.clear()
    key = {"Idempotency-Key": "offer-once"}
    offer = {"message": "I can", "price": {"amount": 30000, "currency": "USD"}}
    for _ in range(2):
        r = cast.pros[0].post(f"/api/v1/needs/{need_id}/offers", json=offer, headers=key)
        assert r.status_code == 201
    assert types_since(since) == [(uid(cast.customer), "offer.received")]
    assert len(emitted_events(emitted)) == 1


# --- REST: GET /api/v1/notifications ---------------------------------------------------------


def notifications(person: Person, **args: Any) -> dict[str, Any]:
    r = person.get("/api/v1/notifications", query_string=args)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


@pytest.fixture
def inboxes(cast: Cast, make_need: Any) -> dict[int, list[int]]:
    """Four needs: pros[0] and pros[1] (keyed by user id) each get four interleaved
    need.matched rows."""
    for i in range(4):
        post(cast, make_need, title=f"Need number {i}")
    return {uid(p): [n.id for n in stored() if n.user_id == uid(p)] for p in cast.pros[:2]}


def test_list_returns_only_my_notifications_oldest_first(cast, inboxes):
    me = cast.pros[0]
    body = notifications(me)
    ids = [item["id"] for item in body["items"]]
    assert ids == inboxes[uid(me)] and len(ids) == 4
    assert ids == sorted(ids)
    assert body["last_id"] == ids[-1]
    assert body["unread_count"] == 4
    item = body["items"][0]
    assert set(item) == {"id", "seq", "type", "created_at", "read_at", "text", "data"}
    assert item["type"] == "need.matched" and item["read_at"] is None
    note = db.session.get(Notification, item["id"])
    event_ = note.as_event()
    assert (item["id"], item["type"], item["data"]) == (event_["id"], event_["type"],
                                                        event_["data"])
    assert datetime.fromisoformat(item["created_at"]) == note.created_at
    assert set(ids).isdisjoint(inboxes[uid(cast.pros[1])])


def test_after_returns_only_newer(cast, inboxes):
    me = cast.pros[0]
    mine = inboxes[uid(me)]
    body = notifications(me, after=mine[1])
    assert [i["id"] for i in body["items"]] == mine[2:]
    assert body["last_id"] == mine[-1]
    assert body["unread_count"] == 4  # counts everything unread, not just this page
    # an id between two of mine (someone else's) works as a resume point too
    body = notifications(me, after=mine[0] + 1)
    assert [i["id"] for i in body["items"]] == [i for i in mine if i > mine[0] + 1]


def test_nothing_newer_keeps_last_id_where_it_was(cast, inboxes):
    me = cast.pros[0]
    last = inboxes[uid(me)][-1]
    assert notifications(me, after=last) == {"items": [], "last_id": last, "last_seq": 4,
                                             "unread_count": 4}
    assert notifications(me, after=last + 1000)["last_id"] == last + 1000
    assert notifications(me, after=last + 1000)["last_seq"] == 4  # the seq it stands after


def test_limit_pages_through_with_last_id(cast, inboxes):
    me = cast.pros[0]
    seen: list[int] = []
    after = 0
    for expected in (2, 2, 0):
        body = notifications(me, after=after, limit=2)
        assert len(body["items"]) == expected
        seen += [i["id"] for i in body["items"]]
        after = body["last_id"]
    assert seen == inboxes[uid(me)]


def test_limit_allows_up_to_500(cast, inboxes):
    assert len(notifications(cast.pros[0], limit=500)["items"]) == 4
    assert len(notifications(cast.pros[0], limit=1)["items"]) == 1


@pytest.mark.parametrize(("args", "field_"), [
    ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "ten"}, "limit"),
    ({"after": -1}, "after"), ({"after": "x"}, "after"),
])
def test_bad_list_arguments_are_422(cast, args, field_):
    r = cast.pros[0].get("/api/v1/notifications", query_string=args)
    assert r.status_code == 422
    assert field_ in error_of(r)["fields"]


def test_notifications_need_a_token(client):
    for r in (client.get("/api/v1/notifications"),
              client.post("/api/v1/notifications/read", json={"up_to": 1})):
        assert r.status_code == 401
        error_of(r)


# --- REST: POST /api/v1/notifications/read ----------------------------------------------------


def read_at_of(ids: list[int]) -> dict[int, Any]:
    db.session.expire_all()
    return {i: db.session.get(Notification, i).read_at for i in ids}


def test_mark_read_by_ids_touches_only_my_own(cast, inboxes):
    me, other = cast.pros[0], cast.pros[1]
    mine, theirs = inboxes[uid(me)], inboxes[uid(other)]
    r = me.post("/api/v1/notifications/read", json={"ids": [mine[0], mine[2], *theirs]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"marked": 2, "unread_count": 2}
    marked = read_at_of(mine)
    assert marked[mine[0]] is not None and marked[mine[2]] is not None
    assert marked[mine[1]] is None and marked[mine[3]] is None
    assert all(v is None for v in read_at_of(theirs).values())
    assert notifications(other)["unread_count"] == 4
    body = notifications(me)
    assert body["unread_count"] == 2
    assert [i["read_at"] is not None for i in body["items"]] == [True, False, True, False]

    # marking again marks nothing new and keeps the first read time
    first = read_at_of([mine[0]])[mine[0]]
    r = me.post("/api/v1/notifications/read", json={"ids": [mine[0]]})
    assert r.get_json() == {"marked": 0, "unread_count": 2}
    assert read_at_of([mine[0]])[mine[0]] == first


def test_mark_read_up_to_touches_only_my_own(cast, inboxes):
    me, other = cast.pros[0], cast.pros[1]
    mine, theirs = inboxes[uid(me)], inboxes[uid(other)]
    up_to = mine[2]
    r = me.post("/api/v1/notifications/read", json={"up_to": up_to})
    assert r.status_code == 200
    assert r.get_json() == {"marked": 3, "unread_count": 1}
    marked = read_at_of(mine)
    assert [marked[i] is not None for i in mine] == [True, True, True, False]
    assert all(v is None for v in read_at_of(theirs).values())  # even ids below up_to
    assert any(t < up_to for t in theirs)


def test_every_id_is_a_resume_point_and_a_bound_for_marking_read(cast, inboxes):
    """Reads by id find the seq it stands after (services._seq_at): through the row itself
    when the id is mine, by the largest of my seqs below it otherwise. For every id (mine,
    someone else's between mine, before my first, past my last) the list holds exactly mine
    above it, "nothing after" answers the seq it stands after, and marking read up to it marks
    exactly mine at or below it."""
    me = cast.pros[0]
    mine = inboxes[uid(me)]
    every = range(max(max(ids) for ids in inboxes.values()) + 3)
    assert any(i not in mine for i in every[mine[0]:mine[-1]])  # ids of others between mine
    for after in every:
        above = [i for i in mine if i > after]
        body = notifications(me, after=after)
        assert [i["id"] for i in body["items"]] == above, after
        assert body["last_seq"] == (4 if above else len(mine)), after
        assert [i["id"] for i in notifications(me, after=after, after_seq=2)["items"]] == [
            i for i in mine[2:] if i > after], after
    for up_to in every[1:]:
        db.session.execute(update(Notification).values(read_at=None))
        db.session.execute(delete(NotificationReads))  # what mark_read counts, reset with it
        db.session.commit()
        r = me.post("/api/v1/notifications/read", json={"up_to": up_to})
        at_or_below = [i for i in mine if i <= up_to]
        assert r.get_json() == {"marked": len(at_or_below), "unread_count": 4 - len(at_or_below)}
        assert [i for i, at in read_at_of(mine).items() if at is not None] == at_or_below, up_to


def _steps(read: Callable[[], Any]) -> int:
    """SQLite's VM steps (in tens) that ``read`` runs: the same on any machine."""
    counted = [0]
    driver = db.session.connection().connection.driver_connection

    def tick() -> int:
        counted[0] += 1
        return 0

    driver.set_progress_handler(tick, 10)
    try:
        read()
    finally:
        driver.set_progress_handler(None, 10)
    return counted[0]


def test_a_read_by_id_costs_what_comes_after_it_not_the_whole_history(app, backend,
                                                                        make_user):
    """There is no (user_id, id) index (a fan-out would pay an entry per recipient for it):
    reads by id go through the seq index. Resuming after an id near the end, one's own or
    someone else's, costs about the same for a recipient with 2,000 notifications as for one
    with 20 (counted in SQLite's VM steps, which do not depend on the machine's speed)."""
    if backend != "sqlite":
        pytest.skip("counts SQLite's VM steps")
    from marketplace.notifications import services

    long, short, other = (make_user().user.id for _ in range(3))
    rows, seqs, next_id = [], {long: 0, short: 0, other: 0}, 1
    for i in range(2000):
        for user_id in (long, other) if i < 1980 else (long, short, other):
            seqs[user_id] += 1
            rows.append({"id": next_id, "user_id": user_id, "seq": seqs[user_id],
                         "type": "need.matched", "data": {}})
            next_id += 1
    rows += [{"id": next_id + i, "user_id": short, "seq": seqs[short] + i + 1,
              "type": "need.matched", "data": {}} for i in range(20 - seqs[short])]
    db.session.execute(insert(Notification.__table__), rows)
    db.session.commit()
    ids = {u: [r["id"] for r in rows if r["user_id"] == u] for u in (long, short)}
    assert len(ids[long]) == 2000 and len(ids[short]) == 20

    for user_id in (long, short):  # near the end: one's own id, then someone else's
        assert [n.id for n in services.after(user_id, ids[user_id][-6], 10)] == ids[user_id][-5:]
    cost = {user_id: (_steps(lambda u=user_id: services.after(u, ids[u][-6], 10)),
                      _steps(lambda u=user_id: services.after(u, ids[u][-6] + 1, 10)),
                      _steps(lambda u=user_id: services.position(u, ids[u][-1] + 5, 0)))
            for user_id in (long, short)}
    for by_long, by_short in zip(cost[long], cost[short], strict=True):
        assert by_long < 2 * by_short + 20, cost


def test_the_unread_count_costs_the_same_after_thousands_of_notifications(app, backend,
                                                                          make_user):
    """Every signed-in page and every GET /api/v1/notifications asks the unread count: it is
    the newest seq less how many were marked read (NotificationReads), not a count of the
    unread rows, so a provider sent 2,000 needs pays for it what one sent 20 pays. Counting
    the rows took 0.1 ms per 1,000 notifications here; this fails on that code."""
    if backend != "sqlite":
        pytest.skip("counts SQLite's VM steps")
    from marketplace.notifications import services

    long, short = make_user().user, make_user().user
    rows, next_id = [], db.session.scalar(select(func.coalesce(func.max(Notification.id), 0))) + 1
    for user, count in ((long, 2000), (short, 20)):
        rows += [{"id": next_id + i, "user_id": user.id, "seq": i + 1, "type": "need.matched",
                  "data": {}} for i in range(count)]
        next_id += count
    db.session.execute(insert(Notification.__table__), rows)
    db.session.commit()
    for user, count in ((long, 2000), (short, 20)):
        mine = [r["id"] for r in rows if r["user_id"] == user.id]
        services.mark_read(user, mine[:5], None)
        assert services.unread_count(user) == count - 5
        assert services.resume_point(user.id) == (mine[-1], count - 5, count)
    for read in (lambda u: services.unread_count(u), lambda u: services.resume_point(u.id)):
        by_long, by_short = _steps(lambda r=read: r(long)), _steps(lambda r=read: r(short))
        assert by_long < 2 * by_short + 20, (by_long, by_short)


MARKS = st.lists(st.one_of(
    st.tuples(st.just("notify"), st.integers(1, 2), st.booleans()),
    st.tuples(st.just("ids"), st.lists(st.integers(0, 40), max_size=4), st.booleans()),
    st.tuples(st.just("up_to"), st.integers(0, 40), st.booleans()),
), min_size=1, max_size=10)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=MARKS)
def test_the_unread_count_is_what_counting_the_unread_rows_gives(app, make_user, steps):
    """Whatever mix of new notifications and marks (by ids, some someone else's, some twice;
    up to any id, one's own, someone else's or none at all), the kept count answers what a
    count of the unread rows does, for both people, and the resume point with it."""
    from marketplace.notifications import services

    me, other = make_user().user, make_user().user

    def truth(user: User) -> tuple[int, int, int]:
        newest = db.session.execute(
            select(Notification.id, Notification.seq).where(Notification.user_id == user.id)
            .order_by(Notification.seq.desc()).limit(1)).first()
        unread = db.session.scalar(select(func.count()).where(
            Notification.user_id == user.id, Notification.read_at.is_(None)))
        return (newest[0], unread, newest[1]) if newest else (0, unread, 0)

    for kind, value, mine in steps:
        who = me if mine else other
        if kind == "notify":
            outbox.notify([who.id] if value == 1 else [me.id, other.id], "message.received",
                          message_data("hi"))
            db.session.commit()
            continue
        ids = sorted(db.session.scalars(select(Notification.id)))
        if kind == "ids":
            chosen = [ids[i % len(ids)] for i in value] if ids else value
            services.mark_read(who, chosen or [10**6], None)  # (an id nobody has)
        else:
            services.mark_read(who, None, ids[value % len(ids)] + value % 2 if ids else value)
        db.session.expire_all()
        for user in (me, other):
            assert services.unread_count(user) == truth(user)[1]
            assert services.resume_point(user.id) == truth(user)


def test_racing_marks_of_the_same_rows_count_them_once(cast, inboxes, app, backend):
    """Real concurrency (PostgreSQL): while A's mark is inside its commit (its rows marked and
    counted, not yet committed), B marks the same rows from another thread. B waits for A's
    row locks, then finds them read and marks (and counts) nothing, so the kept count is not
    inflated and the bell still says what the rows say."""
    if backend != "postgresql":
        pytest.skip("needs concurrent writers and row locks (PostgreSQL)")
    from marketplace.notifications import services

    me = db.session.get(User, uid(cast.pros[0]))
    newest, me_id = inboxes[me.id][-1], me.id
    with b_inside_a_commit(app, lambda: services.mark_read(db.session.get(User, me_id), None,
                                                           newest)) as race:
        a_marked = services.mark_read(me, None, newest)
    assert race.observed == ["B waited for A"]
    assert (a_marked, race.answers) == (4, [0])
    db.session.expire_all()
    assert db.session.get(NotificationReads, me_id).read_count == 4
    assert services.unread_count(me) == 0
    assert notifications(cast.pros[0])["unread_count"] == 0


def test_someone_elses_ids_alone_mark_nothing(cast, inboxes):
    r = cast.pros[0].post("/api/v1/notifications/read", json={"ids": inboxes[uid(cast.pros[1])]})
    assert r.get_json() == {"marked": 0, "unread_count": 4}
    assert all(v is None for v in read_at_of(inboxes[uid(cast.pros[1])]).values())


@pytest.mark.parametrize("body", [
    {}, {"ids": [1], "up_to": 1}, {"ids": []}, {"ids": [0]}, {"ids": ["one"]},
    {"up_to": 0}, {"up_to": "all"}, {"ids": None}, {"ids": [1], "extra": True},
])
def test_mark_read_needs_exactly_one_of_ids_or_up_to(cast, inboxes, body):
    me = cast.pros[0]
    r = me.post("/api/v1/notifications/read", json=body)
    assert r.status_code == 422
    assert error_of(r)["fields"]
    assert all(v is None for v in read_at_of(inboxes[uid(me)]).values())


def test_mark_read_both_and_neither_name_the_fields(cast, inboxes):
    me = cast.pros[0]
    for body in ({}, {"ids": [inboxes[uid(me)][0]], "up_to": inboxes[uid(me)][-1]}):
        r = me.post("/api/v1/notifications/read", json=body)
        assert r.status_code == 422
        assert "ids" in error_of(r)["fields"]


BIG = 2**63  # one past the largest BIGINT


@pytest.mark.parametrize("after", [BIG, 10**20])
def test_out_of_range_after_is_422_not_500(cast, after):
    r = cast.pros[0].get("/api/v1/notifications", query_string={"after": after})
    assert r.status_code == 422
    assert "after" in error_of(r)["fields"]


@pytest.mark.parametrize("body", [{"ids": [BIG]}, {"up_to": BIG}, {"ids": [1, 10**20]}])
def test_out_of_range_mark_read_values_are_422_not_500(cast, body):
    r = cast.pros[0].post("/api/v1/notifications/read", json=body)
    assert r.status_code == 422
    assert error_of(r)["fields"]


# --- the page shell tells its live connection where to resume --------------------------------


def resume_point(response: Any) -> tuple[int, int]:
    """``data-last-notification`` on <body>, and the bell's unread count."""
    page = dom(response)
    body, bell = page.find("body"), page.by_id("bell-count")
    assert body is not None and bell is not None, response.get_data(as_text=True)[:600]
    return int(body.attrs["data-last-notification"]), int(bell.text())


def test_every_page_carries_the_newest_notification_id_it_was_rendered_with(
        auth, make_user, make_provider, make_need):
    pro, other = make_provider(), make_provider()
    web = auth.sign_in(pro)
    assert resume_point(web.get("/needs")) == (0, 0)
    make_need(title="First")
    make_need(title="Second")
    newest = db.session.scalar(select(func.max(Notification.id))
                               .where(Notification.user_id == pro.user.id))
    outbox.notify([other.user.id], "message.received", message_data("not yours"))
    db.session.commit()
    for path in ("/needs", "/feed", "/jobs", "/needs/new"):
        assert resume_point(web.get(path)) == (newest, 2), path
    assert web.post("/notifications/read", data={"up_to": newest}).status_code == 302
    # marked read: the count drops, the resume point stays
    assert resume_point(web.get("/feed")) == (newest, 0)


# --- work stored with the notifications (outbox.on_store) ---------------------------------


def test_a_store_hook_sees_the_batch_inside_the_transaction_and_rolls_back_with_it(cast, make_need):
    seen: list[tuple[int, dict[str, Any], int]] = []

    def hook(session: Any, batch: list[tuple[int, Any]]) -> None:
        # the rows are already in the transaction when the hook runs
        for uid_, event_ in batch:
            stored_ = session.execute(select(func.count()).select_from(Notification)
                                      .where(Notification.id == event_["id"])).scalar_one()
            seen.append((uid_, dict(event_), stored_))

    outbox.on_store(hook)
    outbox.on_store(hook)  # registering twice runs it once
    try:
        need = post(cast, make_need)
        assert sorted(u for u, _e, _n in seen) == sorted(uid(p) for p in cast.pros)
        assert all(n == 1 and e["type"] == "need.matched" and e["data"]["need"]["id"] == need.id
                   for _u, e, n in seen)

        seen.clear()
        since = last_id()
        outbox.notify([uid(cast.customer)], NotificationType.NEED_EXPIRED, {"need": {"id": 1}})
        db.session.flush()
        db.session.rollback()
        assert seen == [] and stored(since, "need.expired") == []
    finally:
        outbox._store_hooks.remove(hook)


def test_a_queue_hook_reads_before_the_ids_and_writes_after_them(cast, make_need):
    before: list[tuple[int, str, int]] = []
    after: list[tuple[int, int, int]] = []

    def hook(session: Any, queued: list[tuple[int, Any, dict[str, Any]]]) -> Any:
        # nothing of the batch is stored yet, and the counter has not moved
        rows = session.execute(select(func.count()).select_from(Notification)).scalar_one()
        before.extend((uid_, str(type_), rows) for uid_, type_, _data in queued)
        counter = session.execute(select(NotificationCounter.last_id)).scalar_one()

        def then(batch: list[tuple[int, Any]]) -> None:
            for uid_, event_ in batch:
                stored_ = session.execute(select(func.count()).select_from(Notification)
                                          .where(Notification.id == event_["id"])).scalar_one()
                after.append((uid_, stored_, event_["id"] - counter))
        return then

    outbox.on_queue(hook)
    outbox.on_queue(hook)  # registering twice runs it once
    try:
        rows_before = len(stored())
        post(cast, make_need)
        pros = sorted(uid(p) for p in cast.pros)
        assert sorted(before) == [(u, "need.matched", rows_before) for u in pros]
        # then the rows exist, with the ids the counter gave after the hook had read
        assert sorted(u for u, _n, _d in after) == pros
        assert all(n == 1 and 1 <= d <= len(pros) for _u, n, d in after)
    finally:
        outbox._queue_hooks.remove(hook)
