"""Reading and marking notifications (writing happens through ``outbox.notify``).

A recipient's notifications are found through the ``(user_id, seq)`` index alone: a recipient's
ids and seqs follow the same commit order, so "after id N" is "after the seq of the newest of
theirs with id <= N" (``_seq_at``), and ordering by seq is ordering by id. There is no
``(user_id, id)`` index: it cost every fan-out a second index entry per recipient, about a
fifth of the work before the first event goes out (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, func, select, update
from sqlalchemy.orm import aliased

from marketplace.accounts.models import User
from marketplace.db_types import utcnow
from marketplace.extensions import db, rows, upsert
from marketplace.notifications.models import Notification, NotificationReads

# the two subqueries' own names for the table (built once, not per read)
_OWN, _BELOW = aliased(Notification, name="own"), aliased(Notification, name="below")


def _seq_at(user_id: int, id_: int) -> ColumnElement[Any]:
    """SQL for the seq of ``user_id``'s newest notification with id <= ``id_`` (0 if none).
    When ``id_`` is one of theirs (what a client that saw it sends), its row by primary key;
    otherwise the first of theirs at or below it, walking their seqs down from the newest,
    so the walk is as long as what lies after it. COALESCE evaluates the walk only when the
    lookup found nothing, on both databases."""
    own, below = _OWN, _BELOW
    return func.coalesce(
        select(own.seq).where(own.id == id_, own.user_id == user_id).scalar_subquery(),
        select(below.seq).where(below.user_id == user_id, below.id <= id_)
        .order_by(below.seq.desc()).limit(1).scalar_subquery(),
        0)


def after(user_id: int, after_id: int, limit: int, after_seq: int = 0) -> Sequence[Notification]:
    """The recipient's notifications with id > ``after_id`` and seq > ``after_seq``, oldest
    first (ids and seqs follow the same commit order, so one order serves both)."""
    if not after_id:
        return _after_seq(user_id, after_seq, limit)
    at = _seq_at(user_id, after_id)  # one lower bound, the larger: the index's range starts there
    bound = case((at > after_seq, at), else_=after_seq) if after_seq else at
    query = select(Notification).where(Notification.user_id == user_id,
                                       Notification.seq > bound)
    return db.session.scalars(query.order_by(Notification.seq).limit(limit)).all()


# what an API client asks most (its latest, or everything after the last seq it saw): built
# once, its values bound
_AFTER_SEQ = (select(Notification)
              .where(Notification.user_id == bindparam("user_id"),
                     Notification.seq > bindparam("seq"))
              .order_by(Notification.seq)
              .limit(bindparam("limit")))


def after_seq(user_id: int, seq: int, limit: int) -> Sequence[Notification]:
    """The recipient's notifications with seq > ``seq``, oldest first (the same order as by
    id: both follow commit order)."""
    return db.session.scalars(_AFTER_SEQ, {"user_id": user_id, "seq": seq,
                                           "limit": limit}).all()


_after_seq = after_seq  # for ``after``, whose argument of that name hides it


def position(user_id: int, after_id: int, after_seq: int) -> tuple[int, int]:
    """(id, seq) of the place "after ``after_id`` and after ``after_seq``" when nothing lies
    beyond it: each count is the larger of what was given and what the other one implies
    (the newest notification at or before it)."""
    implied_id, implied_seq = db.session.execute(select(
        select(Notification.id).where(Notification.user_id == user_id,
                                      Notification.seq <= after_seq)
        .order_by(Notification.seq.desc()).limit(1).scalar_subquery(),
        _seq_at(user_id, after_id))).one()
    return max(after_id, implied_id or 0), max(after_seq, implied_seq or 0)


_READ_COUNT = func.coalesce(select(NotificationReads.read_count)
                            .where(NotificationReads.user_id == bindparam("user_id"))
                            .scalar_subquery(), 0)
# Every signed-in page asks it: built once. The recipient's newest notification (the last
# entry of their seq index) with their unread count: that seq (how many they have, seqs having
# no holes) less how many they marked read (NotificationReads) -- two index lookups however
# many notifications they have, where counting their unread rows read every one of them. No
# row: they have none, so none unread either.
_RESUME_POINT = (select(Notification.id, Notification.seq - _READ_COUNT, Notification.seq)
                 .where(Notification.user_id == bindparam("user_id"))
                 .order_by(Notification.seq.desc()).limit(1))


def resume_point(user_id: int) -> tuple[int, int, int]:
    """The newest notification id, the unread count and the newest seq, read together: a page
    rendered with them counts exactly what its live connection will replay after them."""
    row = rows(_RESUME_POINT, {"user_id": user_id}).first()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def unread_count(user: User) -> int:
    return resume_point(user.id)[1]


def mark_read(user: User, ids: Sequence[int] | None, up_to: int | None) -> int:
    """Mark the given ids, or everything up to and including ``up_to``; returns how many."""
    stmt = update(Notification).where(Notification.user_id == user.id,
                                      Notification.read_at.is_(None))
    if ids is not None:
        stmt = stmt.where(Notification.id.in_(list(ids)))
    if up_to is not None:
        stmt = stmt.where(Notification.seq <= _seq_at(user.id, up_to))
    result = db.session.execute(stmt.values(read_at=utcnow())
                                .execution_options(synchronize_session=False))
    marked = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if marked:  # only rows that were unread matched: each is counted once, by its marker
        counted = upsert()(NotificationReads).values(user_id=user.id, read_count=marked)
        db.session.execute(counted.on_conflict_do_update(
            index_elements=[NotificationReads.user_id],
            set_={"read_count": NotificationReads.read_count + counted.excluded.read_count}))
    db.session.commit()
    return marked


def recent(user_id: int, limit: int) -> Sequence[Notification]:
    """The newest notifications, newest first (for the notifications page)."""
    return db.session.scalars(
        select(Notification).where(Notification.user_id == user_id)
        .order_by(Notification.seq.desc()).limit(limit)
    ).all()
