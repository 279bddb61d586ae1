from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db_types import IDS_NEVER_REUSED, UTCDateTime, utcnow
from marketplace.extensions import db


class TargetType(enum.StrEnum):
    NEED = "need"
    OFFER = "offer"
    MESSAGE = "message"
    RATING = "rating"
    PROFILE = "profile"  # a provider profile (target_id is the provider's id)
    USER = "user"  # an account: only admins act on one (suspend), nobody reports one


REPORTABLE = (TargetType.NEED, TargetType.OFFER, TargetType.MESSAGE, TargetType.RATING,
              TargetType.PROFILE)


class Reason(enum.StrEnum):
    SPAM = "spam"
    SCAM = "scam"
    ABUSE = "abuse"
    CONTACT_HARVESTING = "contact-harvesting"
    OTHER = "other"


class ReportStatus(enum.StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"
    ACTIONED = "actioned"  # the content was hidden or its author suspended


class Action(enum.StrEnum):
    DISMISS = "dismiss"
    HIDE = "hide"
    UNHIDE = "unhide"
    SUSPEND = "suspend"
    UNSUSPEND = "unsuspend"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=24,
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Report(db.Model):
    """Someone's report of a need, offer, message, rating or provider profile. One open report
    per reporter per target (a partial unique index)."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("uq_reports_open_per_reporter", "reporter_id", "target_type", "target_id",
              unique=True, sqlite_where=text("status = 'open'"),
              postgresql_where=text("status = 'open'")),
        Index("ix_reports_status_id", "status", "id"),
        IDS_NEVER_REUSED,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                             index=True)
    target_type: Mapped[TargetType] = mapped_column(_enum(TargetType, "report_target"))
    target_id: Mapped[int] = mapped_column(Integer)
    # Whose content it is (the author), so the queue can show it and suspend them.
    target_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    reason: Mapped[Reason] = mapped_column(_enum(Reason, "report_reason"))
    details: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ReportStatus] = mapped_column(_enum(ReportStatus, "report_status"),
                                                 default=ReportStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ModerationLog(db.Model):
    """One moderation action: who did what to which target, why, when. Never deleted."""

    __tablename__ = "moderation_log"
    __table_args__ = IDS_NEVER_REUSED

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"),
                                                 index=True)
    action: Mapped[Action] = mapped_column(_enum(Action, "moderation_action"))
    target_type: Mapped[TargetType] = mapped_column(_enum(TargetType, "moderation_target"))
    target_id: Mapped[int] = mapped_column(Integer)
    # The account the action was about (the content's author, or the suspended account).
    subject_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(1000), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
