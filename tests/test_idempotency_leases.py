"""A reserved Idempotency-Key is a lease: a retry while it holds is told to wait (409 with
Retry-After); after it has expired with no response stored, one retry takes the key over (the
database lets exactly one of several racers win) and runs the request. The view's work and its
stored response commit together, so nothing is durable until both are (api/idempotency.py).

The same, with real server processes killed at each point of a request:
tests/test_faults_idempotency.py."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from conftest import error_of, need_data
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from marketplace.accounts import services as accounts
from marketplace.accounts.models import User
from marketplace.api import idempotency
from marketplace.api.idempotency import HEADER, IdempotencyKey, Lease, one_transaction, stored_key
from marketplace.db_types import utcnow
from marketplace.errors import Conflict
from marketplace.extensions import db
from marketplace.needs.models import Need

REPLAYED = "Idempotent-Replayed"
JOIN_TIMEOUT = 60


def committed(stmt: Any) -> Any:
    """``stmt``'s answer as committed (a connection of its own)."""
    with db.engine.connect() as conn:
        return conn.scalar(stmt)


def needs_of(person: Any) -> int:
    """The committed needs of ``person`` (or of the user id)."""
    user_id = person if isinstance(person, int) else person.user.id
    return committed(select(func.count()).select_from(Need)
                     .where(Need.customer_id == user_id)) or 0


def row_of(key: str) -> Any:
    table = IdempotencyKey.__table__
    with db.engine.connect() as conn:
        return conn.execute(select(table).where(table.c.key == stored_key(key))).mappings().one()


def set_row(key: str, **values: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(IdempotencyKey).where(IdempotencyKey.key == stored_key(key))
                     .values(**values))


def with_key(key: str) -> dict[str, Any]:
    return {"headers": {HEADER: key}}


def died_holding(customer: Any, key: str, *, expired: bool, attempt: int = 1) -> None:
    """The state a process leaves when it died after reserving ``key`` (its lease expired or
    not): made by a request that succeeded, then its response and work undone."""
    r = customer.post("/api/v1/needs", json=need_data(), **with_key(key))
    assert r.status_code == 201
    with db.engine.begin() as conn:
        conn.execute(Need.__table__.delete().where(Need.id == r.get_json()["id"]))
    lease = utcnow() + (timedelta(seconds=-1) if expired else timedelta(seconds=20))
    set_row(key, status_code=None, response_body=None, lease_expires_at=lease, attempt=attempt)


# --- the lease --------------------------------------------------------------------------------


def test_a_reservation_is_a_lease_of_the_configured_length(app: Flask, make_user: Any) -> None:
    customer = make_user()
    before = utcnow()
    assert customer.post("/api/v1/needs", json=need_data(), **with_key("l")).status_code == 201
    row = row_of("l")
    lease = timedelta(seconds=app.config["IDEMPOTENCY_LEASE_SECONDS"])
    assert before + lease <= row["lease_expires_at"] <= utcnow() + lease
    assert row["attempt"] == 1 and row["status_code"] == 201


def test_a_retry_while_the_lease_holds_is_409_with_retry_after(app: Flask,
                                                               make_user: Any) -> None:
    customer = make_user()
    died_holding(customer, "held", expired=False)
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("held"))
    assert r.status_code == 409
    assert "still being processed" in error_of(r)["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 20
    assert needs_of(customer) == 0
    assert row_of("held")["attempt"] == 1  # not taken over


def test_after_the_lease_a_retry_takes_the_key_over_and_runs_once(make_user: Any) -> None:
    customer = make_user()
    died_holding(customer, "dead", expired=True)
    assert needs_of(customer) == 0
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("dead"))
    assert r.status_code == 201, r.get_json()
    assert REPLAYED not in r.headers
    assert needs_of(customer) == 1
    row = row_of("dead")
    assert row["attempt"] == 2 and row["status_code"] == 201
    again = customer.post("/api/v1/needs", json=need_data(), **with_key("dead"))
    assert again.headers[REPLAYED] == "true" and again.get_json() == r.get_json()
    assert needs_of(customer) == 1


def test_a_row_reserved_before_leases_existed_is_free(make_user: Any) -> None:
    customer = make_user()
    died_holding(customer, "legacy", expired=True)
    set_row("legacy", lease_expires_at=None)
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("legacy"))
    assert r.status_code == 201 and REPLAYED not in r.headers
    assert needs_of(customer) == 1


def test_an_expired_lease_still_refuses_a_different_body(make_user: Any) -> None:
    customer = make_user()
    died_holding(customer, "other", expired=True)
    r = customer.post("/api/v1/needs", json=need_data(title="Other"), **with_key("other"))
    assert r.status_code == 422 and HEADER in error_of(r)["fields"]
    assert needs_of(customer) == 0


def test_a_failed_takeover_is_forgotten_like_any_failure(make_user: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from marketplace.api import needs as needs_api

    customer = make_user()
    died_holding(customer, "bad", expired=True)
    create = needs_api.services.create

    def refused(*args: Any) -> Any:
        raise Conflict("not now")

    monkeypatch.setattr(needs_api.services, "create", refused)
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("bad"))
    assert r.status_code == 409 and error_of(r)["message"] == "not now"
    table = IdempotencyKey.__table__
    assert committed(select(func.count()).select_from(table)) == 0
    monkeypatch.setattr(needs_api.services, "create", create)
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("bad"))
    assert r.status_code == 201 and REPLAYED not in r.headers
    assert needs_of(customer) == 1


# --- the view's work and the response commit together ------------------------------------------


class Points:
    """Each fault point a request reaches, with what is committed there: the customer's needs
    and the key's stored status (read through a connection of their own)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, Any]] = []
        self.customer_id: int | None = None
        self.key = ""

    def __call__(self, point: str) -> None:
        needs = committed(select(func.count()).select_from(Need)
                          .where(Need.customer_id == self.customer_id)) or 0
        table = IdempotencyKey.__table__
        status = committed(select(table.c.status_code)
                           .where(table.c.key == stored_key(self.key)))
        self.seen.append((point, needs, status))


def test_nothing_is_durable_until_the_work_and_the_response_commit_together(
        make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    customer = make_user()
    points = Points()
    points.customer_id, points.key = customer.user.id, "atomic"
    monkeypatch.setattr(idempotency, "fault", points)
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("atomic"))
    assert r.status_code == 201
    assert points.seen == [
        ("idempotency.before_reserve", 0, None),
        ("idempotency.after_reserve", 0, None),  # reserved: the row exists, nothing stored
        ("idempotency.after_work", 0, None),  # the service's commit: not durable yet
        ("idempotency.after_store", 1, 201),  # the need and its response, together
    ]
    assert [p for p, _, _ in points.seen] == list(idempotency.FAULT_POINTS)


def test_a_failure_after_the_views_commit_undoes_its_work_and_frees_the_key(
        make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    customer = make_user()
    real_store = idempotency._store

    def broken(*args: Any) -> None:
        raise RuntimeError("the response could not be stored")

    monkeypatch.setattr(idempotency, "_store", broken)
    with pytest.raises(RuntimeError):
        customer.post("/api/v1/needs", json=need_data(), **with_key("undo"))
    assert needs_of(customer) == 0
    table = IdempotencyKey.__table__
    assert committed(select(func.count()).select_from(table)) == 0
    monkeypatch.setattr(idempotency, "_store", real_store)
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("undo"))
    assert r.status_code == 201 and REPLAYED not in r.headers
    assert needs_of(customer) == 1


def test_inside_one_transaction_commits_are_not_durable_until_it_ends(app: Flask) -> None:
    """Sign-up rolls back and goes on reading when a racing sign-up took the address: a
    rollback inside abandons the block's work so far, and the block goes on."""
    emails = ("one@example.com", "two@example.com")
    in_db = select(func.count()).select_from(User).where(User.email.in_(emails))
    with one_transaction():
        accounts.register(emails[0], "a long password", "One")  # commits
        assert committed(in_db) == 0
        db.session.add(User(email=emails[0], name="Again", password_hash="x"))
        with pytest.raises(IntegrityError):  # refused by the unique email
            db.session.commit()
        db.session.rollback()
        accounts.register(emails[1], "a long password", "Two")
        assert committed(in_db) == 0
    assert committed(select(User.name).where(User.email == emails[1])) == "Two"
    assert committed(in_db) == 1
    with pytest.raises(RuntimeError), one_transaction():
        accounts.register("three@example.com", "a long password", "Three")
        raise RuntimeError("then the request failed")
    assert committed(select(func.count()).select_from(User)
                     .where(User.email == "three@example.com")) == 0


# --- races, settled by the database (PostgreSQL) ---------------------------------------------


def race(app: Flask, actions: list[Any]) -> list[Any]:
    """Each action in its own thread and app context, released together; what each returned
    (or raised)."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(i: int) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=JOIN_TIMEOUT)
                results[i] = actions[i]()
            except BaseException as exc:  # noqa: BLE001  (reported to the test)
                results[i] = exc
            finally:
                db.session.remove()

    db.session.remove()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a racer is stuck"
    return results


def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("races need a database with real concurrency (PostgreSQL)")


@pytest.mark.parametrize("expired_lease", [False, True], ids=["new-key", "expired-lease"])
def test_racing_requests_with_one_key_run_it_once(app: Flask, backend: str, make_user: Any,
                                                 expired_lease: bool) -> None:
    postgresql_only(backend)
    customer = make_user()
    if expired_lease:
        died_holding(customer, "race", expired=True)
    headers = {"Authorization": f"Bearer {customer.token}", HEADER: "race"}
    customer_id = customer.user.id

    def posting() -> Any:
        return app.test_client().post("/api/v1/needs", json=need_data(), headers=headers)

    responses = race(app, [posting] * 8)
    assert not [r for r in responses if isinstance(r, BaseException)], responses
    ran = [r for r in responses if r.status_code == 201 and REPLAYED not in r.headers]
    assert len(ran) == 1, [(r.status_code, dict(r.headers)) for r in responses]
    for r in responses:
        if r.status_code == 201:
            assert r.get_json()["id"] == ran[0].get_json()["id"]
        else:
            assert r.status_code == 409 and "Retry-After" in r.headers
    assert needs_of(customer_id) == 1
    assert row_of("race")["attempt"] == (2 if expired_lease else 1)


def test_of_many_takeovers_of_one_expired_lease_exactly_one_wins(app: Flask, backend: str,
                                                                 make_user: Any) -> None:
    postgresql_only(backend)
    customer = make_user()
    died_holding(customer, "take", expired=True, attempt=3)
    digest = row_of("take")["request_hash"]
    scope = row_of("take")["scope"]
    now = utcnow()

    def taking() -> Any:
        with app.test_request_context():
            return idempotency._reserve(scope, "take", digest, now)

    results = race(app, [taking] * 10)
    leases = [r for r in results if isinstance(r, Lease)]
    assert len(leases) == 1, results
    assert leases[0].attempt == 4
    assert all(isinstance(r, Conflict) for r in results if r is not leases[0]), results
    assert row_of("take")["attempt"] == 4


def test_a_request_that_outlived_its_lease_undoes_its_work(app: Flask, backend: str,
                                                           make_user: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """It ran past its lease and a retry took the key over meanwhile: only the retry's work
    may stand, so this one's is rolled back (and it says so, 409)."""
    postgresql_only(backend)
    customer = make_user()

    def taken_over_meanwhile(point: str) -> None:
        if point == "idempotency.after_work":
            set_row("slow", attempt=IdempotencyKey.attempt + 1)  # a retry's takeover, committed

    monkeypatch.setattr(idempotency, "fault", taken_over_meanwhile)
    r = customer.post("/api/v1/needs", json=need_data(), **with_key("slow"))
    assert r.status_code == 409
    assert "lease" in error_of(r)["message"]
    assert needs_of(customer) == 0
    row = row_of("slow")
    assert row["attempt"] == 2 and row["status_code"] is None  # the retry's, untouched
