"""Notifications ride on the transaction of the change they report.

Services call ``notify(...)``; nothing is written yet. Right before the session commits, the
queued notifications get ids (in commit order, from ``NotificationCounter``) and per-recipient
seqs (each recipient's highest stored seq + 1, read while that counter row is locked, so also
in commit order and without holes) and are inserted in the same transaction. Only after the
commit has succeeded are they emitted live; a rollback drops them. So a notification is never
emitted for a change that did not happen, and never lost for one that did.

``signal(...)`` queues a live-only hint the same way (emitted after the commit, dropped on
rollback) but stores nothing: for what a page can always re-read, such as "this need in your
feed has closed".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import bindparam, column, event, insert, table, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from marketplace.db_types import ID_SET_SQL, id_set, id_set_value, utcnow
from marketplace.extensions import db
from marketplace.notifications import types
from marketplace.notifications.models import Notification, NotificationCounter
from marketplace.notifications.types import NotificationType

_OUTBOX = "notification_outbox"
_SENT = "notification_events"
_SIGNALS = "live_signals"

# The notifications table for the outbox's executemany, with ``data`` taking JSON text as is:
# each payload is encoded once, and the same text goes into the row and onto the wire.
_ROWS = table("notifications", column("id"), column("user_id"), column("seq"), column("type"),
              column("data"), column("created_at", Notification.__table__.c.created_at.type))
# Every recipient's last seq, read for the whole batch in one statement whatever the number of
# recipients (a need matched to 1,000 providers is one round trip, not 1,000): one probe of
# the (user_id, seq) index each. The ids go in as one array (PostgreSQL) or one JSON text
# (SQLite), so the statement text never changes and is prepared once.
_LAST_SEQS = {
    dialect: ("SELECT ids.value, (SELECT max(seq) FROM notifications WHERE user_id = ids.value) "
              f"FROM {id_set(dialect)} AS ids")
    for dialect in ID_SET_SQL
}
# From this many rows on (a need matched to many providers), PostgreSQL gets them through COPY:
# one stream instead of a pipelined INSERT per row (docs/performance.md).
COPY_FROM_ROWS = 64
# After a batch of this many rows, on SQLite, the write-ahead log is copied back into the
# database file once the events are out (``_checkpoint``).
CHECKPOINT_FROM_ROWS = 64


class Event(dict[str, Any]):
    """A committed notification as emitted: ``{id, seq, type, created_at, text, data}``, plus
    ``wire``, the same as JSON text, encoded once when it was stored. Made as a dict is, with
    ``wire`` set after: no ``__init__`` of its own to run per recipient of a fan-out."""

    __slots__ = ("wire",)
    wire: str


class Encoded(dict[str, Any]):
    """A JSON-ready payload that carries its own JSON text, exactly as the outbox would encode
    it (``encode``): for a fan-out whose recipients share a few distinct payloads, each is
    encoded once and the same object is queued for all who get it (``notify_each``)."""

    __slots__ = ("json",)

    def __init__(self, data: dict[str, Any], text: str) -> None:
        super().__init__(data)
        self.json = text


encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _dumps(value: Any) -> str:
    """``encode``, except that an ``Encoded`` payload gives its own text."""
    return value.json if isinstance(value, Encoded) else encode(value)


Emitter = Callable[[list[tuple[int, dict[str, Any]]]], None]
_emitters: list[Emitter] = []
SignalEmitter = Callable[[list[tuple[int, str, dict[str, Any]]]], None]
_signal_emitters: list[SignalEmitter] = []
# Called inside the storing transaction, after the notifications are inserted, with the batch
# as it will be emitted: for work that must commit or roll back with them and needs their ids.
StoreHook = Callable[[Session, list[tuple[int, Event]]], None]
_store_hooks: list[StoreHook] = []
# What is queued, as ``(user_id, type, payload)``: the batch before it has ids.
Queued = list[tuple[int, NotificationType, dict[str, Any]]]
# Called in the same transaction before the batch gets its ids, so before the counter row is
# locked: reads there hold no other commit up. Returns what to do with the stored batch, if
# anything (webhook deliveries, e-mail alert queues).
QueueHook = Callable[[Session, Queued], Callable[[list[tuple[int, Event]]], None] | None]
_queue_hooks: list[QueueHook] = []


def jsonable(value: Any) -> Any:
    """Payloads are stored as JSON: datetimes become ISO 8601 strings, enums their values."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def notify(user_ids: Iterable[int | None], type_: NotificationType, data: dict[str, Any]) -> None:
    """Queue one notification per recipient on the current transaction. ``type_`` must be one
    of ``NotificationType`` (its value is accepted too; anything else is refused)."""
    kind = NotificationType(type_)
    payload = jsonable(data)
    queue = db.session.info.setdefault(_OUTBOX, [])
    queue.extend((uid, kind, payload) for uid in dict.fromkeys(user_ids) if uid is not None)


def notify_each(type_: NotificationType, items: Iterable[tuple[int, dict[str, Any]]]) -> None:
    """Queue one notification per (recipient, payload); payloads must already be JSON-ready.
    For fan-outs where only a field or two differ per recipient."""
    kind = NotificationType(type_)
    db.session.info.setdefault(_OUTBOX, []).extend((uid, kind, data) for uid, data in items)


def signal(user_ids: Iterable[int], event_name: str, data: dict[str, Any]) -> None:
    """Queue a live-only event (Socket.IO event ``event_name``) for each recipient, sent after
    the commit and never stored or replayed."""
    db.session.info.setdefault(_SIGNALS, []).extend(
        (uid, event_name, data) for uid in dict.fromkeys(user_ids))


def on_emit(emitter: Emitter) -> None:
    """Register who delivers committed notifications live (the Socket.IO layer)."""
    if emitter not in _emitters:
        _emitters.append(emitter)


def on_signal(emitter: SignalEmitter) -> None:
    """Register who delivers committed live-only signals."""
    if emitter not in _signal_emitters:
        _signal_emitters.append(emitter)


def on_queue(hook: QueueHook) -> None:
    """Register work to do in the transaction that stores a batch of notifications, in two
    steps: ``hook`` gets the session and what is queued, ``(user_id, type, payload)``, before
    the batch is given ids -- every storing commit waits for the counter row that gives them,
    so what is read there is read without holding anyone up -- and returns None, or a function
    to call with the new ``(user_id, Event)`` pairs once they are inserted (before the commit).
    What either writes commits or rolls back with the notifications. It must not ``notify``.
    Register a module-level function: registering the same one again does nothing."""
    if hook not in _queue_hooks:
        _queue_hooks.append(hook)


def on_store(hook: StoreHook) -> None:
    """Register work to do in the transaction that stores a batch of notifications: ``hook``
    gets the session and the new ``(user_id, Event)`` pairs, after they are inserted and before
    the commit, so what it writes commits or rolls back with them. It must not ``notify``.
    Register a module-level function: registering the same one again does nothing."""
    if hook not in _store_hooks:
        _store_hooks.append(hook)


def _before_commit(session: Session) -> None:
    pending = session.info.pop(_OUTBOX, None)
    if not pending:
        return
    session.flush()
    after = [then for hook in _queue_hooks if (then := hook(session, pending)) is not None]
    # Everything that needs no id or seq is made before the counter row is taken: from there
    # to the commit, every other storing transaction waits for it.
    now = utcnow()
    created = now.isoformat()
    created_json = encode(created)
    # each payload object's JSON, its sentence and what follows the id and seq in the wire
    # text, made once per (type, payload object): a fan-out shares a few payloads among all
    # its recipients (the queue holds them for the batch, so their ids stay theirs)
    tails: dict[tuple[NotificationType, int], tuple[str, str, dict[str, Any]]] = {}
    made = []
    for uid, type_, data in pending:
        known = tails.get((type_, id(data)))
        if known is None:
            body, said = _dumps(data), types.text(type_, data)
            tail = (f'"type":{encode(type_)},"created_at":{created_json},"text":{encode(said)},'
                    f'"data":{body}}}')
            rest = {"type": type_.value, "created_at": created, "text": said, "data": data}
            known = tails[type_, id(data)] = (body, tail, rest)
        made.append((uid, type_, known))
    count = len(pending)
    last = session.execute(
        update(NotificationCounter).where(NotificationCounter.id == 1)
        .values(last_id=NotificationCounter.last_id + count)
        .returning(NotificationCounter.last_id)
    ).scalar_one()
    first = last - count + 1
    seqs = _store(session, [(first + i, uid, type_, known[0])
                            for i, (uid, type_, known) in enumerate(made)], now)
    events, batch = session.info.setdefault(_SENT, []), []
    for i, (uid, _type, (_body, tail, rest)) in enumerate(made):
        id_, seq = first + i, seqs[i]
        event = Event(id=id_, seq=seq, **rest)
        event.wire = f'{{"id":{id_},"seq":{seq},{tail}'
        batch.append((uid, event))
    for then in after:
        then(batch)
    for hook in _store_hooks:
        hook(session, batch)
    events.extend(batch)


# A small batch on PostgreSQL in one round trip: each row's seq is its recipient's last stored
# one plus its place among the batch's rows for that recipient (``k``, from 1), worked out in
# the INSERT itself. Run after the counter row is taken, so (read committed: a snapshot per
# statement) it sees every seq committed before; the row stays locked until this commits.
_INSERT_NUMBERED = text(
    "INSERT INTO notifications (id, user_id, seq, type, data, created_at) "
    "SELECT v.id, v.user_id, coalesce((SELECT max(n.seq) FROM notifications AS n "
    "WHERE n.user_id = v.user_id), 0) + v.k, v.type, CAST(v.data AS json), :created_at "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:user_ids AS integer[]), CAST(:ks AS integer[]), "
    "CAST(:types AS text[]), CAST(:datas AS text[])) AS v(id, user_id, k, type, data) "
    "RETURNING id, seq"
).bindparams(bindparam("created_at", type_=Notification.__table__.c.created_at.type))


def _store(session: Session, rows: list[tuple[int, int, NotificationType, str]],
           created_at: datetime) -> list[int]:
    """Insert the batch, rows of ``(id, user_id, type, JSON text)`` in id order, each
    recipient's numbered on from its last seq, every row created at ``created_at``; the seq of
    each row, in their order. With the counter row locked (``_before_commit``)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(rows) < COPY_FROM_ROWS:
        places: dict[int, int] = {}
        ks = []
        for _id, uid, _type, _body in rows:
            places[uid] = k = places.get(uid, 0) + 1
            ks.append(k)
        got = dict(session.execute(_INSERT_NUMBERED, {
            "ids": [r[0] for r in rows], "user_ids": [r[1] for r in rows], "ks": ks,
            "types": [r[2].value for r in rows], "datas": [r[3] for r in rows],
            "created_at": created_at}).all())
        return [got[r[0]] for r in rows]
    last = _last_seqs(session, [uid for _id, uid, _type, _body in rows])
    numbered, seqs = [], []
    for id_, uid, type_, body in rows:
        last[uid] = seq = last[uid] + 1
        numbered.append((id_, uid, seq, type_, body))
        seqs.append(seq)
    _insert(session, numbered, created_at)
    return seqs


def _last_seqs(session: Session, user_ids: list[int]) -> dict[int, int]:
    """Each recipient's last seq (0 for a first notification). Read with the counter row
    locked: every commit that stores notifications holds that lock until it has committed, so
    nothing can commit a seq between this read and this commit (docs/events.md)."""
    unique = list(dict.fromkeys(user_ids))
    connection = session.connection()
    dialect = connection.dialect.name
    params = {"ids": id_set_value(dialect, unique)}
    if dialect == "sqlite":  # the sqlite3 connection underneath: no result objects for a
        # thousand rows (in the session's transaction; sqlite3 takes ``:ids`` as it is)
        found = connection.connection.driver_connection.execute(
            _LAST_SEQS[dialect], params).fetchall()
    else:
        found = session.execute(text(_LAST_SEQS[dialect]), params).all()
    return {uid: last or 0 for uid, last in found}


# The columns of a row of the batch, in order (``created_at``, the same for all, apart).
_COLUMNS = ("id", "user_id", "seq", "type", "data")


def _insert(session: Session, rows: list[tuple[Any, ...]], created_at: datetime) -> None:
    """Insert the batch (rows as ``_COLUMNS``), every row created at ``created_at``."""
    connection = session.connection()
    dialect = connection.dialect
    if len(rows) >= COPY_FROM_ROWS and dialect.name == "sqlite":
        _insert_sqlite(connection, rows, created_at)
        return
    if len(rows) < COPY_FROM_ROWS or (dialect.name, dialect.driver) != ("postgresql", "psycopg"):
        session.execute(insert(_ROWS),  # plain executemany, no ORM work
                        [{**dict(zip(_COLUMNS, row, strict=True)), "created_at": created_at}
                         for row in rows])
        return
    created = _ROWS.c.created_at.type.process_bind_param(created_at, dialect)
    driver = connection.connection.driver_connection  # the session's own, in its transaction
    with driver.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
            "COPY notifications (id, user_id, seq, type, data, created_at) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((*row, created))


def _insert_sqlite(connection: Any, rows: list[tuple[Any, ...]], created_at: datetime) -> None:
    """A large batch on SQLite: one ``executemany`` on the driver's cursor (in the session's
    transaction), the shared creation time converted once, not per row through SQLAlchemy's
    bind processors."""
    process = _ROWS.c.created_at.type._cached_bind_processor(connection.dialect)
    stored = process(created_at) if process else created_at
    driver = connection.connection.driver_connection
    driver.executemany(f"INSERT INTO notifications ({', '.join(_COLUMNS)}, created_at) "
                       f"VALUES ({', '.join('?' * len(_COLUMNS))}, ?)",
                       [(*row, stored) for row in rows])


def _after_commit(session: Session) -> None:
    events = session.info.pop(_SENT, None)
    if events:
        for emit in _emitters:
            emit(events)
    signals = session.info.pop(_SIGNALS, None)
    if signals:
        for send in _signal_emitters:
            send(signals)
    if events and len(events) >= CHECKPOINT_FROM_ROWS:
        _checkpoint(session)


def _checkpoint(session: Session) -> None:
    """After a large batch on SQLite, once its events are out: copy the write-ahead log back
    into the database file now (PASSIVE: it waits for nobody), so that the next large batch's
    commit does not find the log past SQLite's automatic checkpoint and pay for it before its
    first event (docs/performance.md). Anything in the way just leaves it for later."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return
    try:
        with bind.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    except SQLAlchemyError:  # busy, say: the batch has committed and gone out already;
        pass  # SQLite's automatic checkpoint or the next large batch does the copying


def _after_rollback(session: Session) -> None:
    for key in (_OUTBOX, _SENT, _SIGNALS):
        session.info.pop(key, None)


def init_app() -> None:
    """Hook the outbox into every Flask-SQLAlchemy session (idempotent)."""
    from flask_sqlalchemy.session import Session as FlaskSession

    for name, fn in (("before_commit", _before_commit), ("after_commit", _after_commit),
                     ("after_rollback", _after_rollback)):
        if not event.contains(FlaskSession, name, fn):
            event.listen(FlaskSession, name, fn)
