"""What a provider asked to be mailed about, and the needs waiting to be mailed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db_types import IDS_NEVER_REUSED, UTCDateTime, utcnow
from marketplace.extensions import db

#: Why a need was queued for a provider: the category they opted in to, a direct ask
#: (@mention or a need sent to favourites), or one of their subscribed tags.
REASONS = ("category", "direct", "tag")


class AlertSettings(db.Model):
    """A provider's alert switches (everything off without a row) and the sender's state:
    when they were last mailed (one mail per interval) and who holds their batch (the lease)."""

    __tablename__ = "alert_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    direct_asks: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    tags: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertCategory(db.Model):
    """One category a provider wants alerts for."""

    __tablename__ = "alert_categories"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"),
                                             primary_key=True)


class QueuedAlert(db.Model):
    """A matched need waiting for the provider's next alert mail; written in the transaction
    that stored the ``need.matched`` notification, deleted in the one that records the mail."""

    __tablename__ = "alert_queue"
    __table_args__ = (Index("ix_alert_queue_user_id", "user_id"), IDS_NEVER_REUSED)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    need_id: Mapped[int] = mapped_column(ForeignKey("needs.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
