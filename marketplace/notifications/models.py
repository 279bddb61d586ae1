from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db_types import UTCDateTime, utcnow
from marketplace.extensions import db
from marketplace.notifications import types


class Notification(db.Model):
    """One event for one recipient, written in the transaction of the change it reports.

    Ids only grow, so a client that saw id N can ask for everything after N. ``seq`` counts
    one recipient's notifications, 1, 2, 3, ... with no holes, in commit order: a client that
    holds seq 5 and receives 7 knows it missed 6 (docs/events.md, "Delivery").
    """

    __tablename__ = "notifications"
    # One index for a recipient's notifications, by seq: their ids follow the same order, so
    # reads by id go through it too (services._seq_at). A second, (user_id, id), would cost
    # every fan-out another index entry per recipient.
    __table_args__ = (Index("ix_notifications_user_id_seq", "user_id", "seq", unique=True),)

    # Assigned from NotificationCounter at commit time, never by the database (see outbox.py).
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Assigned at commit time with the id: the recipient's highest seq + 1 (outbox.py). So a
    # recipient's seqs restart only if every one of its notifications is deleted, which only
    # the erasure of its account does: never delete the newest of an account in use.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def text(self) -> str:
        """What it says to its recipient (``types.text``), the same on every client."""
        return types.text(self.type, self.data)

    def as_event(self) -> dict[str, Any]:
        """The wire form, the same over Socket.IO and the REST API."""
        return {"id": self.id, "seq": self.seq, "type": self.type,
                "created_at": self.created_at.isoformat(), "text": self.text, "data": self.data}


class NotificationCounter(db.Model):
    """A single row holding the last notification id handed out.

    Taking ids by ``UPDATE ... RETURNING`` on this row right before commit makes ids follow
    commit order: a second transaction waits on the row lock until the first commits. The
    same lock makes per-recipient seqs follow commit order (they are read under it). With a
    plain sequence, id 10 could commit after id 11 and a client resuming "after 11" would
    never see it.
    """

    __tablename__ = "notification_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


class NotificationReads(db.Model):
    """How many of a recipient's notifications they have marked read. A recipient's seqs run
    1, 2, 3, ... without holes (only the erasure of the account deletes any, and then all), so
    their newest seq minus this is their unread count: read from one index entry and this row,
    not by counting their notifications, which grow with every need they are sent (a count
    took ~1 ms per 10,000 of them, on every page view: docs/performance.md). Written only by
    ``services.mark_read``, in the transaction that marks the rows, by the number it marked;
    the fan-out never touches it. No row: none read."""

    __tablename__ = "notification_reads"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True, autoincrement=False)
    read_count: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
