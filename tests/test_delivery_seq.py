"""Per-recipient seqs (docs/events.md, "Delivery without loss"): each recipient's notifications
count 1, 2, 3, ... with no holes, in commit order, however many commits race; the migration
numbers the notifications that existed before it the same way."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import flask_migrate
import pytest
from conftest import make_test_app, message_data, throwaway_pg_database
from flask import Flask
from sqlalchemy import MetaData, Table, event, insert, inspect, select, text

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.notifications import outbox
from marketplace.notifications.models import Notification
from marketplace.notifications.outbox import COPY_FROM_ROWS, notify, notify_each

BEFORE = "a1c5e9d3f7b2"  # the revision before seqs


def users(count: int) -> list[int]:
    db.session.execute(insert(User), [
        {"email": f"seq-{i}-{random.random()}@example.com", "name": "Seq", "password_hash": "x"}
        for i in range(count)])
    db.session.commit()
    return list(db.session.scalars(select(User.id).order_by(User.id.desc()).limit(count)))[::-1]


def seqs_by_user(user_ids: list[int]) -> dict[int, list[tuple[int, int]]]:
    """Per user, its (id, seq) pairs in id order."""
    rows = db.session.execute(select(Notification.user_id, Notification.id, Notification.seq)
                              .where(Notification.user_id.in_(user_ids))
                              .order_by(Notification.id)).all()
    out: dict[int, list[tuple[int, int]]] = {uid: [] for uid in user_ids}
    for uid, id_, seq in rows:
        out[uid].append((id_, seq))
    return out


def test_a_batch_numbers_each_recipient_on_from_its_last(app: Flask,
                                                         emitted_wire: list[str]) -> None:
    a, b, c = users(3)
    notify([a, b], "message.received", message_data("one"))
    db.session.commit()
    # several for one recipient in one commit: consecutive, in the order they were queued
    notify_each("message.received", [(a, message_data("x")), (c, message_data("y")),
                                     (a, message_data("z")), (a, message_data("w"))])
    db.session.commit()
    got = seqs_by_user([a, b, c])
    assert [s for _i, s in got[a]] == [1, 2, 3, 4]
    assert [s for _i, s in got[b]] == [1]
    assert [s for _i, s in got[c]] == [1]
    notes = db.session.scalars(select(Notification).where(Notification.user_id == a)
                               .order_by(Notification.seq)).all()
    assert [n.data.get("body") for n in notes] == ["one", "x", "z", "w"]
    # what goes out live (the JSON text clients get) carries the stored seq
    live = {e["id"]: e["seq"] for e in map(json.loads, emitted_wire)}
    assert live == {n.id: n.seq for n in db.session.scalars(
        select(Notification).where(Notification.user_id.in_([a, b, c])))}


def test_a_small_batch_on_postgresql_holds_the_counter_row_for_one_statement(
        app: Flask, backend: str, emitted_wire: list[str]) -> None:
    """Every commit that stores notifications waits for the counter row until the one holding
    it commits. On PostgreSQL a small batch's seqs are worked out in its INSERT, so between
    taking the row and the commit there is that one statement (it was two: read the seqs,
    then insert), and the seqs are those two would give: on from each recipient's last, in
    the order queued, several for one recipient consecutive."""
    if backend != "postgresql":
        pytest.skip("SQLite has no row locks: its write lock is the database's")
    a, b = users(2)
    notify([a], "message.received", message_data("before"))
    db.session.commit()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    notify_each("message.received", [(a, message_data("x")), (b, message_data("y")),
                                     (a, message_data("z"))])
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    locked = next(i for i, s in enumerate(statements)
                  if s.startswith("UPDATE notification_counter"))
    [insert_] = statements[locked + 1:]
    assert insert_.startswith("INSERT INTO notifications") and insert_.endswith("RETURNING id, seq")
    got = seqs_by_user([a, b])
    assert [s for _i, s in got[a]] == [1, 2, 3] and [s for _i, s in got[b]] == [1]
    notes = db.session.scalars(select(Notification).where(Notification.user_id == a)
                               .order_by(Notification.seq)).all()
    assert [n.data.get("body") for n in notes] == ["before", "x", "z"]
    live = {e["id"]: e["seq"] for e in map(json.loads, emitted_wire)}
    assert live == {n.id: n.seq for n in db.session.scalars(
        select(Notification).where(Notification.user_id.in_([a, b])))}


def test_a_fan_out_numbers_every_recipient_with_one_statement(app: Flask) -> None:
    """A need matched to many providers (COPY_FROM_ROWS and more: PostgreSQL's COPY path): one
    statement reads every recipient's last seq, whatever their number."""
    people = users(COPY_FROM_ROWS + 6)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    notify(people, "message.received", message_data("first"))
    db.session.commit()
    event.listen(db.engine, "before_cursor_execute", count)
    # SQLite's outbox reads on the sqlite3 connection underneath, past SQLAlchemy's events
    raw = db.session.connection().connection.driver_connection
    sqlite = db.engine.dialect.name == "sqlite"
    if sqlite:
        raw.set_trace_callback(statements.append)
    try:
        notify(people, "message.received", message_data("second"))
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
        if sqlite:
            raw.set_trace_callback(None)
    assert sum("max(seq)" in s for s in statements) == 1
    assert all([s for _i, s in pairs] == [1, 2] for pairs in seqs_by_user(people).values())


def test_a_large_batch_on_sqlite_is_checkpointed_after_its_events_go_out(
        app: Flask, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: after a batch of CHECKPOINT_FROM_ROWS or more, once its events are out, the
    write-ahead log is copied into the database file, so the next large batch's commit does
    not pay for SQLite's automatic checkpoint before its first event; a small batch leaves
    the log alone (a checkpoint costs two fsyncs). The database file alone is read with
    ``immutable=1``, which ignores the log."""
    if backend != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    import sqlite3
    from contextlib import closing

    path = Path(db.engine.url.database or "")

    def in_file(body: str) -> int:
        with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as plain:
            return int(plain.execute(
                "SELECT count(*) FROM notifications WHERE json_extract(data, '$.body') = ?",
                (body,)).fetchone()[0])

    people = users(outbox.CHECKPOINT_FROM_ROWS)
    with db.engine.connect() as connection:  # the schema and the users into the file
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    at_emit: list[int] = []
    monkeypatch.setattr(outbox, "_emitters", [
        *outbox._emitters, lambda events: at_emit.append(in_file(events[0][1]["data"]["body"]))])
    notify(people[:-1], "message.received", message_data("small"))
    db.session.commit()
    assert in_file("small") == 0  # still only in the log
    notify(people, "message.received", message_data("large"))
    db.session.commit()
    assert at_emit == [0, 0]  # not before its events went out
    assert in_file("large") == len(people)
    assert in_file("small") == len(people) - 1  # the log, whole


def test_a_checkpoint_that_fails_leaves_the_batch_committed_and_sent(
        app: Flask, backend: str, emitted_wire: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpoint comes after the commit and the emit: a database that refuses it (busy,
    locked) costs the batch nothing."""
    if backend != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    from sqlalchemy.exc import OperationalError

    people = users(outbox.CHECKPOINT_FROM_ROWS)
    tried: list[bool] = []

    def refuse(*_args: Any, **_kw: Any) -> None:
        tried.append(True)
        raise OperationalError("PRAGMA wal_checkpoint(PASSIVE)", {}, Exception("locked"))

    monkeypatch.setattr(type(db.engine), "connect", refuse)
    notify(people, "message.received", message_data("refused"))
    db.session.commit()
    monkeypatch.undo()
    assert tried == [True]
    assert len(emitted_wire) == len(people)
    assert all([s for _i, s in pairs] == [1] for pairs in seqs_by_user(people).values())


def test_a_rolled_back_batch_takes_its_seqs_with_it(app: Flask) -> None:
    [a] = users(1)
    notify([a], "message.received", message_data("gone"))
    db.session.flush()
    db.session.rollback()
    notify([a], "message.received", message_data("kept"))
    db.session.commit()
    assert [s for _i, s in seqs_by_user([a])[a]] == [1]


def test_concurrent_commits_number_each_recipient_without_holes_in_commit_order(
        app: Flask, backend: str) -> None:
    """Six threads commit batches to overlapping recipients at once (PostgreSQL: real row
    locks). Every recipient's seqs are 1..n, each once, and follow its ids (commit order)."""
    if backend != "postgresql":
        pytest.skip("needs concurrent writers and row locks (PostgreSQL)")
    people = users(8)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            with app.app_context():
                start.wait(10)
                for _ in range(15):
                    chosen = rng.sample(people, rng.randint(1, len(people)))
                    notify_each("message.received",
                                [(uid, message_data(f"{seed}")) for uid in chosen + chosen[:1]])
                    db.session.commit()
                db.session.remove()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    db.session.expire_all()
    for uid, pairs in seqs_by_user(people).items():
        assert [s for _i, s in pairs] == list(range(1, len(pairs) + 1)), uid
    assert sum(len(p) for p in seqs_by_user(people).values()) > 6 * 15


# --- the migration --------------------------------------------------------------------------

@pytest.fixture
def scratch_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'seqs.sqlite3'}"
        return
    with throwaway_pg_database("mkt_seqs") as url:
        yield url


def test_the_migration_numbers_existing_notifications_per_recipient(scratch_url: str) -> None:
    scratch = make_test_app(scratch_url)
    with scratch.app_context():
        try:
            flask_migrate.upgrade(revision=BEFORE)
            now = datetime(2026, 12, 1, tzinfo=UTC)
            meta = MetaData()
            with db.engine.begin() as conn:
                people = Table("users", meta, autoload_with=conn)
                notes = Table("notifications", meta, autoload_with=conn)
                conn.execute(people.insert(), [
                    {"id": i, "email": f"m{i}@example.com", "name": "M", "password_hash": "x",
                     "created_at": now, "is_admin": False} for i in (1, 2, 3, 4)])
                # ids interleaved between recipients, one inserted out of id order
                owners = {1: 1, 2: 2, 3: 1, 4: 3, 5: 1, 6: 2, 7: 1}
                conn.execute(notes.insert(), [
                    {"id": i, "user_id": owners[i], "type": "message.received",
                     "data": {"n": i}, "created_at": now} for i in (1, 2, 3, 5, 4, 6, 7)])
                conn.execute(text("UPDATE notification_counter SET last_id = 7"))
            flask_migrate.upgrade()
            got = seqs_by_user([1, 2, 3, 4])
            assert got == {1: [(1, 1), (3, 2), (5, 3), (7, 4)], 2: [(2, 1), (6, 2)],
                           3: [(4, 1)], 4: []}
            # and the outbox goes on from there
            notify([1, 4], "message.received", message_data("after"))
            db.session.commit()
            got = seqs_by_user([1, 4])
            assert (got[1][-1], got[4]) == ((8, 5), [(9, 1)])
            db.session.remove()
            flask_migrate.downgrade(revision=BEFORE)
            with db.engine.connect() as conn:
                assert "seq" not in {c["name"] for c in inspect(conn).get_columns(
                    "notifications")}
        finally:
            db.session.remove()
            db.engine.dispose()
