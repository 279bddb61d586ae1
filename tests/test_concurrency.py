"""Races settled by the database, on PostgreSQL (SQLite serialises every writer, so it cannot
show them): many acceptances of one need, acceptance against withdrawal, offers against a cap,
offers against an acceptance, and acceptances through the API.

Every racer runs in its own thread with its own app context, hence its own session and its
own database connection; a ``threading.Barrier`` releases them together. Where one particular
interleaving matters, engine events hold one thread at a chosen statement until the other has
run its own (events, never sleeps).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import error_of
from flask import Flask
from sqlalchemy import event, func, select

from marketplace import lifecycle
from marketplace.accounts.models import User
from marketplace.errors import Conflict, NotFound
from marketplace.extensions import db
from marketplace.needs.models import Need, NeedStatus
from marketplace.offers import services as offers
from marketplace.offers.models import Offer, OfferStatus

JOIN_TIMEOUT = 60
ROUNDS = 5


@pytest.fixture(autouse=True)
def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("races need a database with row locks and real concurrency (PostgreSQL)")


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def race(app: Flask, racers: list[Callable[[], Callable[[], Any]]]) -> list[Outcome]:
    """Run each racer in its own thread and app context. A racer prepares (loads what it
    needs) and returns the action; all actions start together at a barrier. Whatever the
    action returns or raises is the racer's outcome; nothing escapes a thread."""
    barrier = threading.Barrier(len(racers))
    outcomes = [Outcome() for _ in racers]

    def run(i: int) -> None:
        with app.app_context():
            try:
                action = racers[i]()
                barrier.wait(timeout=JOIN_TIMEOUT)
                outcomes[i].value = action()
            except BaseException as exc:  # noqa: BLE001  (reported to the test, not lost)
                outcomes[i].error = exc
            finally:
                db.session.remove()

    db.session.remove()  # the test's own session holds no connection or snapshot meanwhile
    threads = [threading.Thread(target=run, args=(i,), name=f"racer-{i}")
               for i in range(len(racers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a racer is stuck"
    return outcomes


def user(user_id: int) -> User:
    found = db.session.get(User, user_id)
    assert found is not None
    return found


def accepting(customer_id: int, offer_id: int,
              revision: int | None = None) -> Callable[[], Callable[[], Any]]:
    def prepare() -> Callable[[], Any]:
        customer = user(customer_id)
        return lambda: lifecycle.accept(customer, offer_id, revision).id
    return prepare


def revising(provider_user_id: int, offer_id: int,
             amount: int) -> Callable[[], Callable[[], Any]]:
    def prepare() -> Callable[[], Any]:
        provider = user(provider_user_id)
        price = {"amount": amount, "currency": "USD"}
        return lambda: offers.revise(provider, offer_id, {"price": price}).id
    return prepare


def withdrawing(provider_user_id: int, offer_id: int) -> Callable[[], Callable[[], Any]]:
    def prepare() -> Callable[[], Any]:
        provider = user(provider_user_id)
        return lambda: offers.withdraw(provider, offer_id).id
    return prepare


def cancelling(customer_id: int, need_id: int) -> Callable[[], Callable[[], Any]]:
    def prepare() -> Callable[[], Any]:
        customer = user(customer_id)
        return lambda: lifecycle.cancel(customer, need_id, "changed my mind").id
    return prepare


def expiring() -> Callable[[], Callable[[], Any]]:
    def prepare() -> Callable[[], Any]:
        return lambda: lifecycle.expire_due(datetime.now(UTC) + timedelta(days=365))
    return prepare


def making(provider_user_id: int, need_id: int) -> Callable[[], Callable[[], Any]]:
    def prepare() -> Callable[[], Any]:
        provider = user(provider_user_id)
        return lambda: offers.make(provider, need_id, {"message": "me too"}).id
    return prepare


def committed(need_id: int) -> tuple[Need, dict[int, OfferStatus]]:
    """The need and its offers' statuses as committed, read afresh."""
    db.session.remove()
    need = db.session.get(Need, need_id)
    assert need is not None
    rows = db.session.execute(select(Offer.id, Offer.status).where(Offer.need_id == need_id))
    statuses = {offer_id: status for offer_id, status in rows}
    return need, statuses


def unexpected(outcomes: list[Outcome]) -> list[BaseException]:
    return [o.error for o in outcomes if o.error is not None and not isinstance(o.error, Conflict)]


@pytest.fixture
def cast(make_user: Any, make_provider: Any) -> dict[str, Any]:
    """A customer and twelve providers who all serve catering around Austin."""
    return {"customer": make_user(), "providers": [make_provider() for _ in range(12)]}


# -- many acceptances of one need ------------------------------------------------------------


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_exactly_one_of_many_acceptances_wins(app: Flask, cast: dict[str, Any], make_need: Any,
                                              make_offer: Any, round_: int) -> None:
    customer = cast["customer"]
    need = make_need(customer)
    offer_ids = [make_offer(need, p, amount=30000 + i).id for i, p in enumerate(cast["providers"])]
    need_id = need.id

    outcomes = race(app, [accepting(customer.user.id, oid) for oid in offer_ids])

    assert unexpected(outcomes) == []
    winners = [oid for oid, o in zip(offer_ids, outcomes, strict=True) if o.ok]
    assert len(winners) == 1, f"{len(winners)} acceptances won: {winners}"
    winner = winners[0]
    assert outcomes[offer_ids.index(winner)].value == winner
    assert sum(not o.ok for o in outcomes) == len(offer_ids) - 1

    need, statuses = committed(need_id)
    assert need.status == NeedStatus.ASSIGNED
    assert need.accepted_offer_id == winner
    assert need.assigned_at is not None
    assert statuses[winner] == OfferStatus.ACCEPTED
    assert {s for oid, s in statuses.items() if oid != winner} == {OfferStatus.DECLINED}
    assert need.offer_count == len(offer_ids)


def test_losers_are_told_why(app: Flask, cast: dict[str, Any], make_need: Any,
                             make_offer: Any) -> None:
    customer = cast["customer"]
    need = make_need(customer)
    offer_ids = [make_offer(need, p).id for p in cast["providers"][:6]]
    outcomes = race(app, [accepting(customer.user.id, oid) for oid in offer_ids])
    losers = [o.error for o in outcomes if not o.ok]
    assert len(losers) == 5
    for error in losers:
        assert isinstance(error, Conflict)
        assert error.status == 409 and error.message


# -- acceptance against withdrawal, cancellation and expiry of the same need ---------------------


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_accept_races_withdraw_of_the_same_offer(app: Flask, cast: dict[str, Any],
                                                 make_need: Any, make_offer: Any,
                                                 round_: int) -> None:
    customer, pro, other = cast["customer"], cast["providers"][0], cast["providers"][1]
    need = make_need(customer)
    offer_id = make_offer(need, pro).id
    other_id = make_offer(need, other).id
    need_id = need.id

    accept, withdraw = race(app, [accepting(customer.user.id, offer_id),
                                  withdrawing(pro.user.id, offer_id)])

    assert accept.ok != withdraw.ok, f"accept: {accept.error!r}, withdraw: {withdraw.error!r}"
    loser = withdraw if accept.ok else accept
    assert isinstance(loser.error, Conflict), repr(loser.error)

    need, statuses = committed(need_id)
    if accept.ok:
        assert need.status == NeedStatus.ASSIGNED and need.accepted_offer_id == offer_id
        assert statuses == {offer_id: OfferStatus.ACCEPTED, other_id: OfferStatus.DECLINED}
        assert need.offer_count == 2
    else:
        assert need.status == NeedStatus.OPEN and need.accepted_offer_id is None
        assert statuses == {offer_id: OfferStatus.WITHDRAWN, other_id: OfferStatus.PENDING}
        assert need.offer_count == 1


# -- acceptance against a revision of the same offer ---------------------------------------------


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_accept_of_the_revision_seen_races_a_revision(app: Flask, cast: dict[str, Any],
                                                      make_need: Any, make_offer: Any,
                                                      round_: int) -> None:
    """The customer accepts revision 1 while the provider raises the price: either the
    acceptance lands first (revision 1, old price, and the revision is refused) or the
    revision does (and the acceptance is refused). Never revision 2 accepted."""
    customer, pro = cast["customer"], cast["providers"][0]
    need = make_need(customer)
    offer_id = make_offer(need, pro, amount=30000).id
    need_id = need.id

    accept, revise = race(app, [accepting(customer.user.id, offer_id, revision=1),
                                revising(pro.user.id, offer_id, 90000)])

    assert accept.ok != revise.ok, f"accept: {accept.error!r}, revise: {revise.error!r}"
    assert unexpected([accept, revise]) == []
    need, statuses = committed(need_id)
    offer = db.session.get(Offer, offer_id)
    if accept.ok:
        assert need.status == NeedStatus.ASSIGNED and statuses[offer_id] == OfferStatus.ACCEPTED
        assert (offer.revision, offer.price_amount) == (1, 30000)
    else:
        assert "revised this offer" in str(accept.error)
        assert need.status == NeedStatus.OPEN and statuses[offer_id] == OfferStatus.PENDING
        assert (offer.revision, offer.price_amount) == (2, 90000)


def test_a_revision_committed_after_the_customer_loaded_the_offer_is_refused(
        app: Flask, cast: dict[str, Any], make_need: Any, make_offer: Any) -> None:
    """The interleaving the check before the UPDATE cannot see: the acceptance reads the
    offer (revision 1, still committed) while the revision holds the need row, then the
    revision commits; the acceptance's conditional UPDATE must refuse it."""
    customer, pro = cast["customer"], cast["providers"][0]
    need = make_need(customer)
    offer_id = make_offer(need, pro, amount=30000).id
    need_id = need.id

    with interleaved("UPDATE offers SET", "SELECT offers.id") as gate:
        revise, accept = race(app, [revising(pro.user.id, offer_id, 90000),
                                    gated_by(gate, accepting(customer.user.id, offer_id, 1))])

    assert revise.ok, repr(revise.error)
    assert isinstance(accept.error, Conflict) and "revised this offer" in str(accept.error)
    need, statuses = committed(need_id)
    assert need.status == NeedStatus.OPEN and statuses[offer_id] == OfferStatus.PENDING
    assert db.session.get(Offer, offer_id).price_amount == 90000


@contextmanager
def interleaved(first: str, then: str, *, timeout: float = 5.0) -> Iterator[threading.Event]:
    """Hold thread ``racer-0`` right after it ran a statement starting with ``first`` until
    thread ``racer-1`` has run one starting with ``then``. Yields the event ``racer-1`` waits
    for before it starts (set once ``racer-0`` holds what ``first`` locked)."""
    holding = threading.Event()
    done = threading.Event()

    def hold(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        me = threading.current_thread().name
        if me == "racer-0" and statement.startswith(first) and not holding.is_set():
            holding.set()
            done.wait(timeout)  # if racer-1 cannot get there (blocked on us), go on anyway
        elif me == "racer-1" and statement.startswith(then):
            done.set()

    event.listen(db.engine, "after_cursor_execute", hold)
    try:
        yield holding
    finally:
        event.remove(db.engine, "after_cursor_execute", hold)


def gated_by(gate: threading.Event, prepare: Callable[[], Callable[[], Any]]
          ) -> Callable[[], Callable[[], Any]]:
    def prepared() -> Callable[[], Any]:
        action = prepare()

        def gated() -> Any:
            assert gate.wait(JOIN_TIMEOUT)
            return action()
        return gated
    return prepared


@pytest.mark.parametrize("change", ["accept", "cancel", "expire"])
def test_withdraw_racing_a_status_change_gets_a_conflict_not_a_deadlock(
        app: Flask, cast: dict[str, Any], make_need: Any, make_offer: Any, change: str) -> None:
    """The status change has moved the need (need row locked, not committed) when the
    withdrawal updates the offer: the interleaving the free-running race above only hits now
    and then."""
    customer, pro = cast["customer"], cast["providers"][0]
    need = make_need(customer)
    offer_id = make_offer(need, pro).id
    need_id = need.id
    first = {"accept": accepting(customer.user.id, offer_id),
             "cancel": cancelling(customer.user.id, need_id),
             "expire": expiring()}[change]

    with interleaved("UPDATE needs SET status", "UPDATE offers SET status") as gate:
        changed, withdraw = race(app, [first, gated_by(gate, withdrawing(pro.user.id, offer_id))])

    assert changed.ok, repr(changed.error)
    assert isinstance(withdraw.error, Conflict), repr(withdraw.error)
    need, statuses = committed(need_id)
    assert need.status != NeedStatus.OPEN
    assert statuses[offer_id] != OfferStatus.WITHDRAWN


@pytest.mark.parametrize("round_", range(3))
def test_accept_races_cancel(app: Flask, cast: dict[str, Any], make_need: Any, make_offer: Any,
                             round_: int) -> None:
    customer = cast["customer"]
    need = make_need(customer)
    offer_ids = [make_offer(need, p).id for p in cast["providers"][:3]]
    need_id = need.id

    accept, cancel = race(app, [accepting(customer.user.id, offer_ids[0]),
                                cancelling(customer.user.id, need_id)])

    assert accept.ok != cancel.ok
    assert unexpected([accept, cancel]) == []
    need, statuses = committed(need_id)
    if accept.ok:
        assert need.status == NeedStatus.ASSIGNED and need.accepted_offer_id == offer_ids[0]
        assert statuses[offer_ids[0]] == OfferStatus.ACCEPTED
    else:
        assert need.status == NeedStatus.CANCELLED and need.accepted_offer_id is None
        assert statuses[offer_ids[0]] == OfferStatus.DECLINED
    assert {statuses[i] for i in offer_ids[1:]} == {OfferStatus.DECLINED}


# -- offers against a cap, and against an acceptance ---------------------------------------------


@pytest.mark.parametrize("round_", range(3))
def test_offers_racing_a_cap_stop_at_the_cap(app: Flask, cast: dict[str, Any], make_need: Any,
                                             round_: int) -> None:
    need = make_need(cast["customer"], max_offers=3)
    need_id = need.id
    pros = cast["providers"][:10]

    outcomes = race(app, [making(p.user.id, need_id) for p in pros])

    assert unexpected(outcomes) == []
    assert sum(o.ok for o in outcomes) == 3
    need, statuses = committed(need_id)
    assert need.offer_count == 3
    assert sorted(statuses) == sorted(o.value for o in outcomes if o.ok)
    assert set(statuses.values()) == {OfferStatus.PENDING}


def test_no_offer_lands_on_a_need_being_accepted(app: Flask, cast: dict[str, Any],
                                                 make_need: Any, make_offer: Any) -> None:
    customer = cast["customer"]
    need = make_need(customer)
    first = make_offer(need, cast["providers"][0]).id
    need_id = need.id
    late = cast["providers"][1:9]

    outcomes = race(app, [accepting(customer.user.id, first),
                          *(making(p.user.id, need_id) for p in late)])

    assert unexpected(outcomes) == []
    assert outcomes[0].ok
    need, statuses = committed(need_id)
    assert need.status == NeedStatus.ASSIGNED and need.accepted_offer_id == first
    assert statuses[first] == OfferStatus.ACCEPTED
    assert OfferStatus.PENDING not in statuses.values(), "an offer is pending on an assigned need"
    made = {o.value for o in outcomes[1:] if o.ok}
    assert set(statuses) == {first} | made
    assert need.offer_count == len(statuses)


# -- through the API -----------------------------------------------------------------------------


def test_api_acceptances_race_one_200_the_rest_409(app: Flask, cast: dict[str, Any],
                                                     make_need: Any, make_offer: Any) -> None:
    customer = cast["customer"]
    need = make_need(customer)
    offer_ids = [make_offer(need, p).id for p in cast["providers"][:8]]
    need_id = need.id
    headers = {"Authorization": f"Bearer {customer.token}"}

    def posting(offer_id: int) -> Callable[[], Callable[[], Any]]:
        def prepare() -> Callable[[], Any]:
            client = app.test_client()
            return lambda: client.post(f"/api/v1/offers/{offer_id}/accept", headers=headers)
        return prepare

    outcomes = race(app, [posting(oid) for oid in offer_ids])
    assert [o.error for o in outcomes if not o.ok] == []
    responses = [o.value for o in outcomes]

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (len(offer_ids) - 1), codes
    (won,) = [r for r in responses if r.status_code == 200]
    body = won.get_json()
    assert body["status"] == "accepted"
    for r in responses:
        if r.status_code == 409:
            error = error_of(r)
            assert error["code"] == "conflict"
    need, statuses = committed(need_id)
    assert need.status == NeedStatus.ASSIGNED and need.accepted_offer_id == body["id"]
    assert [s for s in statuses.values() if s == OfferStatus.ACCEPTED] == [OfferStatus.ACCEPTED]
    with db.engine.connect() as conn:
        accepted = conn.scalar(select(func.count()).select_from(Offer)
                               .where(Offer.status == OfferStatus.ACCEPTED))
    assert accepted == 1


def blocking(customer_id: int, handle: str) -> Callable[[], Callable[[], Any]]:
    def prepare() -> Callable[[], Any]:
        customer = user(customer_id)
        return lambda: lifecycle.block(customer, handle).id
    return prepare


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_block_racing_an_accept_or_a_new_offer_leaves_no_open_dealing(
        app: Flask, cast: dict[str, Any], make_need: Any, make_offer: Any, round_: int) -> None:
    """Whichever wins, the blocked provider ends with no pending offer and no assigned job of
    the customer's, and every offer count matches the offers that hold a slot."""
    customer, (pest, *others) = cast["customer"], cast["providers"]
    to_accept = make_need(customer)
    offer = make_offer(to_accept, pest)
    fresh = make_need(customer)
    make_offer(fresh, others[0])
    need_ids, pest_id = (to_accept.id, fresh.id), pest.provider.id
    outcomes = race(app, [blocking(customer.user.id, pest.provider.handle),
                          accepting(customer.user.id, offer.id),
                          making(pest.user.id, need_ids[1])])
    assert outcomes[0].ok, outcomes[0].error
    assert not unexpected(outcomes[1:2])
    # The new offer commits before the block (which then declines it) or waits for the block
    # and no longer sees the need.
    assert outcomes[2].ok or isinstance(outcomes[2].error, NotFound), outcomes[2].error
    made = db.session.scalars(select(Offer.status).where(Offer.need_id == need_ids[1],
                                                         Offer.provider_id == pest_id)).all()
    assert made == ([OfferStatus.DECLINED] if outcomes[2].ok else [])
    for need_id in need_ids:
        need, statuses = committed(need_id)
        theirs = db.session.scalars(select(Offer).where(
            Offer.need_id == need_id, Offer.provider_id == pest_id)).all()
        assert all(o.status in (OfferStatus.DECLINED, OfferStatus.ACCEPTED) for o in theirs)
        if any(o.status == OfferStatus.ACCEPTED for o in theirs):
            assert need.status == NeedStatus.CANCELLED  # hired, then blocked: job cancelled
        live = sum(s in (OfferStatus.PENDING, OfferStatus.ACCEPTED) for s in statuses.values())
        assert need.offer_count == live, (need.offer_count, statuses)
    # The acceptance wins (and the block then cancels the job) or finds the offer declined.
    need, statuses = committed(need_ids[0])
    assert (statuses[offer.id], need.status) == (
        (OfferStatus.ACCEPTED, NeedStatus.CANCELLED) if outcomes[1].ok
        else (OfferStatus.DECLINED, NeedStatus.OPEN))


def test_two_revisions_with_the_same_etag_one_200_one_412(app: Flask, cast: dict[str, Any],
                                                          make_need: Any,
                                                          make_offer: Any) -> None:
    """Both requests pass the If-Match check they make before taking any lock (racer-1 reads
    the offer while racer-0 holds the need's lock); the check made again under the offer's row
    lock lets only the first through."""
    provider = cast["providers"][0]
    offer_id = make_offer(make_need(cast["customer"]), provider).id
    headers = {"Authorization": f"Bearer {provider.token}"}
    read = app.test_client().get(f"/api/v1/offers/{offer_id}", headers=headers)
    etag = read.headers["ETag"]  # (the read also touched the token, so no racer writes it)

    def revising(amount: int) -> Callable[[], Callable[[], Any]]:
        def prepare() -> Callable[[], Any]:
            client = app.test_client()
            return lambda: client.patch(f"/api/v1/offers/{offer_id}", json={
                "price": {"amount": amount, "currency": "USD"}},
                headers={**headers, "If-Match": etag})
        return prepare

    with interleaved("UPDATE needs", "SELECT offers") as holding:
        outcomes = race(app, [revising(41000), gated_by(holding, revising(42000))])
    assert [o.error for o in outcomes if not o.ok] == []
    first, second = (o.value for o in outcomes)
    assert (first.status_code, second.status_code) == (200, 412), (first.get_json(),
                                                                   second.get_json())
    assert error_of(second)["code"] == "precondition_failed"
    assert "If-Match" in error_of(second)["fields"]
    with db.engine.connect() as conn:
        revision, amount = conn.execute(select(Offer.revision, Offer.price_amount)
                                        .where(Offer.id == offer_id)).one()
    assert (revision, amount) == (2, 41000)
